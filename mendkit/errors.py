"""Domain errors, raised by service logic and turned into canonical gRPC status
codes by `mendkit.interceptors.ErrorAndLogInterceptor`. Logic code never touches the
gRPC context, so it stays testable without a server."""

from __future__ import annotations

import grpc


class MendError(Exception):
    """Base of every domain error; `code` is the canonical status it maps to."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(MendError):
    """A request field is malformed. The message always starts with the field's path."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(MendError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MendError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(MendError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(MendError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(MendError):
    """A dependency (the database, another service) cannot be reached right now."""

    code = grpc.StatusCode.UNAVAILABLE


class PermissionDenied(MendError):
    """The caller may not do this (e.g. continue or rate another client's conversation)."""

    code = grpc.StatusCode.PERMISSION_DENIED

"""Request checks shared by every service. Each raises `InvalidArgument` naming
the offending field, so a caller always learns which field to fix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar, overload

from google.protobuf.timestamp_pb2 import Timestamp

from mendkit.errors import InvalidArgument

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
# The contracts' limits on chat text, shared because a question or an answer
# passes through several services: a customer's question (bot, interactions,
# a Q&A entry's phrasings) and an answer (interactions, an entry's content, a
# reviewer's edit).
MAX_QUESTION_CHARS = 4_000
MAX_ANSWER_CHARS = 32_000


def text(field: str, value: str, *, max_chars: int, required: bool = False) -> str:
    """Text within `max_chars`; non-blank when `required`; never a NUL (PostgreSQL refuses it)."""
    if required and not value.strip():
        raise InvalidArgument(field, "is required and must not be blank")
    if len(value) > max_chars:
        raise InvalidArgument(field, f"is {len(value)} characters long; the limit is {max_chars}")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    return value


@overload
def uuid_field(field: str, value: str, *, required: Literal[True] = True) -> uuid.UUID: ...
@overload
def uuid_field(field: str, value: str, *, required: bool) -> uuid.UUID | None: ...
def uuid_field(field: str, value: str, *, required: bool = True) -> uuid.UUID | None:
    """A UUID in any standard spelling; None when empty and not required."""
    if not value:
        if required:
            raise InvalidArgument(field, "is required")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(field, f"must be a UUID, got {value[:64]!r}") from None


class _EnumType(Protocol):
    """A generated protobuf enum (its `EnumTypeWrapper`)."""

    def values(self) -> list[int]: ...


E = TypeVar("E", bound=int)


def enum_value(field: str, value: E, enum_type: _EnumType, *, allow_unspecified: bool) -> E:
    """An enum value the contract defines (proto3 enums accept any integer on the wire)."""
    if value not in enum_type.values():
        raise InvalidArgument(field, f"{value} is not a known value")
    if value == 0 and not allow_unspecified:
        raise InvalidArgument(field, "is required")
    return value


def page_size(field: str, value: int) -> int:
    """The effective page size: 0 means the default; out-of-range values are rejected."""
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument(field, f"must be between 0 and {MAX_PAGE_SIZE}, got {value}")
    return value or DEFAULT_PAGE_SIZE


def timestamp(field: str, value: Timestamp) -> datetime:
    """A Timestamp as an aware datetime; one outside 0001-01-01..9999-12-31 or
    with nanos outside 0..999,999,999 (which protobuf cannot convert) is refused."""
    try:
        return value.ToDatetime(UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(field, "must be a valid timestamp between 0001-01-01 and 9999-12-31") from None

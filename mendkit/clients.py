"""Client channels for calling other Mend services.

Every call gets a deadline (`DEFAULT_DEADLINE_S` unless the caller sets one),
so a hung peer can never hang the caller. Every channel carries a retry policy
through gRPC's service config; only methods the caller names as idempotent are
retried. In Mend that is every read and every write idempotent by contract
(client-chosen ids, replace-on-vote, repeatable marks). A channel given the
caller's token sends it with every call (`authorization: Bearer <token>`), so
the services it calls know which service is calling (`mendkit.access`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import grpc

DEFAULT_DEADLINE_S = 5.0

_RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config(idempotent_methods: Iterable[tuple[str, str]]) -> str:
    """The JSON service config that retries the given (service, method) pairs."""
    names = [{"service": service, "method": method} for service, method in idempotent_methods]
    # round_robin: with a `dns:///` name that resolves to several pods (a
    # headless Service), calls spread across all of them; with one address it
    # behaves like the default pick_first.
    config: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if names:
        config["methodConfig"] = [{"name": names, "retryPolicy": _RETRY_POLICY}]
    return json.dumps(config)


class _CallDefaults(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """A deadline on every call that has none, and the caller's credential."""

    def __init__(self, deadline_s: float | None, token: str = "") -> None:
        self.deadline_s = deadline_s
        self._authorization = ("authorization", f"Bearer {token}") if token else None

    def __repr__(self) -> str:  # never the token
        return f"_CallDefaults(deadline_s={self.deadline_s})"

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        timeout = details.timeout if details.timeout is not None else self.deadline_s
        metadata = details.metadata
        if self._authorization is not None:
            metadata = grpc.aio.Metadata(*(metadata or ()), self._authorization)
        return grpc.aio.ClientCallDetails(details.method, timeout, metadata, details.credentials,
                                          details.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(self._details(details), request)


def bearer(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that send `token` with every call of a channel, and nothing
    else (no deadline): for tools and tests that open channels of their own."""
    return [_CallDefaults(None, token)]


def insecure_channel(
    address: str,
    idempotent_methods: Iterable[tuple[str, str]] = (),
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    token: str = "",
) -> grpc.aio.Channel:
    """An aio channel to `address`: a default deadline on every call, retries on
    UNAVAILABLE for `idempotent_methods`, and `token` (the caller's own) on
    every call when given."""
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(idempotent_methods)),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[_CallDefaults(deadline_s, token)],
    )

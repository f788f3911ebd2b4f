"""Client channels for calling other Mend services.

Every call gets a deadline (`DEFAULT_DEADLINE_S` unless the caller sets one),
so a hung peer can never hang the caller. Every channel carries a retry policy
through gRPC's service config; only methods the caller names as idempotent are
retried. In Mend that is every read and every write idempotent by contract
(client-chosen ids, replace-on-vote, repeatable marks).
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


def _with_deadline(details: grpc.aio.ClientCallDetails, deadline_s: float) -> grpc.aio.ClientCallDetails:
    if details.timeout is not None:
        return details
    return grpc.aio.ClientCallDetails(
        details.method, deadline_s, details.metadata, details.credentials, details.wait_for_ready
    )


class _UnaryDeadline(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s

    async def intercept_unary_unary(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_with_deadline(details, self.deadline_s), request)


class _StreamDeadline(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s

    async def intercept_unary_stream(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_with_deadline(details, self.deadline_s), request)


def insecure_channel(
    address: str,
    idempotent_methods: Iterable[tuple[str, str]] = (),
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> grpc.aio.Channel:
    """An aio channel to `address`: a default deadline on every call, and
    retries on UNAVAILABLE for `idempotent_methods`."""
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(idempotent_methods)),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[_UnaryDeadline(deadline_s), _StreamDeadline(deadline_s)],
    )

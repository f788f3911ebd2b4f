"""Client channels for calling other Mend services.

Every channel carries a retry policy through gRPC's service config. Only
idempotent methods are listed as retryable: in Mend that is every read and
every write that is idempotent by contract (client-chosen ids, replace-on-vote,
repeatable marks). Deadlines are set per call with `DEFAULT_DEADLINE_S`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

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
    config: dict[str, object] = {"methodConfig": [{"name": names, "retryPolicy": _RETRY_POLICY}]} if names else {}
    return json.dumps(config)


def insecure_channel(address: str, idempotent_methods: Iterable[tuple[str, str]] = ()) -> grpc.aio.Channel:
    """An aio channel to `address` with retries for `idempotent_methods`."""
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(idempotent_methods)),
            ("grpc.keepalive_time_ms", 30_000),
        ],
    )

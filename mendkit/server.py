"""The grpc.aio server bootstrap every service uses: the library health
servicer, reflection, the shared interceptors (errors and logs; who may call
what, from each registration's `access`), and graceful shutdown on SIGTERM or
SIGINT (health flips to NOT_SERVING, in-flight RPCs get `grace` seconds, then
the service's own resources are closed)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mendkit.access import AccessInterceptor, Rule, method_rules
from mendkit.credentials import Verifier
from mendkit.interceptors import ErrorAndLogInterceptor

_log = logging.getLogger("mendkit.server")
# A servicer class; each generated `add_FooServicer_to_server` takes its own.
S = TypeVar("S")
# The health service name a liveness probe asks: SERVING while the process serves,
# whatever its dependencies do, so an outage of the database never restarts pods.
# Readiness is "" and each service's own name: SERVING only while `ready` says so.
LIVENESS = "liveness"
READINESS_INTERVAL_S = 2.0
# Checks in a row that must fail before a service says NOT_SERVING: one slow check
# (a busy pool, a pause) is not an outage, and leaving rotation has a cost too.
READINESS_FAILURES = 3

# 4 MiB is gRPC's default; Mend's largest request (a knowledge upsert batch) stays far below.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class Registration(Generic[S]):
    """One servicer to serve: `add` is the generated `add_FooServicer_to_server`,
    `service_name` the full proto name (for health and reflection), `access`
    who may call each of its methods (by method name; every method named)."""

    servicer: S
    add: Callable[[S, grpc.aio.Server], None]
    service_name: str
    access: Mapping[str, Rule] | None = None


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    service_names: list[str] = field(default_factory=list)
    readiness: asyncio.Task[None] | None = None

    async def stop(self, grace: float) -> None:
        if self.readiness is not None:
            self.readiness.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def _follow_readiness(health_servicer: health.aio.HealthServicer, names: list[str],
                            ready: Callable[[], Awaitable[bool]]) -> None:
    """Keeps "" and every service name SERVING while `ready()` holds; NOT_SERVING
    once it has failed READINESS_FAILURES times in a row, until it holds again."""
    serving, failures = True, 0
    while True:
        await asyncio.sleep(READINESS_INTERVAL_S)
        try:
            passed = await asyncio.wait_for(ready(), READINESS_INTERVAL_S)
        except Exception:  # noqa: BLE001 - a check that fails or hangs means not ready
            passed = False
        failures = 0 if passed else failures + 1
        now = passed or (serving and failures < READINESS_FAILURES)
        if now != serving:
            serving = now
            _log.warning("ready again" if now else "not ready: a dependency is unreachable")
            status = health_pb2.HealthCheckResponse.SERVING if now else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ["", *names]:
                await health_servicer.set(name, status)


def _access(registrations: Sequence[Registration[Any]], verifier: Verifier | None) -> AccessInterceptor:
    rules: dict[str, Rule] = {}
    for registration in registrations if verifier is not None else ():
        if registration.access is None:
            raise ValueError(f"{registration.service_name} declares no access rules")
        rules |= method_rules(registration.service_name, registration.access)
    return AccessInterceptor(rules, verifier)


async def start_server(registrations: Sequence[Registration[Any]], address: str,
                       ready: Callable[[], Awaitable[bool]] | None = None, *,
                       verifier: Verifier | None = None) -> RunningServer:
    """Builds and starts a server on `address` ("host:port"; port 0 picks a free one).
    `ready`, checked every READINESS_INTERVAL_S, says whether what the services
    need (their database) is reachable; health follows it, LIVENESS does not.
    With a `verifier`, every call is checked against its registration's `access`
    (each registration must declare it); None serves every method to anyone, as
    to an admin, which only an in-process server of a benchmark may do:
    `python -m <service>` always checks (`serve_until_signalled`)."""
    # Inside the error interceptor, so a refusal is logged like any other answer.
    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorAndLogInterceptor(), _access(registrations, verifier)]
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Don't let a second process silently share the port.
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [r.service_name for r in registrations]
    for registration in registrations:
        registration.add(registration.servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot listen on {address}: is the port already taken? ({error})") from None
    await server.start()
    for name in ["", *names, LIVENESS]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    following = None if ready is None else asyncio.ensure_future(_follow_readiness(health_servicer, names, ready))
    return RunningServer(server=server, health=health_servicer, port=port, service_names=names, readiness=following)


async def serve_until_signalled(
    registrations: Sequence[Registration[Any]],
    address: str,
    *,
    grace: float = 10.0,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ready: Callable[[], Awaitable[bool]] | None = None,
    verifier: Verifier,
) -> None:
    """Serves until SIGTERM/SIGINT, then shuts down gracefully. Every call is
    checked: `verifier` knows the tokens of the identities the services accept."""
    running = await start_server(registrations, address, ready, verifier=verifier)
    _log.info("serving", extra={"address": address, "port": running.port, "services": running.service_names})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    _log.info("shutting down", extra={"grace_s": grace})
    await running.stop(grace)
    if on_shutdown is not None:
        await on_shutdown()
    _log.info("stopped")

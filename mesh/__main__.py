"""Brings the whole mesh up on its embedded defaults, on one machine.

Starts the embedded PostgreSQL (unless DATABASE_URL is set), applies
migrations, prepares the embedded chat model, loads the sample knowledge base,
starts each service as its own process, then the chat page's static server
and Envoy in front of both, waits until every one is ready (SERVING on the gRPC
health service; the page answering through Envoy), prints the URL to open, and
on Ctrl-C (or SIGTERM) stops every process cleanly, the database last. Service
logs go to `.mend/logs/<service>.log`. A second run reuses the data.

Admin RPCs need the admin token (`mendkit.credentials`): the first run makes one
in `.mend/admin.token` (mode 0600; `MEND_ADMIN_TOKEN` overrides it) and the
launcher prints it with its grpcurl examples. The bot's and the trainer's own
tokens, for their calls to the other services, are kept beside it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mendkit import addresses
from mendkit.credentials import ADMIN, Credential, token_file, token_variable
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database
from mendkit.settings import SettingsError, Shared, env_int


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port_variable: str
    default_port: int
    # How readiness is checked: the gRPC health service, or an HTTP GET of the page.
    probe: str = "grpc"
    arguments: tuple[str, ...] = ()


# The order is the start order: a part starts after those it calls.
SERVICES = [
    Service("interactions", "interactions", addresses.INTERACTIONS.port_variable, addresses.INTERACTIONS.port),
    Service("bot", "bot", addresses.BOT.port_variable, addresses.BOT.port),
    Service("trainer", "trainer", addresses.TRAINER.port_variable, addresses.TRAINER.port),
    Service("web", "mesh.static_site", addresses.WEB.port_variable, addresses.WEB.port, probe="http"),
    Service("gateway", "gateway_envoy", addresses.GATEWAY.port_variable, addresses.GATEWAY.port, probe="http",
            arguments=("run",)),
]
# Envoy's admin interface (loopback only) needs a free port too.
GATEWAY_ADMIN = Service("gateway admin", "", addresses.GATEWAY_ADMIN.port_variable, addresses.GATEWAY_ADMIN.port)
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
SAMPLE_KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge" / "sample"


def say(message: str) -> None:
    print(f"mesh: {message}", flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers themselves bind: a port left in TIME_WAIT by the
        # previous run is free; one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _grpc_serving(port: int) -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            # types-grpcio-health-checking declares HealthStub without its methods.
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)  # type: ignore[attr-defined]
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


async def _page_served(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
    except httpx.HTTPError:
        return False


READY_WAIT_S = 60  # a part that is not ready by then is reported as failed
# How the printed examples call: with the admin token, which the line before them exports.
GRPCURL = 'grpcurl -plaintext -H "authorization: Bearer $TOKEN"'


def admin_token_line(home: Path) -> str:
    """The admin token, as a shell line that exports it for the examples: the
    one MEND_ADMIN_TOKEN gives, or the one kept in MEND_HOME (made now on a
    first run, before any service starts, so that they all find it)."""
    credential = Credential.from_env(ADMIN, home)
    if credential.given_token:
        return f"admin token (MEND_ADMIN_TOKEN):  export TOKEN='{credential.token()}'"
    if credential.given_digest:
        return f"admin token: yours ({token_variable(ADMIN)}_SHA256 is set): export TOKEN=<it>"
    token = credential.token()
    return f"admin token (kept in {home / token_file(ADMIN)}):  export TOKEN='{token}'"


async def wait_until_ready(service: Service, port: int, process: asyncio.subprocess.Process) -> None:
    deadline = asyncio.get_running_loop().time() + READY_WAIT_S
    ready = _grpc_serving if service.probe == "grpc" else _page_served
    while not await ready(port):
        if process.returncode is not None:
            raise RuntimeError(f"{service.name} exited with status {process.returncode} while starting")
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"{service.name} did not become ready within {READY_WAIT_S} s")
        await asyncio.sleep(0.2)


async def run() -> int:
    shared = Shared.from_env()  # the database and home every service will read too
    home = shared.home
    ports = {s.name: env_int(s.port_variable, s.default_port, minimum=1, maximum=65535)
             for s in [*SERVICES, GATEWAY_ADMIN]}
    if len(set(ports.values())) < len(ports):
        say(f"two parts are set to the same port: {ports}")
        return 1
    for service in [*SERVICES, GATEWAY_ADMIN]:
        if not port_is_free(ports[service.name]):
            say(f"port {ports[service.name]} for {service.name} is already in use; "
                f"stop whatever holds it or set {service.port_variable} to a free port")
            return 1

    if not (WEB_DIST / "index.html").is_file():
        say(f"the chat page is not built ({WEB_DIST} is missing); run ./scripts/setup or `npm run build:web`")
        return 1
    token_line = admin_token_line(home)

    database_url = shared.database_url
    database: EmbeddedPostgres | None = None
    if not database_url:
        database = EmbeddedPostgres(home=home, port=shared.embedded_pg_port)
        say(f"starting the embedded PostgreSQL (data in {database.data_dir})")
        database_url = await asyncio.to_thread(database.start)
        await ensure_database(database_url)

    processes: dict[str, asyncio.subprocess.Process] = {}
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": database_url, "MEND_HOME": str(home),
           **{part.address_variable: f"{addresses.LOOPBACK}:{ports[part.name]}"
              for part in (addresses.INTERACTIONS, addresses.BOT, addresses.WEB)},
           addresses.GATEWAY_ADMIN.port_variable: str(ports[addresses.GATEWAY_ADMIN.name])}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        steps = [
            ("applying database migrations", ["interactions", "migrate"]),
            ("applying database migrations", ["bot", "migrate"]),
            ("applying database migrations", ["trainer", "migrate"]),
            ("preparing the embedded chat model (once)", ["bot", "prepare-model"]),
            ("loading the sample knowledge base (unchanged entries are skipped)",
             ["bot", "ingest", str(SAMPLE_KNOWLEDGE), "--source", "sample-kb"]),
        ]
        for message, arguments in steps:
            say(message)
            step = await asyncio.create_subprocess_exec(sys.executable, "-m", *arguments, env=env)
            if await step.wait() != 0:
                say(f"`python -m {' '.join(arguments)}` failed; see the output above")
                return 1

        for service in SERVICES:
            port = ports[service.name]
            log_path = logs / f"{service.name}.log"
            say(f"starting {service.name} on 127.0.0.1:{port} (log: {log_path})")
            # Opened off the event loop; the child keeps its own copy of the descriptor.
            with await asyncio.to_thread(open, log_path, "ab") as log:
                processes[service.name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", service.module, *service.arguments,
                    env={**env, service.port_variable: str(port)},
                    stdout=log, stderr=log,
                    # Own process group: Ctrl-C reaches the launcher only, which then stops each child in order.
                    start_new_session=True,
                )
            await wait_until_ready(service, port, processes[service.name])

        say("Mend is up:")
        say(f"  chat in your browser:  http://127.0.0.1:{ports['gateway']}/")
        say("  admin (gRPC with reflection; not reachable through the browser's gateway; admin RPCs need the token):")
        say(f"  {token_line}")
        for service in SERVICES:
            if service.probe == "grpc":
                say(f"  {service.name:<13} grpc://127.0.0.1:{ports[service.name]}   "
                    f"(try: {GRPCURL} 127.0.0.1:{ports[service.name]} list)")
        say("  chat from a terminal:")
        say(f"    {GRPCURL} -d '{{\"query\": \"How long do I have to return something?\"}}' "
            f"127.0.0.1:{ports['bot']} mend.bot.v1.ChatService/ChatStream")
        say("  heal from dislikes now (fixes wait for review; see README):")
        say(f"    {GRPCURL} -d '{{\"force\": true}}' 127.0.0.1:{ports['trainer']} "
            "mend.trainer.v1.TrainerService/StartRun")
        say("Press Ctrl-C to stop.")

        exited = [asyncio.ensure_future(p.wait()) for p in processes.values()]
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopped, *exited], return_when=asyncio.FIRST_COMPLETED)
        for name, process in processes.items():
            if process.returncode is not None and not stop.is_set():
                say(f"{name} exited unexpectedly with status {process.returncode}; see {logs / (name + '.log')}")
                return 1
        return 0
    except RuntimeError as error:
        say(str(error))
        return 1
    finally:
        say("stopping")
        for name, process in reversed(list(processes.items())):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    say(f"{name} did not stop within 20 s; killing it")
                    process.kill()
                    await process.wait()
        if database is not None:
            await asyncio.to_thread(database.stop)
        say("stopped")


def main() -> int:
    try:
        return asyncio.run(run())
    except SettingsError as error:
        say(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())

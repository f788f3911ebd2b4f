"""Starts the real edge for tests and benchmarks: Envoy (`python -m
gateway_envoy run`, the same command the mesh runs) and the page's static
server, on free ports, in front of whatever upstream addresses are given."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO, free_port


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (the OS may hand the same free port out twice)."""
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(free_port())
    return sorted(chosen)


@dataclass
class Edge:
    port: int
    admin_port: int
    access_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines()


async def _wait(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(150):
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


@asynccontextmanager
async def running_edge(home: Path, *, bot: str, interactions: str, **settings: str) -> AsyncIterator[Edge]:
    """Envoy + the page server. `settings` are extra environment variables
    (GATEWAY_RATE_LIMIT_PER_SECOND=..., OTEL_EXPORTER_OTLP_ENDPOINT=...)."""
    web_port, port, admin_port = free_ports(3)
    env = {**os.environ, "MEND_HOME": str(home), "WEB_PORT": str(web_port), "WEB_ADDR": f"127.0.0.1:{web_port}",
           "GATEWAY_PORT": str(port), "GATEWAY_ADMIN_PORT": str(admin_port), "BOT_ADDR": bot,
           "INTERACTIONS_ADDR": interactions, "OTEL_EXPORTER_OTLP_ENDPOINT": "", **settings}
    access_log = home / f"envoy-{port}.log"
    web = await asyncio.create_subprocess_exec(sys.executable, "-m", "mesh.static_site", cwd=REPO, env=env,
                                               stdout=asyncio.subprocess.DEVNULL)
    with open(access_log, "wb") as log:
        envoy = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway_envoy", "run", cwd=REPO,
                                                     env=env, stdout=log)
    try:
        await _wait(f"http://127.0.0.1:{web_port}/", web, "the page server")
        await _wait(f"http://127.0.0.1:{admin_port}/ready", envoy, "envoy")
        yield Edge(port, admin_port, access_log)
    finally:
        await _stop(envoy)
        await _stop(web)

"""A closed-loop gRPC load generator that runs inside a worker process.

Each of `concurrency` tasks keeps exactly one call in flight: it sends, waits
for the answer, and sends again. Calls that finish inside the common window
[start_at, end_at] (wall-clock time, shared by every worker process) are the
measured ones; those before it are the warm-up.

Requests are sent as pre-serialised bytes and responses kept as bytes: parsing
them would only spend the load generator's CPU, which on a small machine is
the server's CPU too. The status code is still checked on every call.

A job given a bearer token sends it with every call (`authorization: Bearer
<token>` metadata, built once and passed to each call rather than through a
client interceptor, which would cost the load generator CPU on every call).
The token reaches the worker inside the pickled Job; it is never printed,
logged or part of the Job's repr.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc

CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Job:
    address: str
    method: str  # full gRPC path, e.g. "/grpc.health.v1.Health/Check"
    # "module:function"; called as function(*factory_args, task=i, tasks=n), it
    # returns an endless iterator of serialised requests for task i of n.
    factory: str
    factory_args: tuple
    concurrency: int
    start_at: float
    end_at: float
    # The caller's bearer token, sent with every call ("": none).
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Result:
    latencies_s: list[float]
    errors: dict[str, int]
    error_samples: dict[str, str]
    cpu_s: float  # this process's CPU time (all threads) inside the window


def authorization(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that presents `token` ("": none), to pass as `metadata=`."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def ready() -> None:
    """Submitted once per worker so that process start-up and imports happen
    before the first cell, not inside its warm-up."""


def run(job: Job) -> Result:
    return asyncio.run(_run(job))


def _factory(job: Job) -> Callable[..., Iterator[bytes]]:
    module, name = job.factory.split(":")
    return getattr(importlib.import_module(module), name)


async def _run(job: Job) -> Result:
    make_requests = _factory(job)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    metadata = authorization(job.token) or None

    async def client(requests: Iterator[bytes]) -> None:
        while time.time() < job.end_at:
            request = next(requests)
            started = time.perf_counter()
            try:
                await call(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
            except grpc.aio.AioRpcError as error:
                # Errors count in the warm-up too: a benchmark with errors is void.
                errors[error.code().name] += 1
                samples.setdefault(error.code().name, error.details() or "")
                continue
            latency = time.perf_counter() - started
            if job.start_at <= time.time() <= job.end_at:
                latencies.append(latency)

    async def cpu_in_window() -> float:
        await asyncio.sleep(max(0.0, job.start_at - time.time()))
        before = time.process_time()
        await asyncio.sleep(max(0.0, job.end_at - time.time()))
        return time.process_time() - before

    async with grpc.aio.insecure_channel(job.address) as channel:
        call = channel.unary_unary(job.method)  # no (de)serialisers: bytes in, bytes out
        cpu = asyncio.create_task(cpu_in_window())
        await asyncio.gather(
            *(client(make_requests(*job.factory_args, task=i, tasks=job.concurrency)) for i in range(job.concurrency))
        )
        cpu_s = await cpu
    return Result(latencies, dict(errors), samples, cpu_s)

"""The library health service through the kit's interceptor, as client-side
health checking and probes use it: Watch streams the status (it once answered
INTERNAL on every service) and List, which the library does not implement, is
UNIMPLEMENTED rather than INTERNAL."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit.server import start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
INTERACTIONS = ipb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
KNOWLEDGE = bpb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name


async def test_interactions_health_watch_and_list(interactions_address):
    await watch_streams_serving_and_list_is_unimplemented(interactions_address, INTERACTIONS)


async def test_bot_health_watch_and_list(knowledge_address):
    await watch_streams_serving_and_list_is_unimplemented(knowledge_address, KNOWLEDGE)


async def watch_streams_serving_and_list_is_unimplemented(address: str, service_name: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", service_name):
            watch = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert (await watch.read()).status == SERVING
            watch.cancel()
        with pytest.raises(grpc.aio.AioRpcError) as listed:
            await health.List(health_pb2.HealthListRequest(), timeout=10)
        assert listed.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # Still serving after both.
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=10)).status == SERVING


async def test_watch_sees_a_server_go_not_serving_on_shutdown():
    running = await start_server([], "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert (await watch.read()).status == SERVING
        stopping = asyncio.ensure_future(running.stop(2))
        assert (await watch.read()).status == NOT_SERVING
        await stopping


async def test_readiness_follows_the_dependency_and_liveness_does_not(monkeypatch):
    """While `ready` fails (a database outage), the overall and service statuses
    are NOT_SERVING, so probes take the pod out of rotation; the liveness service
    stays SERVING, so the pod is not restarted; both recover with the dependency."""
    from mendkit import server as kit_server

    monkeypatch.setattr(kit_server, "READINESS_INTERVAL_S", 0.05)
    up, failed = True, 0

    async def ready() -> bool:
        nonlocal failed
        if not up:
            failed += 1
            raise OSError("the database is unreachable")
        return True

    running = await start_server([], "127.0.0.1:0", ready=ready)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def status(service: str) -> int:
                return (await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status

            async def settled(service: str, expected: int) -> bool:
                for _ in range(100):
                    if await status(service) == expected:
                        return True
                    await asyncio.sleep(0.02)
                return False

            assert await status("") == SERVING and await status(kit_server.LIVENESS) == SERVING
            up = False
            assert await settled("", NOT_SERVING)
            assert failed >= kit_server.READINESS_FAILURES  # one slow or failed check is not an outage
            await asyncio.sleep(0.2)  # failing on: it stays out of rotation
            assert await status("") == NOT_SERVING
            assert await status(kit_server.LIVENESS) == SERVING
            up = True
            assert await settled("", SERVING)
    finally:
        await running.stop(1)

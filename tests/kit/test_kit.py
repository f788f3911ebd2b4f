"""The shared kit: settings, page tokens, JSON logs, the client retry policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging

import grpc
import pytest
from opentelemetry import trace

from mendkit import clients, conversation_tokens
from mendkit.conversation_tokens import ConversationTokens
from mendkit.errors import InvalidArgument
from mendkit.logs import JsonFormatter
from mendkit.page_tokens import PageTokens
from mendkit.settings import SettingsError, env_bool, env_choice, env_int, env_str
from tests.support import channel as admin_channel


def test_settings_fail_fast_naming_the_variable():
    with pytest.raises(SettingsError, match="^DATABASE_URL is required"):
        env_str("DATABASE_URL", environ={})
    with pytest.raises(SettingsError, match="^INTERACTIONS_PORT must be an integer, got 'abc'"):
        env_int("INTERACTIONS_PORT", 1, environ={"INTERACTIONS_PORT": "abc"})
    with pytest.raises(SettingsError, match="^INTERACTIONS_PORT must be at most 65535"):
        env_int("INTERACTIONS_PORT", 1, maximum=65535, environ={"INTERACTIONS_PORT": "70000"})
    with pytest.raises(SettingsError, match="^X must be true or false"):
        env_bool("X", False, environ={"X": "maybe"})
    with pytest.raises(SettingsError, match="^POLICY must be one of auto, review"):
        env_choice("POLICY", "auto", ("auto", "review"), environ={"POLICY": "sometimes"})
    assert env_int("P", 7, environ={}) == 7 and env_int("P", 7, environ={"P": " 9 "}) == 9
    assert env_bool("B", False, environ={"B": "yes"}) is True


def test_page_tokens_round_trip_and_reject_forgeries():
    tokens = PageTokens(b"0123456789abcdef-secret")
    token = tokens.encode([123, "abc"], {"feedback": -1})
    assert tokens.decode(token, {"feedback": -1}) == [123, "abc"]
    with pytest.raises(InvalidArgument, match="different filters"):
        tokens.decode(token, {"feedback": 1})
    forged = PageTokens(b"another-secret-of-16+").encode([123, "abc"], {"feedback": -1})
    for bad in (forged, token[:-2], "", "%%%", "a" * 40):
        with pytest.raises(InvalidArgument, match="^page_token: "):
            tokens.decode(bad, {"feedback": -1})


def test_conversation_tokens_are_bound_to_their_conversation_and_secret():
    secret = b"0123456789abcdef-secret"
    tokens = ConversationTokens(secret)
    token = tokens.issue("conv-1")
    assert token == ConversationTokens(secret).issue("conv-1")  # stateless: any replica with the secret agrees
    assert tokens.valid("conv-1", token)
    assert not tokens.valid("conv-2", token) and not tokens.valid("", token) and not tokens.valid("conv-1", "")
    assert not ConversationTokens(b"another-secret-of-16+").valid("conv-1", token)
    # Domain-separated: not the plain HMAC of the id under the shared secret itself.
    plain = hmac.new(secret, b"conv-1", hashlib.sha256).digest()
    assert not tokens.valid("conv-1", base64.urlsafe_b64encode(plain).decode().rstrip("="))
    for bad in (token[:-1], token + "A", "%" * 43, "a b" * 14 + "c"):
        with pytest.raises(InvalidArgument, match="^conversation_token: "):
            tokens.valid("conv-1", bad)
    with pytest.raises(ValueError, match="16 bytes"):
        ConversationTokens(b"short")


def test_without_a_shared_secret_the_services_of_one_home_share_a_kept_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MEND_PAGE_TOKEN_SECRET", raising=False)
    first = conversation_tokens.secret_from_env(tmp_path / "home")
    assert conversation_tokens.secret_from_env(tmp_path / "home") == first and len(first) == 32
    assert (tmp_path / "home" / conversation_tokens.KEY_FILE).stat().st_mode & 0o077 == 0
    assert conversation_tokens.secret_from_env(tmp_path / "other") != first
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [conversation_tokens.KEY_FILE]
    monkeypatch.setenv("MEND_PAGE_TOKEN_SECRET", "a-shared-secret-of-the-replicas")
    assert conversation_tokens.secret_from_env(tmp_path / "home") == b"a-shared-secret-of-the-replicas"


def test_json_logs_carry_trace_and_span_ids_and_extra_fields():
    formatter = JsonFormatter("svc")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        record = logging.LogRecord("l", logging.INFO, __file__, 1, "hello %s", ("you",), None)
        record.__dict__["rpc.method"] = "/a/B"
        line = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert line["message"] == "hello you" and line["service"] == "svc" and line["level"] == "info"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["rpc.method"] == "/a/B"


@pytest.fixture
async def flaky_server():
    """A server whose two methods fail with UNAVAILABLE twice before answering."""
    calls = {"Idempotent": 0, "Other": 0}

    def handler(name: str):
        async def behaviour(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            calls[name] += 1
            if calls[name] <= 2:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
            return b"ok"

        return grpc.unary_unary_rpc_method_handler(behaviour)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Flaky", {n: handler(n) for n in calls})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", calls
    await server.stop(0)


async def test_client_channel_retries_only_idempotent_methods(flaky_server):
    address, calls = flaky_server
    async with clients.insecure_channel(address, [("test.Flaky", "Idempotent")]) as channel:
        answer = await channel.unary_unary("/test.Flaky/Idempotent")(b"", timeout=clients.DEFAULT_DEADLINE_S)
        assert answer == b"ok" and calls["Idempotent"] == 3
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary("/test.Flaky/Other")(b"", timeout=clients.DEFAULT_DEADLINE_S)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and calls["Other"] == 1


async def test_client_channel_puts_a_deadline_on_every_call():
    """A peer that never answers cannot hang the caller."""
    async def never(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(3600)
        return b""

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "test.Slow", {"Hang": grpc.unary_unary_rpc_method_handler(never)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with clients.insecure_channel(f"127.0.0.1:{port}", deadline_s=0.3) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await channel.unary_unary("/test.Slow/Hang")(b"")
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await server.stop(0)


async def test_graceful_shutdown_finishes_in_flight_calls_and_flips_health():
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from mendkit.server import Registration, start_server

    started = asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started.set()
        await asyncio.sleep(0.5)  # still working when the shutdown begins
        return b"done"

    def add(servicer: object, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "test.Slow", {"Work": grpc.unary_unary_rpc_method_handler(slow)})])

    running = await start_server([Registration(None, add, "test.Slow")], "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest(service="test.Slow"))).status == \
            health_pb2.HealthCheckResponse.SERVING
        in_flight = asyncio.ensure_future(channel.unary_unary("/test.Slow/Work")(b"", timeout=5))
        await started.wait()
        await running.health.enter_graceful_shutdown()
        assert (await health.Check(health_pb2.HealthCheckRequest(service="test.Slow"))).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        await running.server.stop(5)
        assert await in_flight == b"done"


async def test_request_bytes_that_do_not_parse_are_invalid_argument(interactions_address):
    """Not grpc's UNKNOWN: unary and server-streaming methods alike name the
    message they expected, and the server goes on serving."""
    async with admin_channel(interactions_address) as channel:
        for method, expected, call in (
                ("/mend.interactions.v1.InteractionsService/CreateInteraction",
                 "mend.interactions.v1.CreateInteractionRequest", channel.unary_unary),
                ("/grpc.health.v1.Health/Watch", "grpc.health.v1.HealthCheckRequest", channel.unary_stream)):
            rpc = call(method)(b"\xff\xff\xff\xff", timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                if method.endswith("Watch"):
                    async for _ in rpc:
                        pass
                else:
                    await rpc
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value
            assert expected in refused.value.details()
        health = channel.unary_unary("/grpc.health.v1.Health/Check")
        assert await health(b"", timeout=10) == b"\x08\x01"  # SERVING

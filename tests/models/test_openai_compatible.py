"""The OpenAI-compatible chat model and embedder against a real HTTP peer:
tests/doubles/openai_server.py, run as its own process on a free port (the
`peer` fixture in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mendkit.errors import FailedPrecondition, MendError, ResourceExhausted, Unavailable
from mendmodels.chat.base import Message
from mendmodels.chat.openai_compatible import OpenAICompatibleChat
from mendmodels.embeddings.openai_compatible import OpenAICompatibleEmbedder
from mendmodels.providers.openai import OpenAIEndpoint
from tests.doubles.openai_server import answer_for, vector_for
from tests.support import DIMENSION, Peer, free_port

KEY = "sk-test-0123456789-SECRET"
MESSAGES = [Message("system", "You are Mend."), Message("user", "Where is my tent order?")]


class Recorded:
    """What the server logged since the test began."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def entries(self, event: str = "request") -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as log:
            log.seek(self.offset)
            return [entry for line in log if line.strip() and (entry := json.loads(line))["event"] == event]


@pytest.fixture
def recorded(peer: Peer) -> Recorded:
    return Recorded(peer.log)


@pytest.fixture
async def make(peer: Peer) -> AsyncIterator:
    """Builds adapters on the test server (or another URL), closing them afterwards."""
    made: list[Any] = []

    def build(kind: type, model: str, **options: Any) -> Any:
        options.setdefault("base_url", peer.url)
        if kind is OpenAICompatibleEmbedder:
            options.setdefault("dimension", DIMENSION)
        made.append(adapter := kind(model=model, **options))
        return adapter

    yield build
    for adapter in made:
        await adapter.aclose()


def full_text(error: BaseException) -> str:
    """Everything an error would show: message, repr, and the formatted chain."""
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


async def collect(model: OpenAICompatibleChat, max_tokens: int = 100,
                  messages: list[Message] = MESSAGES) -> list[str]:
    return [piece async for piece in model.stream(messages, max_tokens)]


# --- chat -------------------------------------------------------------------------


async def test_chat_streams_the_pieces_in_order_and_sends_the_protocol_body(make, recorded):
    model = make(OpenAICompatibleChat, "qwen2.5:0.5b", temperature=0.0)
    assert model.model_id == "qwen2.5:0.5b"
    pieces = await collect(model, max_tokens=100)
    assert pieces == answer_for("qwen2.5:0.5b", [{"role": "user", "content": "Where is my tent order?"}])
    assert "".join(pieces) == "Echo: Where is my tent order?" and len(pieces) > 3
    [request] = recorded.entries()
    assert request["path"] == "/v1/chat/completions"
    assert request["body"] == {
        "model": "qwen2.5:0.5b", "max_tokens": 100, "temperature": 0.0, "stream": True,
        "messages": [{"role": "system", "content": "You are Mend."},
                     {"role": "user", "content": "Where is my tent order?"}]}


async def test_max_tokens_reaches_the_server(make):
    # The server cuts at max_tokens pieces with finish_reason "length": still a complete stream.
    assert await collect(make(OpenAICompatibleChat, "m"), max_tokens=2) == ["Echo:", " Where"]


async def test_the_authorization_header_is_sent_only_with_a_key(make, recorded):
    await collect(make(OpenAICompatibleChat, "m"))
    await collect(make(OpenAICompatibleChat, "m", api_key=KEY))
    await make(OpenAICompatibleEmbedder, "e", api_key=KEY).embed(["hello"])
    await make(OpenAICompatibleEmbedder, "e").embed(["hello"])
    assert [r["auth_scheme"] for r in recorded.entries()] == [None, "Bearer", "Bearer", None]


async def test_closing_early_closes_the_connection(make, recorded):
    stream = make(OpenAICompatibleChat, "slow").stream(MESSAGES, 1000)
    pieces = [await anext(stream) for _ in range(3)]
    assert pieces == [" tick"] * 3
    await stream.aclose()
    # The server finds out when its next writes fail: well within a second.
    deadline = time.monotonic() + 5
    while not (gone := recorded.entries("disconnected")) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling another process's log
        await asyncio.sleep(0.05)
    assert gone and gone[0]["model"] == "slow" and gone[0]["sent"] < gone[0]["of"] / 2


async def test_cancelling_the_consumer_closes_the_connection(make, recorded):
    async def consume() -> None:
        async for _ in make(OpenAICompatibleChat, "slow").stream(MESSAGES, 1000):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 5
    while not recorded.entries("disconnected") and time.monotonic() < deadline:  # noqa: ASYNC110 - polling another process's log
        await asyncio.sleep(0.05)
    assert recorded.entries("disconnected")


@pytest.mark.parametrize(("model", "error", "server_says"), [
    ("rate-limited", ResourceExhausted, "Rate limit reached"),
    ("broken", Unavailable, "had an error while processing"),
    ("unauthorized", FailedPrecondition, "Incorrect API key provided"),
])
async def test_chat_http_failures_map_to_domain_errors_without_the_key(make, peer, model, error, server_says):
    with pytest.raises(MendError) as raised:
        await collect(make(OpenAICompatibleChat, model, api_key=KEY))
    assert type(raised.value) is error
    message = str(raised.value)
    assert peer.url in message and model in message and server_says in message
    # "unauthorized" echoes the bearer token in its message, as careless servers do.
    assert KEY not in full_text(raised.value)


async def test_a_rejected_request_is_a_failed_precondition_with_the_servers_message(make, peer):
    with pytest.raises(FailedPrecondition) as raised:
        await collect(make(OpenAICompatibleChat, "m", api_key=KEY), max_tokens=0)
    assert "HTTP 400" in str(raised.value) and "'max_tokens' must be an integer" in str(raised.value)
    assert peer.url in str(raised.value) and KEY not in full_text(raised.value)


async def test_a_server_that_is_down_is_unavailable(make):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(Unavailable) as chat_error:
        await collect(make(OpenAICompatibleChat, "m", base_url=url, api_key=KEY))
    with pytest.raises(Unavailable) as embed_error:
        await make(OpenAICompatibleEmbedder, "e", base_url=url, api_key=KEY).embed(["hello"])
    for raised in (chat_error, embed_error):
        assert url in str(raised.value) and "ConnectError" in str(raised.value)
        assert KEY not in full_text(raised.value)


@pytest.mark.parametrize("model", ["error-midway", "cut-off", "ends-early"])
async def test_a_failure_mid_answer_is_unavailable_after_the_pieces_so_far(make, model):
    pieces: list[str] = []
    with pytest.raises(Unavailable) as raised:
        async for piece in make(OpenAICompatibleChat, model, api_key=KEY).stream(MESSAGES, 100):
            pieces.append(piece)
    assert pieces == ["Echo:", " Where"]
    assert model in str(raised.value) and KEY not in full_text(raised.value)


async def test_silence_past_the_timeout_is_unavailable(make):
    # The server stalls for 5 s and then answers: without the client's timeout
    # the call would succeed, so the ReadTimeout is the timeout at work.
    with pytest.raises(Unavailable, match="ReadTimeout"):
        await collect(make(OpenAICompatibleChat, "stalls", timeout_s=0.5))


def test_a_base_url_without_a_scheme_is_refused_up_front():
    with pytest.raises(ValueError, match="http://"):
        OpenAICompatibleChat("localhost:11434/v1", "m")


async def test_the_key_never_reaches_the_logs(make, caplog):
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at INFO and DEBUG
    await collect(make(OpenAICompatibleChat, "m", api_key=KEY))
    await make(OpenAICompatibleEmbedder, "e", api_key=KEY).embed(["hello"])
    with pytest.raises(FailedPrecondition):
        await collect(make(OpenAICompatibleChat, "unauthorized", api_key=KEY))
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the client's logs were captured
    assert KEY not in caplog.text
    assert KEY not in "".join(str(r.args) for r in caplog.records)


# --- embeddings ---------------------------------------------------------------------


async def test_embeddings_batch_keep_the_order_and_are_unit_float32(make, recorded):
    embedder = make(OpenAICompatibleEmbedder, "nomic-embed-text")
    assert embedder.model_id == f"openai:nomic-embed-text:{DIMENSION}" and embedder.dimension == DIMENSION
    texts = [f"text number {i}" for i in range(150)]
    vectors = await embedder.embed(texts)
    assert vectors.shape == (150, DIMENSION) and vectors.dtype == np.float32
    expected = np.array([vector_for(t, DIMENSION) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    requests = recorded.entries()
    assert [len(r["body"]["input"]) for r in requests] == [64, 64, 22]
    assert [t for r in requests for t in r["body"]["input"]] == texts
    assert all(r["path"] == "/v1/embeddings" and r["body"]["model"] == "nomic-embed-text" for r in requests)
    assert set(requests[0]["body"]) == {"model", "input"}


@pytest.mark.parametrize(("base_url", "leaves"), [
    ("http://localhost:11434/v1", False), ("http://127.0.0.1:8080/v1", False), ("http://[::1]:8080/v1", False),
    ("http://127.0.0.2:8080/v1", False), ("https://api.openai.com/v1", True), ("http://10.0.0.5:8000/v1", True),
    ("http://vllm.models.svc:8000/v1", True), ("http://localhost.example.com/v1", True),
])
def test_a_server_off_this_machine_is_known_as_such(base_url, leaves):
    assert OpenAICompatibleChat(base_url, "m").leaves_the_machine is leaves
    assert OpenAIEndpoint(base_url, "m", "", 5).leaves_the_machine is leaves


async def test_embeddings_sent_off_this_machine_have_personal_data_masked(make, recorded):
    embedder = make(OpenAICompatibleEmbedder, "nomic-embed-text")
    embedder._endpoint.leaves_the_machine = True  # as if the test server ran elsewhere
    await embedder.embed(["my card 4111 1111 1111 1111 was charged", "How do I return something?"])
    assert recorded.entries()[-1]["body"]["input"] == ["my card [card number] was charged",
                                                      "How do I return something?"]


async def test_embeddings_are_placed_by_index_not_by_list_order(make):
    texts = ["alpha", "beta", "gamma"]
    vectors = await make(OpenAICompatibleEmbedder, "reversed").embed(texts)  # listed 2, 1, 0
    np.testing.assert_allclose(vectors, [vector_for(t, DIMENSION) for t in texts], atol=1e-6)


async def test_embeddings_are_normalised_whatever_the_server_returns(make):
    vectors = await make(OpenAICompatibleEmbedder, "unnormalised").embed(["alpha", "beta"])  # length 3
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(vectors, [vector_for(t, DIMENSION) for t in ["alpha", "beta"]], atol=1e-6)


async def test_a_dimension_other_than_the_configured_one_is_a_clear_error(make, peer):
    embedder = make(OpenAICompatibleEmbedder, "e", dimension=DIMENSION * 2)
    assert embedder.model_id == f"openai:e:{DIMENSION * 2}"
    with pytest.raises(FailedPrecondition) as raised:
        await embedder.embed(["hello"])
    assert f"{DIMENSION}-dimensional" in str(raised.value) and f"configured dimension is {DIMENSION * 2}" in str(
        raised.value) and peer.url in str(raised.value)


async def test_no_texts_means_no_request(make, recorded):
    vectors = await make(OpenAICompatibleEmbedder, "e").embed([])
    assert vectors.shape == (0, DIMENSION) and recorded.entries() == []


@pytest.mark.parametrize(("model", "texts", "error", "server_says"), [
    ("rate-limited", ["hello"], ResourceExhausted, "Rate limit reached"),
    ("broken", ["hello"], Unavailable, "had an error while processing"),
    ("unauthorized", ["hello"], FailedPrecondition, "Incorrect API key provided"),
    ("e", ["hello", ""], FailedPrecondition, "'input' must be"),  # a 400
])
async def test_embedding_failures_map_to_domain_errors_without_the_key(make, peer, model, texts, error, server_says):
    with pytest.raises(MendError) as raised:
        await make(OpenAICompatibleEmbedder, model, api_key=KEY).embed(texts)
    assert type(raised.value) is error
    assert peer.url in str(raised.value) and model in str(raised.value) and server_says in str(raised.value)
    assert KEY not in full_text(raised.value)


# --- the test server itself -----------------------------------------------------------


async def test_the_server_answers_whole_when_not_streaming_and_rejects_bad_bodies(peer):
    async with httpx.AsyncClient(base_url=peer.url) as client:
        whole = (await client.post("/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}]})).json()
        assert whole["object"] == "chat.completion"
        assert whole["choices"][0]["message"] == {"role": "assistant", "content": "Echo: hi"}
        assert whole["choices"][0]["finish_reason"] == "stop"
        for bad in ({"messages": [{"role": "user", "content": "hi"}]},
                    {"model": "m", "messages": []},
                    {"model": "m", "messages": [{"role": "robot", "content": "hi"}]},
                    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
                    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}):
            response = await client.post("/chat/completions", json=bad)
            assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
        response = await client.post("/embeddings", content=b"not json")
        assert response.status_code == 400 and response.json()["error"]["message"]

"""The Bedrock embedder and chat model against a real boto3 `bedrock-runtime`
client with fake credentials and no network. botocore checks every request we
build against its bundled service model (the published API shape) before any
stub answers.

InvokeModel and all error cases use `botocore.stub.Stubber`. A successful
ConverseStream cannot: Stubber validates its canned response against the output
shape, which wants a dict for `stream`, so it can produce neither an EventStream
nor a list of events. Those tests answer one step later instead, at
`before-send`, with the binary event-stream bytes Bedrock sends; botocore's own
parser turns them into events, so the event dicts are botocore's, not ours.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mendkit.errors import FailedPrecondition, ResourceExhausted, Unavailable
from mendmodels.chat.base import Message
from mendmodels.chat.bedrock import BedrockChat, converse_messages
from mendmodels.embeddings.bedrock import BedrockEmbedder

REGION = "us-east-1"
SECRET = "testing-SECRET-KEY"
TITAN = "amazon.titan-embed-text-v2:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def client() -> Any:
    return boto3.client("bedrock-runtime", region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key=SECRET)


# --- embeddings ---------------------------------------------------------------------------

class JsonBody:
    """Matches an InvokeModel `body` (a JSON string) by its parsed value."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (str, bytes)) and json.loads(other) == self.expected

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def titan_response(vector: list[float]) -> dict[str, Any]:
    data = json.dumps({"embedding": vector, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def titan_params(text: str, dimension: int) -> dict[str, Any]:
    return {"modelId": TITAN, "contentType": "application/json", "accept": "application/json",
            "body": JsonBody({"inputText": text, "dimensions": dimension, "normalize": True})}


async def test_embed_sends_titan_v2_bodies_and_returns_unit_rows(client: Any) -> None:
    # One call at a time: Stubber answers in queue order and is not thread-safe.
    embedder = BedrockEmbedder(dimension=256, client=client, concurrency=1)
    assert (embedder.model_id, embedder.dimension) == (f"bedrock:{TITAN}:256", 256)
    first, second = [0.0] * 256, [0.0] * 256
    first[:2] = [3.0, 4.0]  # not unit length: the embedder normalises anyway
    second[5] = 1.0
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response(first), titan_params("tent poles", 256))
        stub.add_response("invoke_model", titan_response(second), titan_params("refunds", 256))
        vectors = await embedder.embed(["tent poles", "refunds"])
        stub.assert_no_pending_responses()
    assert vectors.shape == (2, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(vectors[0, :2], [0.6, 0.8], rtol=1e-6)
    assert vectors[1, 5] == pytest.approx(1.0)
    assert (await embedder.embed([])).shape == (0, 256)


async def test_embed_sends_customers_text_with_its_personal_data_masked(client: Any) -> None:
    embedder = BedrockEmbedder(dimension=256, client=client, concurrency=1)
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([1.0] + [0.0] * 255),
                          titan_params("refund to [card number] for order [order number], mail [email]", 256))
        await embedder.embed(["refund to 4111 1111 1111 1111 for order AF-203914, mail jane@example.com"])
        stub.assert_no_pending_responses()


class CountingClient:
    """invoke_model answering a one-hot vector per text, counting calls in flight."""

    def __init__(self, dimension: int) -> None:
        self.meta = type("Meta", (), {"region_name": REGION})()
        self.dimension = dimension
        self.lock = threading.Lock()
        self.in_flight = self.most = 0

    def invoke_model(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.05)
        with self.lock:
            self.in_flight -= 1
        vector = [0.0] * self.dimension
        vector[int(json.loads(params["body"])["inputText"])] = 2.0
        return titan_response(vector)


async def test_embed_runs_a_few_calls_at_a_time_and_keeps_order() -> None:
    fake = CountingClient(512)
    embedder = BedrockEmbedder(dimension=512, client=fake, concurrency=2)
    vectors = await embedder.embed([str(n) for n in range(8)])
    assert fake.most == 2
    np.testing.assert_array_equal(vectors.argmax(axis=1), np.arange(8))
    np.testing.assert_allclose(vectors.max(axis=1), 1.0)


async def test_embed_rejects_sizes_titan_does_not_have(client: Any) -> None:
    with pytest.raises(ValueError, match="768"):
        BedrockEmbedder(dimension=768, client=client)
    embedder = BedrockEmbedder(dimension=1024, client=client)
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([1.0] * 256), titan_params("x", 1024))
        with pytest.raises(FailedPrecondition, match="256 embedding values, expected 1024"):
            await embedder.embed(["x"])


@pytest.mark.parametrize(("code", "status", "mapped"), [
    ("ThrottlingException", 429, ResourceExhausted),
    ("AccessDeniedException", 403, FailedPrecondition),
    ("ValidationException", 400, FailedPrecondition),
    ("ModelTimeoutException", 408, Unavailable),
])
async def test_embed_errors_become_domain_errors(client: Any, code: str, status: int, mapped: type) -> None:
    embedder = BedrockEmbedder(client=client, concurrency=1)
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", code, "no luck", http_status_code=status,
                              expected_params=titan_params("hello", 1024))
        with pytest.raises(mapped) as raised:
            await embedder.embed(["hello"])
    assert f"Bedrock model {TITAN} in {REGION}" in raised.value.message
    assert code in raised.value.message and SECRET not in raised.value.message


# --- chat ---------------------------------------------------------------------------------

def _header(name: str, value: str) -> bytes:
    key, text = name.encode(), value.encode()
    return struct.pack(">B", len(key)) + key + b"\x07" + struct.pack(">H", len(text)) + text  # 7: string


def _frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream encoding: prelude, CRC, headers, payload, CRC."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, data: dict[str, Any]) -> bytes:
    return _frame({":message-type": "event", ":event-type": kind, ":content-type": "application/json"},
                  json.dumps(data).encode())


def stream_error(kind: str, text: str) -> bytes:
    return _frame({":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"},
                  json.dumps({"message": text}).encode())


def delta(text: str) -> bytes:
    return event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})


START = event("messageStart", {"role": "assistant"})
STOP = event("messageStop", {"stopReason": "end_turn"})
USAGE = event("metadata", {"usage": {"inputTokens": 42, "outputTokens": 3, "totalTokens": 45},
                           "metrics": {"latencyMs": 120}})


class Body:
    """The raw HTTP body botocore reads an event stream from: one frame per read,
    optionally holding back after `hold_after` frames until `gate` is set."""

    def __init__(self, frames: list[bytes], hold_after: int | None = None) -> None:
        self.frames = frames
        self.hold_after = hold_after
        self.gate = threading.Event()
        self.closed = threading.Event()
        self.read = 0

    def stream(self, **_: Any) -> Iterator[bytes]:
        for frame in self.frames:
            if self.read == self.hold_after:
                self.gate.wait(5)
            self.read += 1
            yield frame

    def close(self) -> None:
        self.closed.set()


def answer_with(client: Any, body: Body) -> list[AWSPreparedRequest]:
    """Makes ConverseStream answer with `body`; returns the requests as sent."""
    sent: list[AWSPreparedRequest] = []

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"content-type": "application/vnd.amazon.eventstream"}, body)

    client.meta.events.register("before-send.bedrock-runtime.ConverseStream", send)
    return sent


CHAT = [Message("system", "You are Mend."), Message("user", "Hi."), Message("assistant", "Hello!"),
        Message("user", "My order is late."), Message("user", "Facts:\n[1] ...\n\nQuestion: where is it?")]
TURNS = [{"role": "user", "content": [{"text": "Hi."}]},
         {"role": "assistant", "content": [{"text": "Hello!"}]},
         {"role": "user", "content": [{"text": "My order is late.\n\nFacts:\n[1] ...\n\nQuestion: where is it?"}]}]


async def test_chat_streams_deltas_in_order_with_the_converse_request(client: Any) -> None:
    body = Body([START, delta("Your "), delta("order "), delta("ships today."),
                 event("contentBlockStop", {"contentBlockIndex": 0}), STOP, USAGE])
    sent = answer_with(client, body)
    model = BedrockChat(client=client, temperature=0.5)
    pieces = [piece async for piece in model.stream(CHAT, 80)]
    assert pieces == ["Your ", "order ", "ships today."]
    assert (model.last_input_tokens, model.last_output_tokens) == (42, 3)
    (request,) = sent
    # The wire request: the model id in the path, everything else in the JSON body.
    assert request.url == (f"https://bedrock-runtime.{REGION}.amazonaws.com/model/{HAIKU.replace(':', '%3A')}"
                           "/converse-stream")
    assert json.loads(request.body) == {"messages": TURNS, "system": [{"text": "You are Mend."}],
                                        "inferenceConfig": {"maxTokens": 80, "temperature": 0.5}}
    assert body.closed.is_set()


async def test_converse_messages_alternate_starting_with_the_user() -> None:
    system, turns = converse_messages([
        Message("assistant", "(end of an earlier answer)"), Message("system", "Rules."),
        Message("user", "a"), Message("user", " "), Message("system", "More rules."),
        Message("user", "b"), Message("assistant", "c"), Message("assistant", "d")])
    assert system == [{"text": "Rules."}, {"text": "More rules."}]
    assert turns == [{"role": "user", "content": [{"text": "a\n\nb"}]},
                     {"role": "assistant", "content": [{"text": "c\n\nd"}]}]
    with pytest.raises(ValueError, match="tool"):
        converse_messages([Message("tool", "x")])


@pytest.mark.parametrize(("code", "status", "mapped"), [
    ("ThrottlingException", 429, ResourceExhausted),
    ("AccessDeniedException", 403, FailedPrecondition),
    ("ValidationException", 400, FailedPrecondition),
    ("ServiceUnavailableException", 503, Unavailable),
])
async def test_chat_errors_become_domain_errors(client: Any, code: str, status: int, mapped: type) -> None:
    model = BedrockChat(client=client)
    with Stubber(client) as stub:
        # expected_params: Stubber also checks the request we built, field by field.
        stub.add_client_error("converse_stream", code, "You don't have access to the model.", http_status_code=status,
                              expected_params={"modelId": HAIKU, "messages": TURNS,
                                               "system": [{"text": "You are Mend."}],
                                               "inferenceConfig": {"maxTokens": 80, "temperature": 0.2}})
        with pytest.raises(mapped) as raised:
            async for _ in model.stream(CHAT, 80):
                pass
        stub.assert_no_pending_responses()
    message = raised.value.message
    assert message.startswith(f"Bedrock model {HAIKU} in {REGION} refused the request: {code}")
    assert SECRET not in message


async def test_chat_hides_the_text_of_credential_errors(client: Any) -> None:
    model = BedrockChat(client=client)
    with Stubber(client) as stub:
        # What AWS says about a bad signature can quote the signed request.
        stub.add_client_error("converse_stream", "InvalidSignatureException",
                              f"Canonical request: x-amz-security-token:{SECRET}", http_status_code=403)
        with pytest.raises(FailedPrecondition) as raised:
            async for _ in model.stream(CHAT, 80):
                pass
    assert raised.value.message == f"Bedrock model {HAIKU} in {REGION} refused the request: InvalidSignatureException"


async def test_chat_errors_inside_the_stream_are_mapped_too(client: Any) -> None:
    answer_with(client, Body([START, delta("Your "), stream_error("throttlingException", "Too many tokens")]))
    model = BedrockChat(client=client)
    pieces: list[str] = []
    with pytest.raises(ResourceExhausted, match="ThrottlingException: Too many tokens"):
        async for piece in model.stream(CHAT, 80):
            pieces.append(piece)
    assert pieces == ["Your "]


async def test_chat_stream_cut_before_message_stop_is_an_error(client: Any) -> None:
    answer_with(client, Body([START, delta("Your ")]))
    with pytest.raises(Unavailable, match="ended the stream before the answer was complete"):
        async for _ in BedrockChat(client=client).stream(CHAT, 80):
            pass


async def test_closing_the_stream_early_stops_reading(client: Any) -> None:
    frames = [START, delta("one "), delta("two "), delta("three "), delta("four "), STOP, USAGE]
    body = Body(frames, hold_after=2)  # Bedrock is "still generating" after the first delta
    answer_with(client, body)
    stream = BedrockChat(client=client).stream(CHAT, 80)
    assert await anext(stream) == "one "
    await stream.aclose()
    body.gate.set()  # the next event arrives; the reader should notice it was stopped
    assert await asyncio.to_thread(body.closed.wait, 5), "the HTTP body was never closed"
    assert body.read == 3 < len(frames)

"""A chat model on Amazon Bedrock through the Converse API (ConverseStream): one
request shape for every model family Bedrock hosts (Claude, Llama, Mistral, Nova).

Credentials come from boto3's usual chain (environment, profile, instance or
task role); nothing here reads, stores or prints them. boto3 is imported only
when a client is built, so a local-only install needs no AWS packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mendkit.errors import Unavailable
from mendmodels.chat.base import Message
from mendmodels.providers.bedrock import MAX_STREAMS, bedrock_client, bedrock_error

CALLS_IN_FLIGHT = 4


def converse_messages(messages: Sequence[Message]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """(system, messages) as Converse takes them. Converse wants alternating
    roles starting with the user, so same-role neighbours are merged, and a
    leading assistant turn (a history cut mid-exchange) is dropped."""
    system = [{"text": m.content} for m in messages if m.role == "system" and m.content.strip()]
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system" or not m.content.strip():  # Converse rejects blank text blocks
            continue
        if m.role not in ("user", "assistant"):
            raise ValueError(f"unknown chat role {m.role!r}")
        if not turns and m.role == "assistant":
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"][0]["text"] += "\n\n" + m.content
        else:
            turns.append({"role": m.role, "content": [{"text": m.content}]})
    return system, turns


class BedrockChat:
    def __init__(self, model_id: str = "anthropic.claude-3-haiku-20240307-v1:0", region: str | None = None,
                 client: Any | None = None, temperature: float = 0.2, max_streams: int = MAX_STREAMS) -> None:
        self.model_id = model_id
        self.leaves_the_machine = True
        # Calls a caller keeps in flight: the account's default on-demand quotas, not the threads.
        self.concurrency = CALLS_IN_FLIGHT
        self._client = bedrock_client(region, client)
        self._region: str = self._client.meta.region_name
        self._temperature = temperature
        # Own threads: a stream holds one for the whole answer, and the default
        # executor (cores + 4 threads) is shared with the embedders' work.
        self._threads = ThreadPoolExecutor(max_streams, thread_name_prefix="bedrock-chat")
        # Token counts of the last stream that reached its metadata event. One
        # instance serves concurrent chats, so these belong to whichever ended last.
        self.last_input_tokens = 0
        self.last_output_tokens = 0

    def _generate(self, request: dict[str, Any], out: asyncio.Queue[str | Exception | None],
                  loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        def put(item: str | Exception | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
                loop.call_soon_threadsafe(out.put_nowait, item)

        stream = None
        finished = False
        try:
            stream = self._client.converse_stream(**request)["stream"]
            for event in stream:  # blocks on the network between events
                if stop.is_set():
                    return
                if "contentBlockDelta" in event:
                    # Only text is asked for; other deltas (tool use, reasoning) are not the answer.
                    text = event["contentBlockDelta"]["delta"].get("text")
                    if text:
                        put(text)
                elif "messageStop" in event:
                    finished = True
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                    self.last_input_tokens = usage.get("inputTokens", 0)
                    self.last_output_tokens = usage.get("outputTokens", 0)
            if not finished:
                put(Unavailable(f"Bedrock model {self.model_id} in {self._region} ended the stream "
                                "before the answer was complete"))
        except Exception as error:  # noqa: BLE001 - handed to the consumer
            put(bedrock_error(error, self.model_id, self._region))
        finally:
            if stream is not None:
                stream.close()  # drops the HTTP response: Bedrock stops generating
            put(None)

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        system, turns = converse_messages(messages)
        request: dict[str, Any] = {"modelId": self.model_id, "messages": turns,
                                   "inferenceConfig": {"maxTokens": max_tokens, "temperature": self._temperature}}
        if system:
            request["system"] = system
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[str | Exception | None] = asyncio.Queue()
        stop = threading.Event()
        # boto3 is blocking: the request and the event stream are read in a thread.
        loop.run_in_executor(self._threads, self._generate, request, out, loop, stop)
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            # The caller went away (or the answer is done). Unlike the local model
            # there is nothing to free, so this does not wait for the thread: it may
            # be blocked on a read until the next event; it stops and closes then.
            stop.set()

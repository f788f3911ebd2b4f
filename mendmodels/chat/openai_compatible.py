"""A chat model behind any OpenAI-compatible HTTP API (Ollama, vLLM, llama.cpp's
server, LM Studio, OpenAI itself). Only streamed `/chat/completions` is used:
the part they all implement alike.

The API key goes into the Authorization header and nowhere else. Every message
this module builds goes through `redact`, because some servers echo the key they
were sent in their error text, and those messages end up in logs and statuses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import httpx

from mendkit.errors import Unavailable
from mendmodels.chat.base import Message
from mendmodels.providers.openai import OpenAIEndpoint


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Server-Sent Events as (field, payload): `data` events joined as the SSE
    standard says, plus the `error:` lines llama.cpp's server sends."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:  # a blank line ends an event
            if data:
                yield "data", "\n".join(data)
                data = []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "error":
            yield "error", value
        # Comments (": keep-alive") and event/id/retry fields carry nothing used here.
    if data:
        yield "data", "\n".join(data)


class OpenAICompatibleChat:
    def __init__(self, base_url: str, model: str, api_key: str = "", temperature: float = 0.2,
                 timeout_s: float = 60) -> None:
        self.model_id = model
        # Calls a caller keeps in flight: enough to hide latency, within common rate limits.
        self.concurrency = 4
        self._endpoint = OpenAIEndpoint(base_url, model, api_key, timeout_s)
        self.leaves_the_machine = self._endpoint.leaves_the_machine
        self._temperature = temperature

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        body = {"model": self.model_id, "messages": [{"role": m.role, "content": m.content} for m in messages],
                "max_tokens": max_tokens, "temperature": self._temperature, "stream": True}
        endpoint = self._endpoint
        finished = False
        # Closing this generator early exits the block, which closes the response:
        # the server sees the connection go and stops generating.
        async with endpoint.post("/chat/completions", body) as response:
            async for field, payload in _events(response):
                if payload.strip() == "[DONE]":
                    return
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise endpoint.invalid(f"sent an unreadable stream event: {payload[:200]!r}") from None
                if field == "error":
                    error = chunk
                elif isinstance(chunk, dict):
                    error = chunk.get("error")
                else:
                    raise endpoint.invalid(f"sent a stream event that is not an object: {payload[:200]!r}")
                if error:
                    # A failure after the 200 (vLLM, Ollama, llama.cpp report them in the stream).
                    code = error.get("code") if isinstance(error, dict) else None
                    message = error.get("message") if isinstance(error, dict) else error
                    raise endpoint.error(code if isinstance(code, int) else 500, str(message)[:300])
                for choice in chunk.get("choices") or []:  # empty in a usage-only chunk
                    if choice.get("index", 0) != 0:
                        continue
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:  # the first chunk carries only the role; the last only finish_reason
                        yield piece
                    finished = finished or choice.get("finish_reason") is not None
        if not finished:
            # Some servers omit [DONE] after a finish_reason; ending without either is a cut answer.
            raise Unavailable(endpoint.redact(
                f"{endpoint.base_url} (model {endpoint.model}) ended the stream before the answer was complete"))

    async def aclose(self) -> None:
        await self._endpoint.aclose()

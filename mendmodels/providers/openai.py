"""One OpenAI-compatible server and model (Ollama, vLLM, llama.cpp's server, LM
Studio, OpenAI itself): the HTTP client, the key, and how failures become domain
errors. The chat model and the embedder share it.

The API key goes into the Authorization header and nowhere else. Every message
this module builds goes through `redact`, because some servers echo the key they
were sent in their error text, and those messages end up in logs and statuses.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from mendkit.errors import FailedPrecondition, MendError, ResourceExhausted, Unavailable


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


def _detail(response: httpx.Response) -> str:
    """The server's own error message, from whichever shape its error body has."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):  # OpenAI, llama.cpp, vLLM
            return str(error["message"])[:300]
        for value in (error, body.get("message"), body.get("detail")):  # Ollama, older vLLM, FastAPI
            if value:
                return str(value)[:300]
    return json.dumps(body)[:300]


class OpenAIEndpoint:
    """One server and model: the HTTP client, the key, and how failures become
    domain errors. The chat model and the embedder share it."""

    def __init__(self, base_url: str, model: str, api_key: str, timeout_s: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            # httpx would fail on each request with a transport error that reads like an outage.
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        # A server on this machine (llama.cpp, Ollama) sees nothing that leaves it;
        # any other, in the cluster or the cloud, gets customers' words masked.
        self.leaves_the_machine = not _loopback(urlsplit(self.base_url).hostname or "")
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # httpx applies the timeout to each step (connect, each read, ...): for a
        # stream it bounds the silence between two pieces, not the whole answer.
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s)

    def redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text

    def error(self, status: int, detail: str) -> MendError:
        message = self.redact(f"{self.base_url} (model {self.model}) answered HTTP {status}: {detail}")
        if status == 429:
            return ResourceExhausted(message)
        if status >= 500:
            return Unavailable(message)
        # 4xx (and stray 3xx): a wrong model name, URL, key or request; retrying won't help.
        return FailedPrecondition(message)

    def invalid(self, problem: str) -> FailedPrecondition:
        """The server answered, but not in the protocol's shape."""
        return FailedPrecondition(self.redact(f"{self.base_url} (model {self.model}) {problem}"))

    @asynccontextmanager
    async def post(self, path: str, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """A successful response to a POST, its body not read yet. Leaving the block
        closes the response (and, mid-body, its connection)."""
        try:
            async with self._client.stream("POST", self.base_url + path, json=body) as response:
                if not response.is_success:
                    await response.aread()
                    raise self.error(response.status_code, _detail(response))
                yield response
        except httpx.TransportError as error:
            # Also raised while the caller reads the body inside the block.
            # `from None`: the message says what happened; the chain adds nothing.
            raise Unavailable(self.redact(
                f"{self.base_url} (model {self.model}) unreachable: {type(error).__name__}: {error}")) from None

    async def aclose(self) -> None:
        await self._client.aclose()

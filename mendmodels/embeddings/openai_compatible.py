"""An embedder behind any OpenAI-compatible `/embeddings` endpoint (Ollama, vLLM,
llama.cpp's server, OpenAI). The dimension is configured, not discovered: the
vector store is created for it, so a server that answers with another size is
a configuration error, reported before anything is stored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mendkit.personal_data import mask
from mendmodels.providers.openai import OpenAIEndpoint

BATCH = 64  # texts per request: well under every server's input limit


class OpenAICompatibleEmbedder:
    def __init__(self, base_url: str, model: str, dimension: int, api_key: str = "", batch: int = BATCH,
                 timeout_s: float = 60) -> None:
        # The space name carries the dimension: the same model at another size
        # (OpenAI's `dimensions`, Matryoshka models) is another space.
        self.model_id = f"openai:{model}:{dimension}"
        self.dimension = dimension
        self._model = model
        self._batch = batch
        self._endpoint = OpenAIEndpoint(base_url, model, api_key, timeout_s)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self._batch):
            chunk = list(texts[start:start + self._batch])
            if self._endpoint.leaves_the_machine:
                chunk = [mask(text) for text in chunk]  # customers' questions are among them
            out[start:start + len(chunk)] = await self._request(chunk)
        # Not every server normalises (llama.cpp without pooling, some vLLM models);
        # the store compares by cosine on unit vectors.
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)

    async def _request(self, texts: list[str]) -> np.ndarray:
        endpoint = self._endpoint
        async with endpoint.post("/embeddings", {"model": self._model, "input": texts}) as response:
            await response.aread()
        try:
            data = response.json()["data"]
            # The protocol lets the server list them in any order: `index` says which text.
            rows = sorted(data, key=lambda item: item["index"])
            indexes = [item["index"] for item in rows]
            vectors = [item["embedding"] for item in rows]
        except (ValueError, KeyError, TypeError):
            raise endpoint.invalid("answered /embeddings without a readable data list") from None
        if indexes != list(range(len(texts))):
            raise endpoint.invalid(f"returned embeddings for indexes {indexes[:10]}..., expected 0..{len(texts) - 1}")
        for index, vector in zip(indexes, vectors, strict=True):
            if not isinstance(vector, list) or len(vector) != self.dimension:
                size = len(vector) if isinstance(vector, list) else type(vector).__name__
                raise endpoint.invalid(f"returned a {size}-dimensional embedding for input {index}, but the "
                                       f"configured dimension is {self.dimension}")
        try:
            return np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError):
            raise endpoint.invalid("returned an embedding that is not a list of numbers") from None

    async def aclose(self) -> None:
        await self._endpoint.aclose()

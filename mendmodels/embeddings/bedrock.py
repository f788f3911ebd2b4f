"""Amazon Titan Text Embeddings V2 on Bedrock (`invoke_model`). Titan v2 embeds
one text per request (it has no batch API), so texts are sent in parallel, a
few at a time, each blocking boto3 call in a thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from mendkit.errors import FailedPrecondition
from mendkit.personal_data import mask
from mendmodels.providers.bedrock import bedrock_client, bedrock_error

DIMENSIONS = (256, 512, 1024)  # the sizes Titan v2 offers
CONCURRENCY = 4  # requests in flight per embedder: fast ingests, well under the default quotas


class BedrockEmbedder:
    def __init__(self, model_id: str = "amazon.titan-embed-text-v2:0", dimension: int = 1024,
                 region: str | None = None, client: Any | None = None, concurrency: int = CONCURRENCY) -> None:
        if dimension not in DIMENSIONS:
            raise ValueError(f"Titan v2 embeds in {DIMENSIONS} dimensions, not {dimension}")
        # The space name carries the dimension: Titan v2 at another size is another space.
        self.model_id = f"bedrock:{model_id}:{dimension}"
        self.dimension = dimension
        self._model = model_id
        self._client = bedrock_client(region, client)
        self._region: str = self._client.meta.region_name
        # One bound for all callers of this embedder (an ingest and the searches
        # running meanwhile), as the throttling quota is per account, not per call.
        self._slots = asyncio.Semaphore(concurrency)

    def _embed_one(self, text: str) -> list[float]:
        body = json.dumps({"inputText": text, "dimensions": self.dimension, "normalize": True})
        try:
            response = self._client.invoke_model(modelId=self._model, body=body,
                                                 contentType="application/json", accept="application/json")
            raw = response["body"].read()
        except Exception as error:  # noqa: BLE001 - mapped to a domain error
            raise bedrock_error(error, self._model, self._region) from None
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        vector = payload.get("embedding") if isinstance(payload, dict) else None
        if not isinstance(vector, list) or len(vector) != self.dimension:
            size = f"{len(vector)} embedding values" if isinstance(vector, list) else "no readable embedding"
            raise FailedPrecondition(f"Bedrock model {self._model} in {self._region} returned {size}, "
                                     f"expected {self.dimension} values")
        return vector

    async def _one(self, text: str) -> list[float]:
        async with self._slots:
            return await asyncio.to_thread(self._embed_one, text)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        # Customers' questions are among the texts: their personal data never reaches the cloud.
        tasks = [asyncio.ensure_future(self._one(mask(text))) for text in texts]
        try:
            rows = await asyncio.gather(*tasks)
        except BaseException:
            # One failure (no access, throttled after retries) fails the whole call:
            # texts still waiting for a slot are not sent. Calls already running finish.
            for task in tasks:
                task.cancel()
            raise
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)
        # Titan normalises when asked; checked here anyway, since the store compares
        # by cosine on unit vectors and a stray norm would skew every score.
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)

"""A bounded memory of recent embeddings in front of any embedder.

The trainer searches for a page of disliked questions and then upserts those
same questions as the phrasings of its fixes, and a fix that grows over a run
is upserted again with every phrasing: with this memory each text is embedded
once per run instead of once per write. Repeated customer questions hit it too.
Safe because an embedder is deterministic for a text (its `model_id` names the
space, and one Knowledge has one embedder)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from mendmodels.embeddings.base import Embedder

# 20,000 vectors: a 10,000-question run and its fixes fit (30 MB at 384-d, 80 MB at 1024-d).
CAPACITY = 20_000
# Questions are short; long texts (article chunks, embedded once at ingest) would
# only crowd the memory, so they pass through.
MAX_CACHED_CHARS = 1_000


class CachedEmbedder:
    def __init__(self, inner: Embedder, capacity: int = CAPACITY) -> None:
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.inner = inner
        self._capacity = capacity
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        missing: dict[str, list[int]] = {}  # each distinct text once, however often it repeats
        for row, text in enumerate(texts):
            vector = self._vectors.get(text)
            if vector is None:
                missing.setdefault(text, []).append(row)
            else:
                self._vectors.move_to_end(text)
                out[row] = vector
        if missing:
            fresh = await self.inner.embed(list(missing))
            for (text, rows), vector in zip(missing.items(), fresh, strict=True):
                out[rows] = vector
                if len(text) <= MAX_CACHED_CHARS:
                    self._vectors[text] = np.array(vector, dtype=np.float32)
            while len(self._vectors) > self._capacity:
                self._vectors.popitem(last=False)
        return out

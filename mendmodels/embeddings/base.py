"""The embedder interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    # Names the vector space: vectors from different models never mix.
    model_id: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors, one row per text, shape (len(texts), dimension)."""

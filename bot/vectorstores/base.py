"""The vector-store interface. A store holds one vector per retrieval key
(a question phrasing, or an article chunk), tagged with its entry's id,
status and source so that searches filter inside the store. The entries
themselves live in the bot's catalogue (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KeyVector:
    key_no: int
    text: str
    vector: Sequence[float]


@dataclass(frozen=True)
class VectorHit:
    entry_id: str
    key_text: str
    # Cosine similarity in [-1, 1]; higher is more similar.
    score: float


class VectorStore(Protocol):
    name: str

    async def prepare(self) -> None:
        """Creates whatever the store needs (index, table partition); idempotent."""

    async def replace_keys(self, entry_id: str, keys: Sequence[KeyVector], status: str, source: str) -> None:
        """Makes `keys` the entry's only vectors (idempotent)."""

    async def set_attributes(self, entry_id: str, status: str, source: str) -> None:
        """Updates the status and source copies on the entry's vectors."""

    async def delete(self, entry_id: str) -> None:
        """Removes the entry's vectors; nothing to remove is fine."""

    async def search(
        self, vector: Sequence[float], k: int, statuses: Sequence[str], source: str | None
    ) -> list[VectorHit]:
        """The best `k` entries (one hit per entry: its best key), best first."""

"""The vector-store interface. A store holds one vector per retrieval key
(a question phrasing, or an article chunk), tagged with its entry's id,
status and source so that searches filter inside the store. The entries
themselves live in the bot's catalogue (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KeyVector:
    key_no: int
    text: str
    vector: Sequence[float]


@dataclass(frozen=True)
class VectorQuery:
    """One search of a batch: the arguments of `VectorStore.search`."""

    vector: Sequence[float]
    k: int
    statuses: Sequence[str]
    source: str | None


@dataclass(frozen=True)
class VectorHit:
    entry_id: str
    key_text: str
    # Cosine similarity in [-1, 1]; higher is more similar.
    score: float


def best_per_entry(hits: Iterable[VectorHit], k: int) -> list[VectorHit]:
    """The best `k` entries from per-key hits: one hit per entry (its best key), best first."""
    best: dict[str, VectorHit] = {}
    for hit in hits:
        if hit.entry_id not in best or hit.score > best[hit.entry_id].score:
            best[hit.entry_id] = hit
    return sorted(best.values(), key=lambda hit: -hit.score)[:k]


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

    async def search_many(self, queries: Sequence[VectorQuery]) -> list[list[VectorHit]]:
        """What `search` returns for each query, in order, in fewer round trips."""

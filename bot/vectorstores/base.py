"""The vector-store interface. A store holds one vector per retrieval key
(a question phrasing, or an article chunk), tagged with its entry's id,
status and source so that searches filter inside the store. The entries
themselves live in the bot's catalogue (PostgreSQL).

A search ranks entries by their *support*: the mean similarity of the entry's
two best keys (its one key's, for an entry with one; the best key's when that
key is the question itself). The best key alone
rewards an entry for having many phrasings, since one of many is close to any
question by chance; a question an entry really answers is close to several of
them. Measured on clinc150 (bench/key_support.py): ranking by the two best keys
instead of the best raises the right entry's share of top hits from 77.6% to
80.4% at ten phrasings per entry, and lets the bot's relevance cut answer fewer
out-of-scope questions for the same accuracy. Three keys did no better.
Stores find candidate entries by their keys' nearest neighbours, then score
every key of those candidates exactly."""

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


# How many of an entry's best keys its support averages.
SUPPORT_KEYS = 2
# The entries of a query's nearest keys are its candidates: k * KEYS_PER_ENTRY keys
# (an entry can own many), and never fewer than CANDIDATE_KEYS, so that which entry
# ranks first does not depend on how many hits a caller asks for (chat asks 3, the
# gate's replay 2, the benchmarks 10): an entry ranks by all its keys once it is a
# candidate, but becomes one only through a near key.
KEYS_PER_ENTRY = 4
CANDIDATE_KEYS = 40


def candidate_keys(k: int) -> int:
    """How many nearest keys name the candidates of a search for `k` entries."""
    return max(k * KEYS_PER_ENTRY, CANDIDATE_KEYS) if k > 0 else 0
# A key at least this similar is the question itself, up to case and punctuation:
# the entry lists it, so its support is that key's, whatever its other keys say
# (a phrasing added to the right entry, a liked question, must find that entry).
VERBATIM = 0.98


def support_of(best_first: Sequence[float]) -> float:
    """An entry's support from its keys' similarities, best first (at least one)."""
    if best_first[0] >= VERBATIM:
        return best_first[0]
    best = best_first[:SUPPORT_KEYS]
    return sum(best) / len(best)


@dataclass(frozen=True)
class KeyHit:
    """One key's similarity to a query."""

    entry_id: str
    key_text: str
    # Cosine similarity in [-1, 1]; higher is more similar.
    score: float


@dataclass(frozen=True)
class VectorHit:
    entry_id: str
    key_text: str  # the entry's best key
    # Cosine similarities in [-1, 1], higher is more similar: the best key's,
    # and the mean of the SUPPORT_KEYS best (the rank).
    score: float
    support: float


def ranked(keys: Iterable[KeyHit], k: int) -> list[VectorHit]:
    """The best `k` entries from every key of some candidate entries: one hit
    per entry, by support, best first (then by best key, then id: a stable order)."""
    of: dict[str, list[KeyHit]] = {}
    for key in keys:
        of.setdefault(key.entry_id, []).append(key)
    hits = []
    for entry_id, found in of.items():
        best = sorted(found, key=lambda key: -key.score)
        hits.append(VectorHit(entry_id, best[0].key_text, best[0].score, support_of([key.score for key in best])))
    return sorted(hits, key=lambda hit: (-hit.support, -hit.score, hit.entry_id))[:k]


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
        """The best `k` entries (one hit per entry: its best key and its support), best first."""

    async def search_many(self, queries: Sequence[VectorQuery]) -> list[list[VectorHit]]:
        """What `search` returns for each query, in order, in fewer round trips."""

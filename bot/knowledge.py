"""The knowledge index: the catalogue (PostgreSQL) plus the vectors of every
entry's retrieval keys (the vector store). Only the bot writes either."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg
import numpy as np

from bot import catalog
from bot.catalog import BOT, Entry, ListFilter, Note, Revision
from bot.vectorstores.base import KeyVector, VectorHit, VectorQuery, VectorStore
from mendkit.errors import InvalidArgument, NotFound
from mendmodels.embeddings.base import Embedder
from mendmodels.embeddings.cache import CachedEmbedder

_log = logging.getLogger("bot.knowledge")
# Entries of one upsert written at once (ids are distinct within a batch). Their
# vector inserts (HNSW, with pgvector) are CPU work in PostgreSQL: a few at once
# use its cores, and leave most of the pool to chat.
WRITE_CONCURRENCY = 4


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float  # the similarity of the entry's best key, `matched_key`
    matched_key: str
    # The mean similarity of its two best keys: what a search ranks by and what
    # the relevance rule judges (bot/vectorstores/base.py says why).
    support: float


@dataclass(frozen=True)
class Query:
    """One search of a batch: the arguments of `Knowledge.search`."""

    text: str
    k: int
    statuses: Sequence[str]
    source: str | None


@dataclass(frozen=True)
class Peer:
    """An earlier query of the same batch, and how similar its text is."""

    index: int
    score: float


def peers(vectors: np.ndarray, threshold: float, limits: Sequence[int]) -> list[list[Peer]]:
    """For each row, the earlier rows at least `threshold` similar (cosine on unit
    vectors), most similar first, at most `limits[row]` of them."""
    similarity = vectors @ vectors.T
    found = []
    for row, limit in enumerate(limits):
        earlier = similarity[row, :row]
        close = np.flatnonzero(earlier >= threshold)
        best = close[np.argsort(-earlier[close], kind="stable")][:limit]
        found.append([Peer(int(index), float(earlier[index])) for index in best])
    return found


class Knowledge:
    def __init__(self, pool: asyncpg.Pool, store: VectorStore, embedder: Embedder) -> None:
        self.pool = pool
        self.store = store
        # Every write and search goes through one memory of recent embeddings (see cache.py).
        self.embedder = embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)

    async def upsert(self, entries: Sequence[Entry], note: Note = BOT,
                     expected: Mapping[str, int] | None = None) -> list[Entry]:
        """Writes entries idempotently. Keys are embedded again only when they
        changed, so re-running an ingestion costs no model time. Each entry the
        write changes gets a revision with `note`; `expected` (entry id ->
        revision, 0: any) refuses the write if one of them changed since (catalog.upsert_many)."""
        existing = await catalog.get_many(self.pool, [e.entry_id for e in entries])
        resolved = []
        for entry in entries:
            old = existing.get(entry.entry_id)
            if not entry.status:
                entry = replace(entry, status=old.status if old else "published")
            resolved.append(entry)
        last_of = {e.entry_id: n for n, e in enumerate(resolved)}
        # Embedded: the last occurrence of each id whose keys changed, or whose
        # vectors an earlier failed write left pending.
        to_embed = [n for n, e in enumerate(resolved) if last_of[e.entry_id] == n
                    and (e.entry_id not in existing or existing[e.entry_id].vectors_pending
                         or existing[e.entry_id].retrieval_keys != e.retrieval_keys)]
        texts = [key for n in to_embed for key in resolved[n].retrieval_keys]
        # No key changed: no model call, and no vectors to take.
        vectors = await self.embedder.embed(texts) if texts else np.empty((0, 0), np.float32)
        keys_of: dict[int, list[KeyVector]] = {}
        offset = 0
        for n in to_embed:
            keys = resolved[n].retrieval_keys
            keys_of[n] = [KeyVector(k, text, vectors[offset + k]) for k, text in enumerate(keys)]
            offset += len(keys)
        # Per entry id, what its last occurrence needs from the vector store (an ingest
        # may repeat an id: the last wins): new keys, new attributes, or nothing.
        plan: dict[str, str] = {}
        for entry_id, n in last_of.items():
            old, entry = existing.get(entry_id), resolved[n]
            if n in keys_of:
                plan[entry_id] = "keys"
            elif old is not None and (old.status, old.source) != (entry.status, entry.source):
                plan[entry_id] = "attributes"
        # The catalogue rows of the whole batch commit in one transaction: a failure
        # writes none of them. The vectors follow the commit (a Pinecone index cannot
        # join a PostgreSQL transaction; with pgvector, the HNSW inserts run a few at
        # once outside it). Rows whose vectors are still to be written carry
        # `vectors_pending`, cleared once they are: if a vector write fails, the call
        # fails, and the caller's retry of the same batch (same ids; every vector
        # write is an idempotent upsert by entry id) sees the flag and writes those
        # vectors again, so retries converge. Meanwhile searches stay right, since
        # the catalogue has the final word on every hit's status and text.
        stored = await catalog.upsert_many(self.pool, resolved, [e.entry_id in plan for e in resolved], note=note,
                                           expected=expected)
        slots = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def write(entry_id: str) -> Entry:
            async with slots:
                n = last_of[entry_id]
                saved = stored[n]
                if plan[entry_id] == "keys":
                    await self.store.replace_keys(entry_id, keys_of[n], saved.status, saved.source)
                else:
                    await self.store.set_attributes(entry_id, saved.status, saved.source)
                return saved

        tasks = [asyncio.ensure_future(write(entry_id)) for entry_id in plan]
        try:
            written = await asyncio.gather(*tasks)
        except BaseException:
            # One failed write fails the call: the writes not yet done are not made
            # (their rows keep `vectors_pending` for the retry).
            for task in tasks:
                task.cancel()
            raise
        await catalog.vectors_written(self.pool, written)
        return [replace(entry, vectors_pending=False) if entry.entry_id in plan else entry for entry in stored]

    async def search(self, query: str, k: int, statuses: Sequence[str], source: str | None) -> list[Hit]:
        vector = (await self.embedder.embed([query]))[0]
        return (await self._resolve([await self.store.search(vector, k, statuses, source)], [statuses]))[0]

    async def search_many(self, queries: Sequence[Query],
                          peer_similarity: float = 0.0) -> tuple[list[list[Hit]], list[list[Peer]]]:
        """What `search` returns for each query, with one embedding call and one
        store batch; and, when `peer_similarity` > 0, each query's similar earlier
        queries (at most its k), so that a caller can group near-duplicates."""
        vectors = await self.embedder.embed([q.text for q in queries])
        found = await self.store.search_many([VectorQuery(vector, q.k, q.statuses, q.source)
                                              for vector, q in zip(vectors, queries, strict=True)])
        hits = await self._resolve(found, [q.statuses for q in queries])
        similar = (peers(vectors, peer_similarity, [q.k for q in queries]) if peer_similarity > 0
                   else [[] for _ in queries])
        return hits, similar

    async def _resolve(self, found: Sequence[Sequence[VectorHit]],
                       statuses: Sequence[Sequence[str]]) -> list[list[Hit]]:
        entries = await catalog.get_many(self.pool, list({h.entry_id for hits in found for h in hits}))
        # The catalogue has the final word: a vector whose entry changed status
        # (or vanished) since it was written never answers.
        return [[Hit(entries[h.entry_id], h.score, h.key_text, h.support) for h in hits
                 if h.entry_id in entries and entries[h.entry_id].status in wanted]
                for hits, wanted in zip(found, statuses, strict=True)]

    async def get(self, entry_id: str) -> Entry:
        """The catalogue's entry; NotFound when there is none."""
        return await catalog.get(self.pool, entry_id)

    async def list_page(self, where: ListFilter, after: tuple[datetime, str] | None, limit: int) -> list[Entry]:
        """Up to `limit` entries matching `where`, in (create_time, entry_id)
        order, after the cursor `after` when given."""
        return await catalog.list_page(self.pool, where, after, limit)

    async def delete(self, entry_id: str, allow_missing: bool, note: Note = BOT, expected: int = 0) -> None:
        # The catalogue first: its row (with the deletion's revision, and the
        # check of `expected`) goes in one transaction. Vectors left behind by a
        # failure after it never answer (the catalogue has the final word on every
        # hit), and a retry, finding no row, removes them then.
        deleted = await catalog.delete(self.pool, entry_id, note=note, expected=expected)
        await self.store.delete(entry_id)
        if not deleted and not allow_missing:
            raise NotFound(f"knowledge entry {entry_id!r} does not exist")

    async def history(self, entry_id: str, before: int | None, limit: int) -> list[Revision]:
        """Up to `limit` revisions of the entry, newest first, older than
        `before` when given; NotFound when the entry never existed."""
        found = await catalog.history(self.pool, entry_id, before, limit)
        if not found and before is None:
            raise NotFound(f"knowledge entry {entry_id!r} has no revisions: it never existed")
        return found

    async def restore(self, entry_id: str, number: int, expected: int, note: Note) -> Entry:
        """Writes revision `number`'s entry back as a new revision (`expected`: as
        upsert's). An entry already as that revision left it is not written
        again, so a retried restore succeeds without a second revision."""
        kept = await catalog.revision(self.pool, entry_id, number)
        if kept.entry is None:
            raise InvalidArgument("revision", f"revision {number} of {entry_id!r} deleted the entry: there is "
                                              "nothing to restore (DeleteEntry deletes it)")
        current = (await catalog.get_many(self.pool, [entry_id])).get(entry_id)
        if current is not None and current.same_as(kept.entry):
            return current
        stored = await self.upsert([kept.entry], replace(note, restored_revision=number), {entry_id: expected})
        return stored[0]

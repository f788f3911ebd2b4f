"""The knowledge index: the catalogue (PostgreSQL) plus the vectors of every
entry's retrieval keys (the vector store). Only the bot writes either."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import asyncpg

from bot import catalog
from bot.catalog import Entry
from bot.embeddings.base import Embedder
from bot.vectorstores.base import KeyVector, VectorStore
from mendkit.errors import NotFound

_log = logging.getLogger("bot.knowledge")


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    matched_key: str


class Knowledge:
    def __init__(self, pool: asyncpg.Pool, store: VectorStore, embedder: Embedder) -> None:
        self.pool = pool
        self.store = store
        self.embedder = embedder

    async def upsert(self, entries: Sequence[Entry]) -> list[Entry]:
        """Writes entries idempotently. Keys are embedded again only when they
        changed, so re-running an ingestion costs no model time."""
        existing = await catalog.get_many(self.pool, [e.entry_id for e in entries])
        resolved = []
        for entry in entries:
            old = existing.get(entry.entry_id)
            if not entry.status:
                entry = replace(entry, status=old.status if old else "published")
            resolved.append(entry)
        to_embed = [e for e in resolved
                    if e.entry_id not in existing or existing[e.entry_id].retrieval_keys != e.retrieval_keys]
        texts = [key for e in to_embed for key in e.retrieval_keys]
        vectors = await self.embedder.embed(texts) if texts else []
        stored, offset = [], 0
        embedded = {e.entry_id for e in to_embed}
        for entry in resolved:
            # Catalogue first: a failure after it leaves the old vectors, and the
            # caller's retry (same ids) completes the write.
            saved = await catalog.upsert(self.pool, entry)
            if entry.entry_id in embedded:
                keys = entry.retrieval_keys
                await self.store.replace_keys(
                    entry.entry_id,
                    [KeyVector(n, text, vectors[offset + n]) for n, text in enumerate(keys)],
                    saved.status, saved.source,
                )
                offset += len(keys)
            else:
                old = existing[entry.entry_id]
                if (old.status, old.source) != (saved.status, saved.source):
                    await self.store.set_attributes(entry.entry_id, saved.status, saved.source)
            stored.append(saved)
        return stored

    async def search(self, query: str, k: int, statuses: Sequence[str], source: str | None) -> list[Hit]:
        vector = (await self.embedder.embed([query]))[0]
        hits = await self.store.search(vector, k, statuses, source)
        entries = await catalog.get_many(self.pool, [h.entry_id for h in hits])
        # The catalogue has the final word: a vector whose entry changed status
        # (or vanished) since it was written never answers.
        return [Hit(entries[h.entry_id], h.score, h.key_text) for h in hits
                if h.entry_id in entries and entries[h.entry_id].status in statuses]

    async def delete(self, entry_id: str, allow_missing: bool) -> None:
        await self.store.delete(entry_id)
        if not await catalog.delete(self.pool, entry_id) and not allow_missing:
            raise NotFound(f"knowledge entry {entry_id!r} does not exist")

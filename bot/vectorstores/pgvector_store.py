"""The pgvector store: vectors in the `knowledge_vectors` table of the bot's
PostgreSQL, one partial HNSW index (cosine) per embedding space."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import asyncpg
import numpy as np
from pgvector import Vector

from bot.vectorstores.base import KeyHit, KeyVector, VectorHit, VectorQuery, candidate_keys, ranked

# HNSW build parameters: pgvector's defaults (m=16, ef_construction=64) give
# recall@5 >= 0.95 on our benchmark; ef_search is raised per query instead.
EF_SEARCH = 100


def _index_name(space: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", space.lower()).strip("_")[:40]
    return f"knowledge_vectors_hnsw_{slug}_{hashlib.sha1(space.encode()).hexdigest()[:8]}"


class PgVectorStore:
    name = "pgvector"

    def __init__(self, pool: asyncpg.Pool, space: str, dimension: int) -> None:
        self._pool = pool
        self._space = space
        # The column has no fixed dimension; a cast to it selects this space's index.
        self._dimension = dimension

    async def prepare(self) -> None:
        await self._pool.execute(
            f"""
            CREATE INDEX IF NOT EXISTS {_index_name(self._space)}
                ON knowledge_vectors USING hnsw ((embedding::vector({self._dimension})) vector_cosine_ops)
                WHERE space = '{self._space.replace("'", "''")}'
            """
        )

    async def replace_keys(self, entry_id: str, keys: Sequence[KeyVector], status: str, source: str) -> None:
        # Only the difference is written: a key with the same number and text has
        # the same vector, and every insert is an HNSW insert. A fix that gains a
        # phrasing then costs one insert, not one per phrasing it already had.
        async with self._pool.acquire() as connection, connection.transaction():
            stored = await connection.fetch(
                "SELECT key_no, key_text FROM knowledge_vectors WHERE space = $1 AND entry_id = $2 FOR UPDATE",
                self._space, entry_id,
            )
            wanted = {(key.key_no, key.text) for key in keys}
            have = {(row["key_no"], row["key_text"]) for row in stored}
            stale = [key_no for key_no, text in have - wanted]
            if stale:
                await connection.execute(
                    "DELETE FROM knowledge_vectors WHERE space = $1 AND entry_id = $2 AND key_no = ANY($3::int[])",
                    self._space, entry_id, stale,
                )
            await connection.execute(
                """UPDATE knowledge_vectors SET status = $3, source = $4
                    WHERE space = $1 AND entry_id = $2 AND (status, source) IS DISTINCT FROM ($3, $4)""",
                self._space, entry_id, status, source,
            )
            await connection.executemany(
                """INSERT INTO knowledge_vectors (space, entry_id, key_no, key_text, status, source, embedding)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                [
                    (self._space, entry_id, key.key_no, key.text, status, source, np.asarray(key.vector, np.float32))
                    for key in keys if (key.key_no, key.text) not in have
                ],
            )

    async def set_attributes(self, entry_id: str, status: str, source: str) -> None:
        await self._pool.execute(
            "UPDATE knowledge_vectors SET status = $3, source = $4 WHERE space = $1 AND entry_id = $2",
            self._space, entry_id, status, source,
        )

    async def delete(self, entry_id: str) -> None:
        await self._pool.execute("DELETE FROM knowledge_vectors WHERE space = $1 AND entry_id = $2",
                                 self._space, entry_id)

    async def _scan(self, connection: asyncpg.Connection) -> None:
        # Iterative scans keep filtered HNSW searches from returning too few rows.
        await connection.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
        await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # Always the HNSW index: on a table not analyzed since it grew (a trainer
        # run writes thousands of keys in minutes) the planner would scan every key
        # of the space and sort them, per query, at a cost that grows with the table
        # (measured: 8 ms instead of 0.5 ms per query at 3,000 keys). Without sorts,
        # the index is the only plan that yields keys nearest first.
        await connection.execute("SET LOCAL enable_sort = off")

    async def search(
        self, vector: Sequence[float], k: int, statuses: Sequence[str], source: str | None
    ) -> list[VectorHit]:
        # One statement for one query or many: the batch's plan (a lookup of each
        # candidate's keys by primary key) is also the fast one for a single search.
        return (await self.search_many([VectorQuery(vector, k, statuses, source)]))[0]

    async def search_many(self, queries: Sequence[VectorQuery]) -> list[list[VectorHit]]:
        """One statement for the whole batch: each query is an index scan of its own
        (a LATERAL subquery) and a lookup of its candidates' keys, so the batch
        costs one round trip, not one per query."""
        if not queries:
            return []
        dim = self._dimension
        distance = f"(v.embedding::vector({dim}) <=> q.embedding)"
        nearest_first = f"(k.embedding::vector({dim}) <=> q.embedding)"
        async with self._pool.acquire() as connection, connection.transaction():
            await self._scan(connection)
            # Materialized, so that each query's index scan runs once: inlined, the
            # planner (on a table not analyzed since it grew) may rescan the index
            # for every key it joins (measured: 87 s instead of 10 ms for 100 queries).
            rows = await connection.fetch(
                f"""
                WITH q AS MATERIALIZED (
                    SELECT * FROM unnest($2::vector({dim})[], $3::int[], $4::text[], $5::text[])
                           WITH ORDINALITY AS q(embedding, lim, statuses, source, n)),
                candidate AS MATERIALIZED (
                    SELECT DISTINCT q.n, near.entry_id
                      FROM q CROSS JOIN LATERAL (
                           SELECT k.entry_id
                             FROM knowledge_vectors k
                            WHERE k.space = $1 AND k.status = ANY(string_to_array(q.statuses, ','))
                              AND (q.source IS NULL OR k.source = q.source)
                            ORDER BY {nearest_first}
                            LIMIT q.lim) near)
                SELECT q.n, v.entry_id, v.key_text, 1 - {distance} AS score
                  FROM candidate c
                  JOIN q ON q.n = c.n
                  JOIN knowledge_vectors v ON v.space = $1 AND v.entry_id = c.entry_id
                 WHERE v.status = ANY(string_to_array(q.statuses, ',')) AND (q.source IS NULL OR v.source = q.source)
                """,
                self._space,
                # Vector objects, not arrays: asyncpg would read an array as one more dimension.
                [Vector(np.asarray(q.vector, np.float32)) for q in queries],
                [candidate_keys(q.k) for q in queries],
                # Statuses are fixed words ('published', ...): a comma list avoids ragged arrays.
                [",".join(q.statuses) for q in queries],
                [q.source or None for q in queries],
            )
        found: list[list[KeyHit]] = [[] for _ in queries]
        for row in rows:
            found[row["n"] - 1].append(KeyHit(row["entry_id"], row["key_text"], float(row["score"])))
        return [ranked(keys, q.k) for keys, q in zip(found, queries, strict=True)]

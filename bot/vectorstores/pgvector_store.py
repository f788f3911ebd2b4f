"""The pgvector store: vectors in the `knowledge_vectors` table of the bot's
PostgreSQL, one partial HNSW index (cosine) per embedding space."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import asyncpg
import numpy as np

from bot.vectorstores.base import KeyVector, VectorHit

# HNSW build parameters: pgvector's defaults (m=16, ef_construction=64) give
# recall@5 >= 0.95 on our benchmark; ef_search is raised per query instead.
EF_SEARCH = 100
# One entry can own many keys; fetch more keys than k so that k distinct entries remain.
KEYS_PER_ENTRY_HEADROOM = 4


def _index_name(space: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", space.lower()).strip("_")[:40]
    return f"knowledge_vectors_hnsw_{slug}_{hashlib.sha1(space.encode()).hexdigest()[:8]}"


class PgVectorStore:
    name = "pgvector"

    def __init__(self, pool: asyncpg.Pool, space: str, dimension: int) -> None:
        self._pool = pool
        self._space = space
        self._dimension = dimension
        # The column has no fixed dimension; the cast selects this space's index.
        self._distance = f"(embedding::vector({dimension}) <=> $1::vector({dimension}))"

    async def prepare(self) -> None:
        await self._pool.execute(
            f"""
            CREATE INDEX IF NOT EXISTS {_index_name(self._space)}
                ON knowledge_vectors USING hnsw ((embedding::vector({self._dimension})) vector_cosine_ops)
                WHERE space = '{self._space.replace("'", "''")}'
            """
        )

    async def replace_keys(self, entry_id: str, keys: Sequence[KeyVector], status: str, source: str) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "DELETE FROM knowledge_vectors WHERE space = $1 AND entry_id = $2", self._space, entry_id
            )
            await connection.executemany(
                """INSERT INTO knowledge_vectors (space, entry_id, key_no, key_text, status, source, embedding)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                [
                    (self._space, entry_id, key.key_no, key.text, status, source, np.asarray(key.vector, np.float32))
                    for key in keys
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

    async def search(
        self, vector: Sequence[float], k: int, statuses: Sequence[str], source: str | None
    ) -> list[VectorHit]:
        params: list[object] = [np.asarray(vector, np.float32), self._space, list(statuses), k * KEYS_PER_ENTRY_HEADROOM]
        where = "space = $2 AND status = ANY($3::text[])"
        if source:
            params.append(source)
            where += f" AND source = ${len(params)}"
        async with self._pool.acquire() as connection, connection.transaction():
            # Iterative scans keep filtered HNSW searches from returning too few rows.
            await connection.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
            await connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = await connection.fetch(
                f"""
                SELECT entry_id, key_text, 1 - {self._distance} AS score
                  FROM knowledge_vectors
                 WHERE {where}
                 ORDER BY {self._distance}
                 LIMIT $4
                """,
                *params,
            )
        best: dict[str, VectorHit] = {}
        for row in rows:
            if row["entry_id"] not in best or row["score"] > best[row["entry_id"]].score:
                best[row["entry_id"]] = VectorHit(row["entry_id"], row["key_text"], float(row["score"]))
        return sorted(best.values(), key=lambda hit: -hit.score)[:k]

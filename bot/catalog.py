"""All SQL on `knowledge_entries`, the catalogue of the bot's knowledge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from mendkit.database import database_errors
from mendkit.errors import NotFound

_COLUMNS = ("entry_id, kind, title, content, questions, source, provenance, status, metadata, create_time, "
            "update_time, vectors_pending")


@dataclass(frozen=True)
class Entry:
    entry_id: str
    kind: str  # 'article' | 'qa'
    title: str
    content: str
    questions: tuple[str, ...]
    source: str
    status: str  # 'published' | 'proposed' | 'archived'
    provenance: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    create_time: datetime | None = None
    update_time: datetime | None = None
    # The vector store may not hold this row's keys, status or source yet (see
    # migration 0003): the next upsert of the entry writes its vectors again.
    vectors_pending: bool = False

    @property
    def retrieval_keys(self) -> list[str]:
        """What gets embedded: every phrasing of a Q&A entry (measured: keying an
        answer by its questions beats keying it by its own text); an article
        chunk's title and text."""
        if self.kind == "qa":
            return list(self.questions)
        return [f"{self.title}\n{self.content}" if self.title else self.content]


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(
        entry_id=row["entry_id"], kind=row["kind"], title=row["title"], content=row["content"],
        questions=tuple(row["questions"]), source=row["source"], status=row["status"],
        provenance=row["provenance"], metadata=row["metadata"],
        create_time=row["create_time"], update_time=row["update_time"], vectors_pending=row["vectors_pending"],
    )


async def get_many(pool: asyncpg.Pool, entry_ids: Sequence[str]) -> dict[str, Entry]:
    async with database_errors("knowledge"):
        rows = await pool.fetch(f"SELECT {_COLUMNS} FROM knowledge_entries WHERE entry_id = ANY($1::text[])",
                                list(entry_ids))
    return {row["entry_id"]: _entry(row) for row in rows}


async def get(pool: asyncpg.Pool, entry_id: str) -> Entry:
    found = await get_many(pool, [entry_id])
    if entry_id not in found:
        raise NotFound(f"knowledge entry {entry_id!r} does not exist")
    return found[entry_id]


_UPSERT = f"""
    INSERT INTO knowledge_entries AS e
           (entry_id, kind, title, content, questions, source, provenance, status, metadata, vectors_pending)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (entry_id) DO UPDATE SET
        kind = EXCLUDED.kind, title = EXCLUDED.title, content = EXCLUDED.content,
        questions = EXCLUDED.questions, source = EXCLUDED.source, provenance = EXCLUDED.provenance,
        status = EXCLUDED.status, metadata = EXCLUDED.metadata,
        vectors_pending = e.vectors_pending OR EXCLUDED.vectors_pending, update_time = now()
    -- An identical entry is left untouched, its update_time included (the contract).
    WHERE (e.kind, e.title, e.content, e.questions, e.source, e.provenance, e.status, e.metadata)
          IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.title, EXCLUDED.content, EXCLUDED.questions,
                            EXCLUDED.source, EXCLUDED.provenance, EXCLUDED.status, EXCLUDED.metadata)
       OR (EXCLUDED.vectors_pending AND NOT e.vectors_pending)
    RETURNING {_COLUMNS}
"""


async def upsert_many(pool: asyncpg.Pool, entries: Sequence[Entry], pending: Sequence[bool]) -> list[Entry]:
    """Inserts or replaces every entry in one transaction (all or none); `create_time`
    survives a replace. `pending[n]` marks entry n's vectors as still to be written.
    A repeated id is written in order: the last wins."""
    stored = []
    async with database_errors("knowledge"), pool.acquire() as connection, connection.transaction():
        for entry, vectors_pending in zip(entries, pending, strict=True):
            row = await connection.fetchrow(
                _UPSERT, entry.entry_id, entry.kind, entry.title, entry.content, list(entry.questions),
                entry.source, entry.provenance, entry.status, entry.metadata, vectors_pending,
            )
            if row is None:  # identical to the stored row, which is left as it is
                row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM knowledge_entries WHERE entry_id = $1",
                                                entry.entry_id)
            stored.append(_entry(row))
    return stored


async def vectors_written(pool: asyncpg.Pool, written: Sequence[Entry]) -> None:
    """Clears `vectors_pending` of entries whose vectors now match them: only rows
    still as written (same `update_time`), not ones a later upsert changed since."""
    if not written:
        return
    async with database_errors("knowledge"):
        await pool.execute(
            """UPDATE knowledge_entries e SET vectors_pending = false
                 FROM unnest($1::text[], $2::timestamptz[]) AS w(entry_id, update_time)
                WHERE e.entry_id = w.entry_id AND e.update_time = w.update_time AND e.vectors_pending""",
            [entry.entry_id for entry in written], [entry.update_time for entry in written],
        )


async def delete(pool: asyncpg.Pool, entry_id: str) -> bool:
    async with database_errors("knowledge"):
        deleted = await pool.fetchval("DELETE FROM knowledge_entries WHERE entry_id = $1 RETURNING true", entry_id)
    return bool(deleted)


@dataclass(frozen=True)
class ListFilter:
    source: str
    status: str | None
    kind: str | None


async def list_page(
    pool: asyncpg.Pool, where: ListFilter, after: tuple[datetime, str] | None, limit: int
) -> list[Entry]:
    conditions: list[str] = []
    params: list[object] = []
    for column, value in (("source", where.source), ("status", where.status), ("kind", where.kind)):
        if value:
            params.append(value)
            conditions.append(f"{column} = ${len(params)}")
    if after is not None:
        params += [after[0], after[1]]
        conditions.append(f"(create_time, entry_id) > (${len(params) - 1}, ${len(params)})")
    sql = f"SELECT {_COLUMNS} FROM knowledge_entries"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    params.append(limit)
    sql += f" ORDER BY create_time, entry_id LIMIT ${len(params)}"
    async with database_errors("knowledge"):
        return [_entry(row) for row in await pool.fetch(sql, *params)]

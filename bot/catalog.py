"""All SQL on `knowledge_entries`, the catalogue of the bot's knowledge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from mendkit.database import database_errors
from mendkit.errors import NotFound

_COLUMNS = "entry_id, kind, title, content, questions, source, provenance, status, metadata, create_time, update_time"


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
        create_time=row["create_time"], update_time=row["update_time"],
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


async def upsert(pool: asyncpg.Pool, entry: Entry) -> Entry:
    """Inserts or replaces the entry; `create_time` survives a replace."""
    async with database_errors("knowledge"):
        row = await pool.fetchrow(
            f"""
            INSERT INTO knowledge_entries (entry_id, kind, title, content, questions, source, provenance, status, metadata)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (entry_id) DO UPDATE SET
                kind = EXCLUDED.kind, title = EXCLUDED.title, content = EXCLUDED.content,
                questions = EXCLUDED.questions, source = EXCLUDED.source, provenance = EXCLUDED.provenance,
                status = EXCLUDED.status, metadata = EXCLUDED.metadata, update_time = now()
            RETURNING {_COLUMNS}
            """,
            entry.entry_id, entry.kind, entry.title, entry.content, list(entry.questions), entry.source,
            entry.provenance, entry.status, entry.metadata,
        )
    return _entry(row)


async def delete(pool: asyncpg.Pool, entry_id: str) -> bool:
    async with database_errors("knowledge"):
        return await pool.fetchval("DELETE FROM knowledge_entries WHERE entry_id = $1 RETURNING true", entry_id) or False


@dataclass(frozen=True)
class ListFilter:
    source: str
    status: str | None
    kind: str | None


async def list_page(
    pool: asyncpg.Pool, where: ListFilter, after: tuple[datetime, str] | None, limit: int
) -> list[Entry]:
    conditions, params = [], []
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

"""All SQL on `knowledge_entries`, the catalogue of the bot's knowledge, and on
`knowledge_revisions`, its history: every write that changes an entry records
the change in the same transaction (migration 0006)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from mendkit.database import database_errors
from mendkit.errors import FailedPrecondition, NotFound, Unavailable

_COLUMNS = ("entry_id, kind, title, content, questions, source, provenance, status, metadata, create_time, "
            "update_time, vectors_pending, revision")
# What a revision keeps of an entry: everything a writer sets.
_STATE = ("kind", "title", "content", "questions", "source", "provenance", "status", "metadata")
_REVISION_COLUMNS = ("entry_id, revision, action, state, actor, author, reason, fix_id, training_run_id, "
                     "restored_revision, create_time")


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
    revision: int = 0  # the entry's current revision; 0 before it is stored

    def state(self) -> dict:
        """What a revision keeps of the entry."""
        return {name: list(value) if name == "questions" else value
                for name, value in ((name, getattr(self, name)) for name in _STATE)}

    def same_as(self, other: Entry) -> bool:
        return self.state() == other.state()

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
        revision=row["revision"],
    )


@dataclass(frozen=True)
class Note:
    """Who makes a change and why: kept with the revision the change makes."""

    actor: str  # the caller's identity (admin, trainer), or `bot` for the bot's own ingest
    author: str = ""  # the person it is made for, e.g. the reviewer whose approval the trainer carries out
    reason: str = ""
    fix_id: str = ""
    training_run_id: str = ""
    restored_revision: int = 0  # a restore: the revision whose entry it writes back


# The bot's own writes (`python -m bot ingest`): no caller.
BOT = Note(actor="bot", reason="written by the bot itself (python -m bot ingest)")


@dataclass(frozen=True)
class Revision:
    """A row of `knowledge_revisions`: one change to one entry."""

    entry_id: str
    revision: int
    action: str  # create | update | delete | restore
    entry: Entry | None  # the entry after the change; None after a deletion
    note: Note
    create_time: datetime


def _revision(row: asyncpg.Record) -> Revision:
    state = row["state"]
    entry = None if state is None else Entry(
        entry_id=row["entry_id"], questions=tuple(state["questions"]), revision=row["revision"],
        **{name: state[name] for name in _STATE if name != "questions"})
    return Revision(entry_id=row["entry_id"], revision=row["revision"], action=row["action"], entry=entry,
                    note=Note(actor=row["actor"], author=row["author"], reason=row["reason"], fix_id=row["fix_id"],
                              training_run_id=row["training_run_id"], restored_revision=row["restored_revision"]),
                    create_time=row["create_time"])


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


# A write that changes what a writer sets (not only `vectors_pending`) is a new revision.
_CHANGED = """(e.kind, e.title, e.content, e.questions, e.source, e.provenance, e.status, e.metadata)
          IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.title, EXCLUDED.content, EXCLUDED.questions,
                            EXCLUDED.source, EXCLUDED.provenance, EXCLUDED.status, EXCLUDED.metadata)"""
_UPSERT = f"""
    INSERT INTO knowledge_entries AS e
           (entry_id, kind, title, content, questions, source, provenance, status, metadata, vectors_pending,
            revision)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
            -- a new id, or one written again after its deletion: the history goes on counting
            (SELECT coalesce(max(revision), 0) + 1 FROM knowledge_revisions WHERE entry_id = $1))
    ON CONFLICT (entry_id) DO UPDATE SET
        kind = EXCLUDED.kind, title = EXCLUDED.title, content = EXCLUDED.content,
        questions = EXCLUDED.questions, source = EXCLUDED.source, provenance = EXCLUDED.provenance,
        status = EXCLUDED.status, metadata = EXCLUDED.metadata,
        vectors_pending = e.vectors_pending OR EXCLUDED.vectors_pending, update_time = now(),
        revision = CASE WHEN {_CHANGED} THEN e.revision + 1 ELSE e.revision END
    -- An identical entry is left untouched, its update_time included (the contract).
    WHERE {_CHANGED}
       OR (EXCLUDED.vectors_pending AND NOT e.vectors_pending)
    RETURNING {_COLUMNS}, xmax = 0 AS inserted
"""
# Once per revision number: a write that only marked an entry's vectors pending
# kept its revision, which is on record already.
_RECORD = """
    INSERT INTO knowledge_revisions (entry_id, revision, action, state, actor, author, reason, fix_id,
                                     training_run_id, restored_revision)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (entry_id, revision) DO NOTHING
    RETURNING true
"""


async def _record(connection: asyncpg.Connection, entry_id: str, revision: int, action: str, state: dict | None,
                  note: Note) -> bool:
    """Records a revision; False when that revision number is on record already."""
    return bool(await connection.fetchval(_RECORD, entry_id, revision, action, state, note.actor, note.author,
                                          note.reason, note.fix_id, note.training_run_id, note.restored_revision))


async def _check_revision(connection: asyncpg.Connection, entry_id: str, expected: int) -> None:
    """FailedPrecondition, naming the newer revision, unless the entry is at
    revision `expected` (0: any). Its row, when it has one, stays locked until
    the transaction ends, so no other write comes between the check and the change."""
    if not expected:
        return
    current = await connection.fetchval("SELECT revision FROM knowledge_entries WHERE entry_id = $1 FOR UPDATE",
                                        entry_id)
    if current is None:  # deleted (or never written): its history's newest revision is its revision
        current = await connection.fetchval(
            "SELECT max(revision) FROM knowledge_revisions WHERE entry_id = $1", entry_id)
    if current == expected:
        return
    if current is None:
        raise NotFound(f"knowledge entry {entry_id!r} does not exist")
    newer = _revision(await connection.fetchrow(
        f"SELECT {_REVISION_COLUMNS} FROM knowledge_revisions WHERE entry_id = $1 AND revision = $2",
        entry_id, current))
    raise FailedPrecondition(f"knowledge entry {entry_id!r} is at revision {current}, not {expected}: it changed "
                             f"since ({describe(newer)}); ListRevisions shows the changes, read the entry again "
                             "and decide")


def describe(revision: Revision) -> str:
    """One revision in a sentence, for messages: what, by whom, for whom, when, why."""
    note = revision.note
    who = note.actor + (f" for {note.author}" if note.author else "")
    why = f": {note.reason}" if note.reason else ""
    fix = f", fix {note.fix_id}" if note.fix_id else ""
    return f"revision {revision.revision}, {revision.action} by {who} at {revision.create_time:%Y-%m-%d %H:%M:%S}Z" \
           f"{fix}{why}"


async def upsert_many(pool: asyncpg.Pool, entries: Sequence[Entry], pending: Sequence[bool], *, note: Note = BOT,
                      expected: Mapping[str, int] | None = None) -> list[Entry]:
    """Inserts or replaces every entry in one transaction (all or none); `create_time`
    survives a replace. `pending[n]` marks entry n's vectors as still to be written.
    A repeated id is written in order: the last wins. Each entry the write
    changes gets a revision carrying `note`; `expected` (entry id -> revision)
    refuses the whole write when one of those entries is at another revision."""
    stored = []
    async with database_errors("knowledge"), pool.acquire() as connection, connection.transaction():
        for entry_id, revision in (expected or {}).items():
            await _check_revision(connection, entry_id, revision)
        for entry, vectors_pending in zip(entries, pending, strict=True):
            row = await connection.fetchrow(
                _UPSERT, entry.entry_id, entry.kind, entry.title, entry.content, list(entry.questions),
                entry.source, entry.provenance, entry.status, entry.metadata, vectors_pending,
            )
            if row is None:  # identical to the stored row, which is left as it is
                row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM knowledge_entries WHERE entry_id = $1",
                                                entry.entry_id)
            else:
                saved = _entry(row)
                action = "restore" if note.restored_revision else "create" if row["inserted"] else "update"
                if not await _record(connection, saved.entry_id, saved.revision, action, saved.state(), note) \
                        and row["inserted"]:
                    # The new row's number was counted before a deletion of the same id
                    # committed its own revision under it: rather than a history that
                    # says deleted, nothing is written, and the retry counts again.
                    raise Unavailable(f"knowledge entry {entry.entry_id!r} was deleted while this write ran; "
                                      "write it again")
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


async def delete(pool: asyncpg.Pool, entry_id: str, *, note: Note = BOT, expected: int = 0) -> bool:
    """Deletes the entry, recording the deletion as its next revision; False when
    there was none. `expected`: as upsert_many's, checked only when the entry exists."""
    async with database_errors("knowledge"), pool.acquire() as connection, connection.transaction():
        if await connection.fetchval("SELECT true FROM knowledge_entries WHERE entry_id = $1 FOR UPDATE", entry_id):
            await _check_revision(connection, entry_id, expected)
        revision = await connection.fetchval("DELETE FROM knowledge_entries WHERE entry_id = $1 RETURNING revision",
                                             entry_id)
        if revision is None:
            return False
        await _record(connection, entry_id, revision + 1, "delete", None, note)
    return True


async def history(pool: asyncpg.Pool, entry_id: str, before: int | None, limit: int) -> list[Revision]:
    """Up to `limit` revisions of the entry, newest first, older than `before` when given."""
    async with database_errors("knowledge"):
        rows = await pool.fetch(
            f"""SELECT {_REVISION_COLUMNS} FROM knowledge_revisions
                 WHERE entry_id = $1 AND ($2::bigint IS NULL OR revision < $2)
                 ORDER BY revision DESC LIMIT $3""", entry_id, before, limit)
    return [_revision(row) for row in rows]


async def revision(pool: asyncpg.Pool, entry_id: str, number: int) -> Revision:
    """One revision; NotFound when the entry has no such revision."""
    async with database_errors("knowledge"):
        row = await pool.fetchrow(
            f"SELECT {_REVISION_COLUMNS} FROM knowledge_revisions WHERE entry_id = $1 AND revision = $2",
            entry_id, number)
    if row is None:
        raise NotFound(f"knowledge entry {entry_id!r} has no revision {number}")
    return _revision(row)


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

"""All SQL on the trainer's own tables (`trainer_runs`, `trainer_fixes`) and its
run lock. trainer/runs.py calls these with validated values; nothing else in
Mend touches the tables."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import asyncpg

from mend.bot.v1 import bot_service_pb2 as bpb
from mendkit.database import database_errors
from trainer.changes import ADD_PHRASINGS, NEW_ENTRY, Change
from trainer.fold import Fix
from trainer.loop import Counts
from trainer.regressions import Evaluation, Regression

# One run at a time across every trainer process (the CronJob and the admin
# server): a session advisory lock, held on a connection of the run's own for
# the whole run.
RUN_LOCK = 0x74726169  # "trai"
# How long a start waits for a run that has recorded its end to release the lock.
FINISHING_RUN_WAIT = "2s"
ABANDONED = "abandoned: the process running it stopped"
_RUN_COLUMNS = ("run_id, state, trigger, forced, publish_policy, feedback_threshold, counts, error_message, "
                "start_time, end_time, evaluation_before, evaluation_after")
# What a run records of a fix; a review adds the rest.
_FIX_WRITTEN = ("fix_id, run_id, questions, answer, interaction_ids, state, teacher_model, prompt_version, "
                "create_time, kind, entry_id, added_questions, previous_answer, regressions, withheld_questions")
_FIX_COLUMNS = f"{_FIX_WRITTEN}, nearby, into_entry_id, reviewer, review_time, review_note"


@dataclass(frozen=True)
class RunRecord:
    """A row of `trainer_runs`."""

    run_id: uuid.UUID
    state: str  # running | succeeded | failed | skipped_below_threshold
    trigger: str  # schedule | manual
    forced: bool
    publish_policy: str  # auto | review
    feedback_threshold: int
    counts: dict[str, int]  # Counts' fields; those of a run still running are its progress
    error_message: str
    start_time: datetime
    end_time: datetime | None
    evaluation_before: dict | None  # regressions.Evaluation.record()
    evaluation_after: dict | None


@dataclass(frozen=True)
class FixRecord:
    """A row of `trainer_fixes`: a fix a run wrote, and its review."""

    fix_id: str  # the knowledge entry's id
    run_id: uuid.UUID
    questions: list[str]
    answer: str
    interaction_ids: list[str]
    state: str  # proposed | published | rejected | rolled_back
    teacher_model: str
    prompt_version: str
    create_time: datetime
    kind: str  # new_entry | add_phrasings | edit_answer (trainer/changes.py)
    entry_id: str  # the entry it writes (new_entry: its own, = fix_id) or changes
    added_questions: list[str]  # add_phrasings: what it adds (would add, while proposed)
    previous_answer: str  # edit_answer: the answer it replaces (replaced)
    regressions: list[dict]  # the gate's (regressions.Regression fields), as last replayed
    withheld_questions: list[str]  # phrasings the gate kept out of it
    nearby: list[dict]  # new_entry: fold.Nearby fields, the published entries nearest its questions
    into_entry_id: str  # a new entry approved into an existing one: that entry (set when the approval starts)
    reviewer: str
    review_time: datetime | None
    review_note: str


class RunLockTaken(Exception):
    """Another run holds the run lock."""


def _run(row: asyncpg.Record) -> RunRecord:
    return RunRecord(**row)


def _fix(row: asyncpg.Record) -> FixRecord:
    return FixRecord(**row)


async def get_run(pool: asyncpg.Pool, run_id: uuid.UUID) -> RunRecord | None:
    async with database_errors("trainer"):
        row = await pool.fetchrow(f"SELECT {_RUN_COLUMNS} FROM trainer_runs WHERE run_id = $1", run_id)
    return None if row is None else _run(row)


async def get_fix(pool: asyncpg.Pool, fix_id: str) -> FixRecord | None:
    async with database_errors("trainer"):
        row = await pool.fetchrow(f"SELECT {_FIX_COLUMNS} FROM trainer_fixes WHERE fix_id = $1", fix_id)
    return None if row is None else _fix(row)


async def _newest_first(pool: asyncpg.Pool, table: str, columns: str, key: tuple[str, str],
                        filters: dict[str, object], after: Sequence[object] | None, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` rows matching `filters` (an empty value: any), newest first
    after the cursor `after`. `key` is (time column, id column): the id breaks
    ties between rows of the same time, so no row is skipped or served twice."""
    when, ident = key
    where: list[str] = []
    params: list[object] = []
    for column, value in filters.items():
        if value:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    if after is not None:
        params += after
        where.append(f"({when}, {ident}) < (${len(params) - 1}, ${len(params)})")
    sql = f"SELECT {columns} FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
    async with database_errors("trainer"):
        return await pool.fetch(f"{sql} ORDER BY {when} DESC, {ident} DESC LIMIT {int(limit)}", *params)


async def list_runs(pool: asyncpg.Pool, state: str, after: tuple[datetime, uuid.UUID] | None,
                    limit: int) -> list[RunRecord]:
    """Runs in `state` (empty: any), newest first after (start_time, run_id)."""
    rows = await _newest_first(pool, "trainer_runs", _RUN_COLUMNS, ("start_time", "run_id"), {"state": state},
                               after, limit)
    return [_run(row) for row in rows]


async def list_fixes(pool: asyncpg.Pool, state: str, run_id: uuid.UUID | None, after: tuple[datetime, str] | None,
                     limit: int) -> list[FixRecord]:
    """Fixes in `state` (empty: any) of `run_id` (None: any run), newest first after (create_time, fix_id)."""
    rows = await _newest_first(pool, "trainer_fixes", _FIX_COLUMNS, ("create_time", "fix_id"),
                               {"state": state, "run_id": run_id}, after, limit)
    return [_fix(row) for row in rows]


# --- a run: its own connection, which holds the run lock --------------------------


async def _unlock(pool: asyncpg.Pool, connection: asyncpg.Connection) -> None:
    try:
        await connection.execute("SELECT pg_advisory_unlock_all()")
    finally:
        await pool.release(connection)


@contextlib.asynccontextmanager
async def run_connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one run, out of the pool until the block ends. The run
    lock is a session lock, so it is taken on this connection and released
    before the connection goes back: the pool resets no session state
    (mendkit.database), and a pooled connection must not keep the lock."""
    async with database_errors("trainer"):
        # Acquired, not `async with pool.acquire()`: the run's task keeps it past the block that starts the run.
        connection = await pool.acquire()
    try:
        yield connection
    except BaseException:
        with contextlib.suppress(Exception):  # the error that matters is the one being raised
            await _unlock(pool, connection)
        raise
    await _unlock(pool, connection)


async def insert_run(connection: asyncpg.Connection, run_id: uuid.UUID, trigger: str, forced: bool,
                     publish_policy: str, feedback_threshold: int) -> RunRecord | None:
    """Records a running run and takes the run lock on `connection`, in one
    transaction. None when a run with this id is on record already (nothing
    changes); RunLockTaken when another run holds the lock (nothing is recorded)."""
    async with database_errors("trainer"), connection.transaction():
        # The row first, in one transaction with the lock: a start racing this one
        # with the same run_id waits on the row, then finds it.
        row = await connection.fetchrow(
            f"""INSERT INTO trainer_runs (run_id, state, trigger, forced, publish_policy, feedback_threshold)
                VALUES ($1, 'running', $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING RETURNING {_RUN_COLUMNS}""",
            run_id, trigger, forced, publish_policy, feedback_threshold)
        if row is None:
            return None
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", RUN_LOCK):
            if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM trainer_runs WHERE state = 'running' "
                                         "AND run_id <> $1)", run_id):
                raise RunLockTaken  # rolls the row back
            # No run is running, yet the lock is held: a run that has just recorded its
            # end is letting go of it (its row is updated before its lock goes). Wait
            # for that, briefly, rather than refuse a start that would succeed a moment later.
            await connection.execute(f"SET LOCAL lock_timeout = '{FINISHING_RUN_WAIT}'")
            try:
                await connection.execute("SELECT pg_advisory_lock($1)", RUN_LOCK)
            except asyncpg.LockNotAvailableError:
                raise RunLockTaken from None
        # Every running run holds the lock: holding it proves any other row
        # still 'running' belongs to a process that stopped (killed, crashed).
        await connection.execute(
            "UPDATE trainer_runs SET state = 'failed', error_message = $2, end_time = now() "
            "WHERE state = 'running' AND run_id <> $1", run_id, ABANDONED)
    return _run(row)


async def record_progress(connection: asyncpg.Connection, run_id: uuid.UUID, counts: Counts) -> None:
    """The counts so far, for GetRun while the run is still running."""
    await connection.execute("UPDATE trainer_runs SET counts = $2 WHERE run_id = $1 AND state = 'running'",
                             run_id, asdict(counts))


async def record_evaluation(connection: asyncpg.Connection, run_id: uuid.UUID, when: str,
                            evaluation: Evaluation) -> None:
    """The regression set's evaluation `when` ("before" or "after") the run's fixes."""
    column = {"before": "evaluation_before", "after": "evaluation_after"}[when]
    await connection.execute(f"UPDATE trainer_runs SET {column} = $2 WHERE run_id = $1", run_id, evaluation.record())


async def finish_run(connection: asyncpg.Connection, run_id: uuid.UUID, state: str, counts: Counts,
                     error_message: str) -> None:
    await connection.execute(
        "UPDATE trainer_runs SET state = $2, counts = $3, error_message = $4, end_time = now() "
        "WHERE run_id = $1", run_id, state, asdict(counts), error_message)


@contextlib.asynccontextmanager
async def hold_fixes(connection: asyncpg.Connection,
                     fix_ids: list[str]) -> AsyncIterator[dict[str, tuple[str, str, str]]]:
    """The states, answers and `into_entry_id` of the fixes a page grows, with
    their rows locked until the block ends (the page is recorded and marked): a
    review (which locks its fix's row for its whole course) either finished
    before, and the page writes its verdict and edited answer, or waits."""
    async with connection.transaction():
        rows = await connection.fetch(
            "SELECT fix_id, state, answer, into_entry_id FROM trainer_fixes WHERE fix_id = ANY($1::text[]) "
            "ORDER BY fix_id FOR UPDATE", fix_ids)
        yield {row["fix_id"]: (row["state"], row["answer"], row["into_entry_id"]) for row in rows}


async def record_fixes(connection: asyncpg.Connection, run_id: uuid.UUID, fixes: list[Fix]) -> None:
    """New-entry fixes: new ones are recorded whole; a fix on record gains only
    questions and interactions (its state and answer are the reviewer's)."""
    await connection.executemany(
        f"""INSERT INTO trainer_fixes ({_FIX_WRITTEN}, nearby)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), '{NEW_ENTRY}', $1, '{{}}', '', $9, $10, $11)
            ON CONFLICT (fix_id) DO UPDATE SET questions = EXCLUDED.questions,
                interaction_ids = EXCLUDED.interaction_ids, regressions = EXCLUDED.regressions,
                withheld_questions = EXCLUDED.withheld_questions,
                -- a fix adopted from the index (a re-run, an earlier run's) keeps what it listed
                nearby = CASE WHEN EXCLUDED.nearby = '[]'::jsonb THEN trainer_fixes.nearby
                              ELSE EXCLUDED.nearby END
            -- one a reviewer approved into another entry is that entry's change now
            WHERE trainer_fixes.kind = '{NEW_ENTRY}'""",
        [(f.entry.entry_id, run_id, list(f.entry.questions), f.entry.content, f.interaction_ids,
          "published" if f.entry.status == bpb.ENTRY_STATUS_PUBLISHED else "proposed",
          f.entry.provenance.teacher_model, f.entry.provenance.prompt_version,
          [asdict(r) for r in f.regressions], f.withheld, [asdict(n) for n in f.nearby]) for f in fixes])


async def claim_into(pool: asyncpg.Pool, fix_id: str, into: str, replace: bool = False) -> str:
    """Records that a proposed new-entry fix is being approved into entry
    `into`, before the index changes; returns the entry on record afterwards
    (another one, when an earlier approval into it is on record and not
    `replace`d; '' when the fix is no longer a proposed new entry)."""
    async with database_errors("trainer"):
        return await pool.fetchval(
            f"""UPDATE trainer_fixes SET into_entry_id = CASE WHEN into_entry_id = '' OR $3 THEN $2
                                                         ELSE into_entry_id END
                 WHERE fix_id = $1 AND state = 'proposed' AND kind = '{NEW_ENTRY}' RETURNING into_entry_id""",
            fix_id, into, replace) or ""


async def release_into(pool: asyncpg.Pool, fix_id: str, into: str) -> None:
    """Takes a failed approval's target off a proposed fix's record."""
    async with database_errors("trainer"):
        await pool.execute("UPDATE trainer_fixes SET into_entry_id = '' WHERE fix_id = $1 AND into_entry_id = $2 "
                           "AND state = 'proposed'", fix_id, into)


async def record_regressions(pool: asyncpg.Pool, fix_id: str, found: Sequence[Regression]) -> None:
    """The gate's list for a fix, replayed again (before an approval)."""
    async with database_errors("trainer"):
        await pool.execute("UPDATE trainer_fixes SET regressions = $2 WHERE fix_id = $1",
                           fix_id, [asdict(r) for r in found])


async def turned_down_phrasings(connection: asyncpg.Connection, entry_ids: list[str]) -> dict[str, set[str]]:
    """By entry, the questions of its ADD_PHRASINGS fixes that were rejected or rolled back."""
    rows = await connection.fetch(
        "SELECT entry_id, questions FROM trainer_fixes WHERE kind = 'add_phrasings' "
        "AND state IN ('rejected', 'rolled_back') AND entry_id = ANY($1::text[])", entry_ids)
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["entry_id"], set()).update(row["questions"])
    return found


async def proposed_phrasings(pool: asyncpg.Pool, entry_ids: list[str]) -> list[str]:
    """The proposed ADD_PHRASINGS fixes of these entries (their ids, oldest first)."""
    async with database_errors("trainer"):
        rows = await pool.fetch(
            "SELECT fix_id FROM trainer_fixes WHERE kind = 'add_phrasings' AND state = 'proposed' "
            "AND entry_id = ANY($1::text[]) ORDER BY create_time, fix_id", entry_ids)
    return [row["fix_id"] for row in rows]


def _change(row: asyncpg.Record) -> Change:
    return Change(fix_id=row["fix_id"], kind=row["kind"], entry_id=row["entry_id"], run_id=str(row["run_id"]),
                  questions=list(row["questions"]), answer=row["answer"],
                  interaction_ids=list(row["interaction_ids"]), state=row["state"],
                  added_questions=list(row["added_questions"]), previous_answer=row["previous_answer"],
                  teacher_model=row["teacher_model"], prompt_version=row["prompt_version"],
                  regressions=[Regression(**r) for r in row["regressions"]],
                  withheld_questions=list(row["withheld_questions"]))


async def pending_changes(connection: asyncpg.Connection, entry_ids: list[str], run_id: uuid.UUID) -> list[Change]:
    """The changes of these entries new questions may join: proposed ones, and those of run `run_id`; oldest first."""
    rows = await connection.fetch(
        f"""SELECT {_FIX_WRITTEN} FROM trainer_fixes
             WHERE kind <> '{NEW_ENTRY}' AND entry_id = ANY($1::text[]) AND (state = 'proposed' OR run_id = $2)
             ORDER BY create_time, fix_id""", entry_ids, run_id)
    return [_change(row) for row in rows]


async def record_changes(connection: asyncpg.Connection, changes: list[Change]) -> None:
    """Changes to existing entries: a new one whole; one on record gains questions,
    interactions and added phrasings (its state and answer are the reviewer's)."""
    await connection.executemany(
        f"""INSERT INTO trainer_fixes ({_FIX_WRITTEN})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9, $10, $11, $12, $13, $14)
            ON CONFLICT (fix_id) DO UPDATE SET questions = EXCLUDED.questions,
                interaction_ids = EXCLUDED.interaction_ids, added_questions = EXCLUDED.added_questions,
                regressions = EXCLUDED.regressions, withheld_questions = EXCLUDED.withheld_questions""",
        [(c.fix_id, uuid.UUID(c.run_id), c.questions, c.answer, c.interaction_ids, c.state, c.teacher_model,
          c.prompt_version, c.kind, c.entry_id, c.added_questions, c.previous_answer,
          [asdict(r) for r in c.regressions], c.withheld_questions) for c in changes])


# --- a review: one transaction that holds the fix's row ------------------------


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction until the block ends; committed unless the block raises."""
    async with database_errors("trainer"), pool.acquire() as connection, connection.transaction():
        yield connection


async def lock_fix(connection: asyncpg.Connection, fix_id: str) -> FixRecord | None:
    """The fix, its row locked until the transaction ends."""
    row = await connection.fetchrow(f"SELECT {_FIX_COLUMNS} FROM trainer_fixes WHERE fix_id = $1 FOR UPDATE", fix_id)
    return None if row is None else _fix(row)


async def record_review(connection: asyncpg.Connection, fix_id: str, was: str, state: str, reviewer: str, note: str,
                        answer: str, applied: tuple[list[str], str] | None = None, into: str = "") -> FixRecord:
    """The fix, `was` in state, now in `state`, signed by `reviewer`; `answer`
    (when not empty) replaces its answer; `applied` (when given) replaces its
    added phrasings and previous answer with what publishing it did; `into`
    (when not empty) makes a new-entry fix an ADD_PHRASINGS fix of that entry
    (the one `claim_into` recorded)."""
    added, previous = applied if applied is not None else ([], "")
    row = await connection.fetchrow(
        f"""UPDATE trainer_fixes SET state = $2, reviewer = $3, review_note = $4, review_time = now(),
                   answer = CASE WHEN $5 = '' THEN answer ELSE $5 END,
                   added_questions = CASE WHEN $7 THEN $8::text[] ELSE added_questions END,
                   previous_answer = CASE WHEN $7 THEN $9 ELSE previous_answer END,
                   kind = CASE WHEN $10 = '' THEN kind ELSE '{ADD_PHRASINGS}' END,
                   entry_id = CASE WHEN $10 = '' THEN entry_id ELSE $10 END,
                   -- merged, it published its withheld phrasings too (judged again as the entry's)
                   withheld_questions = CASE WHEN $10 = '' THEN withheld_questions ELSE '{{}}' END,
                   -- a rolled-back merge keeps its entry; other reviews leave none behind
                   into_entry_id = CASE WHEN $2 = 'rolled_back' THEN into_entry_id ELSE $10 END
             WHERE fix_id = $1 AND state = $6 RETURNING {_FIX_COLUMNS}""",
        fix_id, state, reviewer, note, answer, was, applied is not None, added, previous, into)
    return _fix(row)

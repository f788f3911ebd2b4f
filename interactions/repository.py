"""All SQL on the `interactions` table. Handlers call these functions with
validated values; nothing else in Mend touches the table."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from mendkit import database as mend_database
from mendkit.database import database_errors
from mendkit.errors import AlreadyExists, NotFound

# `sources` comes back as jsonb's text and is decoded by the service only when it
# builds a message: cheaper than the pool's per-value jsonb codec (a list page
# of 100 rows spends a third of its fetch in that codec otherwise).
_COLUMNS = """
    interaction_id, conversation_id, user_query, bot_response, sources::text AS sources, model,
    input_tokens, output_tokens, retrieval_ms, time_to_first_token_ms, total_ms,
    trace_id, "timestamp", feedback, feedback_reason, feedback_comment, feedback_time,
    processed_for_training, training_outcome, knowledge_entry_id, training_run_id, processed_time, unsure
"""


@dataclass(frozen=True)
class NewInteraction:
    interaction_id: uuid.UUID
    conversation_id: str
    user_query: str
    bot_response: str
    sources: list[dict[str, object]]
    model: str
    input_tokens: int
    output_tokens: int
    retrieval_ms: int
    time_to_first_token_ms: int
    total_ms: int
    trace_id: str
    unsure: bool = False


@dataclass(frozen=True)
class ListFilter:
    # +1, -1, 0, or None for any rating.
    feedback: int | None
    processed_for_training: bool | None
    start_time: datetime | None
    end_time: datetime | None
    conversation_id: str


@dataclass(frozen=True)
class Mark:
    interaction_id: uuid.UUID
    outcome: str
    knowledge_entry_id: str
    training_run_id: str


async def create_pool(url: str, max_size: int) -> asyncpg.Pool:
    return await mend_database.create_pool(url, max_size)


async def create(pool: asyncpg.Pool, new: NewInteraction) -> asyncpg.Record:
    """Inserts the interaction, or returns the stored one if this is a retry of
    the same create. The same id with other content is ALREADY_EXISTS."""
    async with database_errors("interactions"):
        row = await pool.fetchrow(
            f"""
            INSERT INTO interactions (
                interaction_id, conversation_id, user_query, bot_response, sources, model,
                input_tokens, output_tokens, retrieval_ms, time_to_first_token_ms, total_ms, trace_id, unsure)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (interaction_id) DO NOTHING
            RETURNING {_COLUMNS}
            """,
            new.interaction_id, new.conversation_id, new.user_query, new.bot_response, new.sources, new.model,
            new.input_tokens, new.output_tokens, new.retrieval_ms, new.time_to_first_token_ms, new.total_ms,
            new.trace_id, new.unsure,
        )
        if row is not None:
            return row
        existing = await get(pool, new.interaction_id)
    if not _same_exchange(existing, new):
        raise AlreadyExists(
            f"interaction {new.interaction_id} already exists with different content; choose a new interaction_id"
        )
    return existing


def _same_exchange(stored: asyncpg.Record, new: NewInteraction) -> bool:
    """Whether a create repeats the stored one: everything the caller sent. The
    trace id is left out: a retry may run in another trace, or get the id of
    the trace it is part of when it sends none."""
    return (
        stored["conversation_id"] == new.conversation_id
        and stored["user_query"] == new.user_query
        and stored["bot_response"] == new.bot_response
        and json.loads(stored["sources"]) == new.sources
        and stored["model"] == new.model
        and stored["unsure"] == new.unsure
        and (stored["input_tokens"], stored["output_tokens"], stored["retrieval_ms"],
             stored["time_to_first_token_ms"], stored["total_ms"])
        == (new.input_tokens, new.output_tokens, new.retrieval_ms, new.time_to_first_token_ms, new.total_ms)
    )


async def get(pool: asyncpg.Pool, interaction_id: uuid.UUID) -> asyncpg.Record:
    async with database_errors("interactions"):
        row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM interactions WHERE interaction_id = $1", interaction_id)
    if row is None:
        raise NotFound(f"interaction {interaction_id} does not exist")
    return row


async def conversation_of(pool: asyncpg.Pool, interaction_id: uuid.UUID) -> str | None:
    """The conversation of an interaction; None when there is no such interaction."""
    async with database_errors("interactions"):
        return await pool.fetchval("SELECT conversation_id FROM interactions WHERE interaction_id = $1",
                                   interaction_id)


async def list_page(
    pool: asyncpg.Pool, where: ListFilter, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` interactions matching `where`, oldest first, after the cursor."""
    conditions: list[str] = []
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    # Rating and processed flag are inlined as constants (they come from a closed
    # set, never from text) so that the planner can match the partial index.
    if where.feedback is not None:
        conditions.append(f"feedback = {int(where.feedback)}")
    if where.processed_for_training is not None:
        conditions.append(f"processed_for_training = {'true' if where.processed_for_training else 'false'}")
    if where.start_time is not None:
        conditions.append(f'"timestamp" >= {param(where.start_time)}')
    if where.end_time is not None:
        conditions.append(f'"timestamp" < {param(where.end_time)}')
    if where.conversation_id:
        conditions.append(f"conversation_id = {param(where.conversation_id)}")
    if after is not None:
        conditions.append(f'("timestamp", interaction_id) > ({param(after[0])}, {param(after[1])})')
    sql = f"SELECT {_COLUMNS} FROM interactions"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f' ORDER BY "timestamp", interaction_id LIMIT {param(limit)}'
    async with database_errors("interactions"):
        return await pool.fetch(sql, *params)


async def set_feedback(
    pool: asyncpg.Pool, interaction_id: uuid.UUID, feedback: int, reason: str | None, comment: str
) -> asyncpg.Record:
    """Records a vote, replacing any earlier one. Its comment is new text, so an
    exchange retention had masked is masked again at its next pass."""
    async with database_errors("interactions"):
        row = await pool.fetchrow(
            f"""
            UPDATE interactions
               SET feedback = $2, feedback_reason = $3, feedback_comment = $4, feedback_time = now(),
                   personal_data_masked = personal_data_masked AND $4 = ''
             WHERE interaction_id = $1
            RETURNING {_COLUMNS}
            """,
            interaction_id, feedback, reason, comment,
        )
    if row is None:
        raise NotFound(f"interaction {interaction_id} does not exist")
    return row


async def mark_processed(pool: asyncpg.Pool, marks: Sequence[Mark]) -> list[asyncpg.Record]:
    """Records the trainer's outcomes in one transaction: all or nothing.

    A `failed` outcome leaves `processed_for_training` false, so that the next
    run tries that interaction again instead of dropping it."""
    ids = [m.interaction_id for m in marks]
    async with database_errors("interactions"), pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            f"""
            UPDATE interactions AS i
               SET processed_for_training = m.outcome <> 'failed',
                   training_outcome = m.outcome,
                   knowledge_entry_id = m.entry_id,
                   training_run_id = m.run_id,
                   processed_time = now()
              FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS m(id, outcome, entry_id, run_id)
             WHERE i.interaction_id = m.id
            RETURNING {", ".join("i." + c.strip() for c in _COLUMNS.split(","))}
            """,
            ids, [m.outcome for m in marks], [m.knowledge_entry_id for m in marks], [m.training_run_id for m in marks],
        )
        if len(rows) != len(marks):
            found = {row["interaction_id"] for row in rows}
            missing = [str(i) for i in ids if i not in found]
            # Raising inside the transaction rolls every update of the batch back.
            more = " ..." if len(missing) > 10 else ""
            raise NotFound(f"interactions do not exist: {', '.join(missing[:10])}{more}")
    by_id = {row["interaction_id"]: row for row in rows}
    return [by_id[i] for i in ids]


async def mask_older_than(pool: asyncpg.Pool, cutoff: datetime, batch: int,
                          mask: Callable[[str], str]) -> int:
    """Masks the personal data of up to `batch` exchanges logged before `cutoff`
    that are not masked yet (question, answer, comment), in one transaction;
    returns how many. Rows another pass holds are skipped, so replicas share the work."""
    async with database_errors("interactions"), pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            """SELECT interaction_id, user_query, bot_response, feedback_comment FROM interactions
                WHERE NOT personal_data_masked AND "timestamp" < $1
                ORDER BY "timestamp" LIMIT $2 FOR UPDATE SKIP LOCKED""", cutoff, batch)
        if rows:
            await connection.execute(
                """UPDATE interactions AS i
                      SET user_query = m.user_query, bot_response = m.bot_response,
                          feedback_comment = m.feedback_comment, personal_data_masked = true
                     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
                          AS m(id, user_query, bot_response, feedback_comment)
                    WHERE i.interaction_id = m.id""",
                [r["interaction_id"] for r in rows], [mask(r["user_query"]) for r in rows],
                [mask(r["bot_response"]) for r in rows], [mask(r["feedback_comment"]) for r in rows])
    return len(rows)


async def delete_older_than(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    """Deletes up to `batch` exchanges logged before `cutoff`; returns how many."""
    async with database_errors("interactions"):
        deleted = await pool.execute(
            """DELETE FROM interactions WHERE interaction_id IN (
                   SELECT interaction_id FROM interactions WHERE "timestamp" < $1
                    ORDER BY "timestamp" LIMIT $2 FOR UPDATE SKIP LOCKED)""", cutoff, batch)
    return int(deleted.split()[-1])

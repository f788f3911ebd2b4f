"""Runs and fixes on record (the trainer's own tables), the single-run lock,
and the review actions that publish, reject or roll back a fix."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, replace

import asyncpg
from google.protobuf.field_mask_pb2 import FieldMask

from mendmodels.chat.base import ChatModel
from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.database import database_errors
from mendkit.errors import FailedPrecondition, NotFound
from trainer.judge import Judge
from trainer.loop import Counts, Fix, Policy, run_once

_log = logging.getLogger("trainer.runs")
# One run at a time across every trainer process (the CronJob and the admin
# server): a session advisory lock held for the whole run.
RUN_LOCK = 0x74726169  # "trai"
ABANDONED = "abandoned: the process running it stopped"
RUN_COLUMNS = ("run_id, state, trigger, forced, publish_policy, feedback_threshold, counts, error_message, "
               "start_time, end_time")
FIX_COLUMNS = ("fix_id, run_id, questions, answer, interaction_ids, state, teacher_model, prompt_version, "
               "create_time, reviewer, review_time, review_note")


class Trainer:
    def __init__(self, pool: asyncpg.Pool, interactions: ipb_grpc.InteractionsServiceStub,
                 knowledge: bpb_grpc.KnowledgeServiceStub, teacher: ChatModel, policy: Policy,
                 judge: Judge | None = None) -> None:
        self.pool = pool
        self.interactions = interactions
        self.knowledge = knowledge
        self.teacher = teacher
        self.policy = policy
        self.judge = judge

    async def get_run(self, run_id: uuid.UUID) -> asyncpg.Record:
        async with database_errors("trainer"):
            row = await self.pool.fetchrow(f"SELECT {RUN_COLUMNS} FROM trainer_runs WHERE run_id = $1", run_id)
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        return row

    async def start(self, run_id: uuid.UUID, trigger: str, force: bool) -> tuple[asyncpg.Record, asyncio.Task | None]:
        """Records a run and starts it in the background (None: it ended at once).
        A repeated run_id returns that run (also when two starts with it race);
        another run in progress is FAILED_PRECONDITION."""
        async with database_errors("trainer"):
            existing = await self.pool.fetchrow(f"SELECT {RUN_COLUMNS} FROM trainer_runs WHERE run_id = $1", run_id)
            if existing is not None:
                return existing, None
            connection = await self.pool.acquire()
        try:
            async with database_errors("trainer"), connection.transaction():
                # The row first, in one transaction with the lock: a start racing this one
                # with the same run_id waits on the row, then finds it and returns it.
                inserted = await connection.fetchval(
                    """INSERT INTO trainer_runs (run_id, state, trigger, forced, publish_policy, feedback_threshold)
                       VALUES ($1, 'running', $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING RETURNING true""",
                    run_id, trigger, force, self.policy.publish, self.policy.threshold)
                if inserted:
                    if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", RUN_LOCK):
                        raise FailedPrecondition("another trainer run is in progress; try again when it has finished")
                    # Every running run holds the lock: holding it proves any other row
                    # still 'running' belongs to a process that stopped (killed, crashed).
                    await connection.execute(
                        "UPDATE trainer_runs SET state = 'failed', error_message = $2, end_time = now() "
                        "WHERE state = 'running' AND run_id <> $1", run_id, ABANDONED)
        except BaseException:
            with contextlib.suppress(Exception):  # the error that matters is the one being raised
                await self._release(connection)
            raise
        if not inserted:
            await self._release(connection)
            return await self.get_run(run_id), None
        row = await self.get_run(run_id)
        return row, asyncio.create_task(self._run(connection, run_id, force))

    async def _release(self, connection: asyncpg.Connection) -> None:
        try:
            await connection.execute("SELECT pg_advisory_unlock_all()")
        finally:
            await self.pool.release(connection)

    async def _run(self, connection: asyncpg.Connection, run_id: uuid.UUID, force: bool) -> None:
        state, error, counts = "succeeded", "", Counts()
        try:
            policy = replace(self.policy, threshold=1) if force else self.policy
            counts = await run_once(self.interactions, self.knowledge, self.teacher, policy, str(run_id),
                                    on_fixes=lambda fixes: self._record_fixes(connection, run_id, fixes),
                                    judge=self.judge,
                                    on_progress=lambda so_far: self._record_progress(connection, run_id, so_far),
                                    hold=lambda fix_ids: self._hold(connection, fix_ids))
            if counts.gated and not force:
                state = "skipped_below_threshold"
        except Exception as failure:  # noqa: BLE001 - recorded on the run
            state, error = "failed", f"{type(failure).__name__}: {failure}"[:1000]
            _log.exception("run failed", extra={"run_id": str(run_id)})
        finally:
            try:
                await connection.execute(
                    "UPDATE trainer_runs SET state = $2, counts = $3, error_message = $4, end_time = now() "
                    "WHERE run_id = $1", run_id, state, asdict(counts), error)
            finally:
                # Even when the row cannot be updated the lock must go, or no run starts
                # again in this process; the next run marks this one abandoned.
                await self._release(connection)

    @staticmethod
    async def _record_progress(connection: asyncpg.Connection, run_id: uuid.UUID, counts: Counts) -> None:
        """The counts so far, for GetRun while the run is still running."""
        await connection.execute("UPDATE trainer_runs SET counts = $2 WHERE run_id = $1 AND state = 'running'",
                                 run_id, asdict(counts))

    @staticmethod
    @contextlib.asynccontextmanager
    async def _hold(connection: asyncpg.Connection, fix_ids: list[str]) -> AsyncIterator[dict[str, tuple[str, str]]]:
        """The states and answers of the fixes a page grows, with their rows locked
        until the page is recorded and marked: a review (which locks its fix's row
        for its whole course) either finished before, and the page writes its
        verdict and edited answer, or waits."""
        async with connection.transaction():
            rows = await connection.fetch(
                "SELECT fix_id, state, answer FROM trainer_fixes WHERE fix_id = ANY($1::text[]) "
                "ORDER BY fix_id FOR UPDATE", fix_ids)
            yield {row["fix_id"]: (row["state"], row["answer"]) for row in rows}

    @staticmethod
    async def _record_fixes(connection: asyncpg.Connection, run_id: uuid.UUID, fixes: list[Fix]) -> None:
        """New fixes are recorded whole; a fix on record gains only questions and
        interactions (its state and answer are the reviewer's)."""
        await connection.executemany(
            f"""INSERT INTO trainer_fixes ({FIX_COLUMNS.split(', reviewer')[0]})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                ON CONFLICT (fix_id) DO UPDATE SET questions = EXCLUDED.questions,
                    interaction_ids = EXCLUDED.interaction_ids""",
            [(f.entry.entry_id, run_id, list(f.entry.questions), f.entry.content, f.interaction_ids,
              "published" if f.entry.status == bpb.ENTRY_STATUS_PUBLISHED else "proposed",
              f.entry.provenance.teacher_model, f.entry.provenance.prompt_version) for f in fixes])

    async def get_fix(self, fix_id: str) -> asyncpg.Record:
        async with database_errors("trainer"):
            row = await self.pool.fetchrow(f"SELECT {FIX_COLUMNS} FROM trainer_fixes WHERE fix_id = $1", fix_id)
        if row is None:
            raise NotFound(f"fix {fix_id!r} does not exist")
        return row

    async def review(self, fix_id: str, action: str, reviewer: str, note: str, answer: str = "") -> asyncpg.Record:
        """approve (proposed -> published), reject (proposed -> rejected) or
        rollback (published -> rolled_back). The index and the interactions
        change first; the fix's state last, so a retried action completes. The
        fix's row stays locked throughout: two reviews of one fix (an approve and
        a reject at once) run one after the other, and the second finds the
        first's state; a running trainer page that grows the fix waits too."""
        needed = "published" if action == "rollback" else "proposed"
        async with database_errors("trainer"), self.pool.acquire() as connection, connection.transaction():
            fix = await connection.fetchrow(
                f"SELECT {FIX_COLUMNS} FROM trainer_fixes WHERE fix_id = $1 FOR UPDATE", fix_id)
            if fix is None:
                raise NotFound(f"fix {fix_id!r} does not exist")
            if fix["state"] != needed:
                verb = {"approve": "approved", "reject": "rejected", "rollback": "rolled back"}[action]
                raise FailedPrecondition(f"fix {fix_id!r} is {fix['state']}; only a {needed} fix can be {verb}")
            if action == "approve":
                entry = bpb.KnowledgeEntry(entry_id=fix_id, status=bpb.ENTRY_STATUS_PUBLISHED, content=answer)
                paths = ["status", "content"] if answer else ["status"]
                await self.knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=entry, update_mask=FieldMask(paths=paths)))
                outcome, state = ipb.TRAINING_OUTCOME_FIXED, "published"
            else:
                await self.knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id=fix_id, allow_missing=True))
                outcome, state = ((ipb.TRAINING_OUTCOME_REJECTED, "rejected") if action == "reject"
                                  else (ipb.TRAINING_OUTCOME_ROLLED_BACK, "rolled_back"))
            await self.interactions.MarkProcessed(ipb.MarkProcessedRequest(marks=[
                ipb.ProcessedMark(interaction_id=i, outcome=outcome, knowledge_entry_id=fix_id,
                                  training_run_id=str(fix["run_id"])) for i in fix["interaction_ids"]]))
            return await connection.fetchrow(
                f"""UPDATE trainer_fixes SET state = $2, reviewer = $3, review_note = $4, review_time = now(),
                           answer = CASE WHEN $5 = '' THEN answer ELSE $5 END
                     WHERE fix_id = $1 AND state = $6 RETURNING {FIX_COLUMNS}""",
                fix_id, state, reviewer, note, answer, needed)

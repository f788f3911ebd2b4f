"""RPC handlers of TrainerService (admin): validate, call `Trainer`, convert."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg

from mend.trainer.v1 import trainer_service_pb2 as pb
from mend.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from mendkit import validation
from mendkit.database import database_errors
from mendkit.errors import InvalidArgument
from mendkit.page_tokens import PageTokens
from mendkit.timestamps import to_timestamp
from trainer.runs import FIX_COLUMNS, RUN_COLUMNS, Trainer

_RUN_STATE = {pb.RUN_STATE_RUNNING: "running", pb.RUN_STATE_SUCCEEDED: "succeeded", pb.RUN_STATE_FAILED: "failed",
              pb.RUN_STATE_SKIPPED_BELOW_THRESHOLD: "skipped_below_threshold"}
_FIX_STATE = {pb.FIX_STATE_PROPOSED: "proposed", pb.FIX_STATE_PUBLISHED: "published",
              pb.FIX_STATE_REJECTED: "rejected", pb.FIX_STATE_ROLLED_BACK: "rolled_back"}
_RUN_STATE_FROM = {v: k for k, v in _RUN_STATE.items()}
_FIX_STATE_FROM = {v: k for k, v in _FIX_STATE.items()}
MAX_TEXT = 2_000


def run_message(row: asyncpg.Record) -> pb.Run:
    counts = row["counts"]
    return pb.Run(
        run_id=str(row["run_id"]), state=_RUN_STATE_FROM[row["state"]],
        trigger=pb.RUN_TRIGGER_SCHEDULE if row["trigger"] == "schedule" else pb.RUN_TRIGGER_MANUAL,
        forced=row["forced"],
        publish_policy=pb.PUBLISH_POLICY_AUTO if row["publish_policy"] == "auto" else pb.PUBLISH_POLICY_REVIEW,
        feedback_threshold=row["feedback_threshold"], start_time=to_timestamp(row["start_time"]),
        end_time=to_timestamp(row["end_time"]), counts=pb.RunCounts(**counts), error_message=row["error_message"])


def fix_message(row: asyncpg.Record) -> pb.Fix:
    return pb.Fix(
        fix_id=row["fix_id"], run_id=str(row["run_id"]), entry_id=row["fix_id"], question=row["questions"][0],
        questions=row["questions"], answer=row["answer"], interaction_ids=row["interaction_ids"],
        state=_FIX_STATE_FROM[row["state"]], teacher_model=row["teacher_model"],
        prompt_version=row["prompt_version"], create_time=to_timestamp(row["create_time"]),
        reviewer=row["reviewer"], review_time=to_timestamp(row["review_time"]), review_note=row["review_note"])


def _fix_id(value: str) -> str:
    return validation.text("fix_id", value, max_chars=128, required=True)


def _signed(request: pb.ApproveFixRequest | pb.RejectFixRequest | pb.RollbackFixRequest) -> tuple[str, str]:
    """Who reviews (required: every fix's history names a person) and why."""
    return (validation.text("reviewer", request.reviewer, max_chars=128, required=True),
            validation.text("note", request.note, max_chars=MAX_TEXT))


class TrainerService(pb_grpc.TrainerServiceServicer):
    def __init__(self, trainer: Trainer, page_tokens: PageTokens) -> None:
        self._trainer = trainer
        self._tokens = page_tokens
        self.background: set[asyncio.Task] = set()

    async def StartRun(self, request: pb.StartRunRequest, context: object) -> pb.StartRunResponse:
        run_id = validation.uuid_field("request_id", request.request_id, required=False) or uuid.uuid4()
        row, task = await self._trainer.start(run_id, "manual", request.force)
        if task is not None:
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return pb.StartRunResponse(run=run_message(row))

    async def GetRun(self, request: pb.GetRunRequest, context: object) -> pb.GetRunResponse:
        return pb.GetRunResponse(run=run_message(await self._trainer.get_run(
            validation.uuid_field("run_id", request.run_id))))

    async def _page(self, table: str, columns: str, key: tuple[str, str, str], filters: dict[str, object],
                    size: int, token: str) -> tuple[list[asyncpg.Record], str]:
        """Newest first; `key` is (time column, id column, id type) for the keyset cursor."""
        when, ident, ident_type = key
        where, params = [], []
        for column, value in filters.items():
            if value:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        bound = [str(v) for v in filters.values()]
        after = self._tokens.after(token, bound, lambda cursor: [
            datetime.fromisoformat(cursor[0]), uuid.UUID(cursor[1]) if ident_type == "uuid" else str(cursor[1])])
        if after is not None:
            params += after
            where.append(f"({when}, {ident}) < (${len(params) - 1}, ${len(params)})")
        sql = f"SELECT {columns} FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
        async with database_errors("trainer"):
            rows = await self._trainer.pool.fetch(f"{sql} ORDER BY {when} DESC, {ident} DESC LIMIT {size + 1}",
                                                  *params)
        return self._tokens.page(rows, size, bound, lambda last: [last[when].isoformat(), str(last[ident])])

    async def ListRuns(self, request: pb.ListRunsRequest, context: object) -> pb.ListRunsResponse:
        size = validation.page_size("page_size", request.page_size)
        validation.enum_value("state", request.state, pb.RunState, allow_unspecified=True)
        rows, token = await self._page("trainer_runs", RUN_COLUMNS, ("start_time", "run_id", "uuid"),
                                       {"state": _RUN_STATE.get(request.state, "")}, size, request.page_token)
        return pb.ListRunsResponse(runs=[run_message(r) for r in rows], next_page_token=token)

    async def GetFix(self, request: pb.GetFixRequest, context: object) -> pb.GetFixResponse:
        return pb.GetFixResponse(fix=fix_message(await self._trainer.get_fix(_fix_id(request.fix_id))))

    async def ListFixes(self, request: pb.ListFixesRequest, context: object) -> pb.ListFixesResponse:
        size = validation.page_size("page_size", request.page_size)
        validation.enum_value("state", request.state, pb.FixState, allow_unspecified=True)
        run_id = validation.uuid_field("run_id", request.run_id, required=False)
        rows, token = await self._page("trainer_fixes", FIX_COLUMNS, ("create_time", "fix_id", "text"),
                                       {"state": _FIX_STATE.get(request.state, ""), "run_id": run_id},
                                       size, request.page_token)
        return pb.ListFixesResponse(fixes=[fix_message(r) for r in rows], next_page_token=token)

    async def ApproveFix(self, request: pb.ApproveFixRequest, context: object) -> pb.ApproveFixResponse:
        answer = validation.text("answer", request.answer, max_chars=validation.MAX_ANSWER_CHARS)
        if answer and not answer.strip():  # given, it replaces the answer: 1 to 32,000 characters, not blank
            raise InvalidArgument("answer", "must not be blank when given (leave it empty to keep the answer)")
        row = await self._trainer.review(_fix_id(request.fix_id), "approve", *_signed(request), answer)
        return pb.ApproveFixResponse(fix=fix_message(row))

    async def RejectFix(self, request: pb.RejectFixRequest, context: object) -> pb.RejectFixResponse:
        row = await self._trainer.review(_fix_id(request.fix_id), "reject", *_signed(request))
        return pb.RejectFixResponse(fix=fix_message(row))

    async def RollbackFix(self, request: pb.RollbackFixRequest, context: object) -> pb.RollbackFixResponse:
        row = await self._trainer.review(_fix_id(request.fix_id), "rollback", *_signed(request))
        return pb.RollbackFixResponse(fix=fix_message(row))

"""RPC handlers of TrainerService (admin): validate, call `Trainer`, convert its
results to messages (run_message and fix_message, the one place that does)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime

import grpc

from mend.trainer.v1 import trainer_service_pb2 as pb
from mend.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from mendkit import access, validation
from mendkit.errors import InvalidArgument
from mendkit.page_tokens import PageTokens
from mendkit.timestamps import to_timestamp
from trainer.regressions import Evaluation, Regression
from trainer.repository import FixRecord, RunRecord
from trainer.runs import Trainer

_RUN_STATE = {pb.RUN_STATE_RUNNING: "running", pb.RUN_STATE_SUCCEEDED: "succeeded", pb.RUN_STATE_FAILED: "failed",
              pb.RUN_STATE_SKIPPED_BELOW_THRESHOLD: "skipped_below_threshold"}
_FIX_STATE = {pb.FIX_STATE_PROPOSED: "proposed", pb.FIX_STATE_PUBLISHED: "published",
              pb.FIX_STATE_REJECTED: "rejected", pb.FIX_STATE_ROLLED_BACK: "rolled_back"}
_FIX_KIND = {"new_entry": pb.FIX_KIND_NEW_ENTRY, "add_phrasings": pb.FIX_KIND_ADD_PHRASINGS,
             "edit_answer": pb.FIX_KIND_EDIT_ANSWER}
_RUN_STATE_FROM = {v: k for k, v in _RUN_STATE.items()}
_FIX_STATE_FROM = {v: k for k, v in _FIX_STATE.items()}
MAX_TEXT = 2_000
_ENTRY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Every RPC is for people (admin's token; checked by the kit before a handler runs):
# no service calls the trainer.
ACCESS = {name: access.ADMIN_ONLY for name in pb.DESCRIPTOR.services_by_name["TrainerService"].methods_by_name}


def run_message(run: RunRecord) -> pb.Run:
    return pb.Run(
        run_id=str(run.run_id), state=_RUN_STATE_FROM[run.state],
        trigger=pb.RUN_TRIGGER_SCHEDULE if run.trigger == "schedule" else pb.RUN_TRIGGER_MANUAL,
        forced=run.forced,
        publish_policy=pb.PUBLISH_POLICY_AUTO if run.publish_policy == "auto" else pb.PUBLISH_POLICY_REVIEW,
        feedback_threshold=run.feedback_threshold, start_time=to_timestamp(run.start_time),
        end_time=to_timestamp(run.end_time), counts=pb.RunCounts(**run.counts), error_message=run.error_message,
        evaluation_before=evaluation_message(run.evaluation_before),
        evaluation_after=evaluation_message(run.evaluation_after))


def evaluation_message(evaluation: Evaluation | dict | None) -> pb.Evaluation | None:
    if evaluation is None:
        return None
    if isinstance(evaluation, dict):
        evaluation = Evaluation.from_record(evaluation)
    return pb.Evaluation(questions=evaluation.questions, liked=evaluation.liked, right=evaluation.right,
                         accuracy=evaluation.accuracy, wrong=[regression_message(r) for r in evaluation.wrong],
                         evaluate_time=to_timestamp(evaluation.evaluate_time))


def regression_message(regression: Regression | dict) -> pb.Regression:
    fields = regression if isinstance(regression, dict) else vars(regression)
    return pb.Regression(**fields)


def fix_message(fix: FixRecord) -> pb.Fix:
    return pb.Fix(
        fix_id=fix.fix_id, run_id=str(fix.run_id), entry_id=fix.entry_id or fix.fix_id, question=fix.questions[0],
        questions=fix.questions, answer=fix.answer, interaction_ids=fix.interaction_ids,
        state=_FIX_STATE_FROM[fix.state], teacher_model=fix.teacher_model,
        prompt_version=fix.prompt_version, create_time=to_timestamp(fix.create_time),
        reviewer=fix.reviewer, review_time=to_timestamp(fix.review_time), review_note=fix.review_note,
        kind=_FIX_KIND[fix.kind], added_questions=fix.added_questions, previous_answer=fix.previous_answer,
        regressions=[regression_message(r) for r in fix.regressions], withheld_questions=fix.withheld_questions,
        nearby_entries=[pb.NearbyEntry(**nearby) for nearby in fix.nearby])


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
        self.background: set[asyncio.Task[None]] = set()

    async def StartRun(self, request: pb.StartRunRequest, context: grpc.aio.ServicerContext) -> pb.StartRunResponse:
        run_id = validation.uuid_field("request_id", request.request_id, required=False) or uuid.uuid4()
        run, task = await self._trainer.start(run_id, "manual", request.force)
        if task is not None:
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return pb.StartRunResponse(run=run_message(run))

    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.GetRunResponse:
        return pb.GetRunResponse(run=run_message(await self._trainer.get_run(
            validation.uuid_field("run_id", request.run_id))))

    async def ListRuns(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        size = validation.page_size("page_size", request.page_size)
        validation.enum_value("state", request.state, pb.RunState, allow_unspecified=True)
        state = _RUN_STATE.get(request.state, "")
        filters = [state]  # a page token is bound to them
        after = self._tokens.after(request.page_token, filters, lambda cursor: (
            datetime.fromisoformat(cursor[0]), uuid.UUID(cursor[1])))
        runs, token = self._tokens.page(await self._trainer.list_runs(state, after, size + 1), size, filters,
                                        lambda last: [last.start_time.isoformat(), str(last.run_id)])
        return pb.ListRunsResponse(runs=[run_message(run) for run in runs], next_page_token=token)

    async def GetFix(self, request: pb.GetFixRequest, context: grpc.aio.ServicerContext) -> pb.GetFixResponse:
        return pb.GetFixResponse(fix=fix_message(await self._trainer.get_fix(_fix_id(request.fix_id))))

    async def ListFixes(self, request: pb.ListFixesRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListFixesResponse:
        size = validation.page_size("page_size", request.page_size)
        validation.enum_value("state", request.state, pb.FixState, allow_unspecified=True)
        state = _FIX_STATE.get(request.state, "")
        run_id = validation.uuid_field("run_id", request.run_id, required=False)
        filters = [state, str(run_id)]  # a page token is bound to them
        after = self._tokens.after(request.page_token, filters, lambda cursor: (
            datetime.fromisoformat(cursor[0]), str(cursor[1])))
        fixes, token = self._tokens.page(await self._trainer.list_fixes(state, run_id, after, size + 1), size,
                                         filters, lambda last: [last.create_time.isoformat(), last.fix_id])
        return pb.ListFixesResponse(fixes=[fix_message(fix) for fix in fixes], next_page_token=token)

    async def ApproveFix(self, request: pb.ApproveFixRequest,
                         context: grpc.aio.ServicerContext) -> pb.ApproveFixResponse:
        answer = validation.text("answer", request.answer, max_chars=validation.MAX_ANSWER_CHARS)
        if answer and not answer.strip():  # given, it replaces the answer: 1 to 32,000 characters, not blank
            raise InvalidArgument("answer", "must not be blank when given (leave it empty to keep the answer)")
        into = request.into_entry_id
        if into and not _ENTRY_ID.match(into):  # the bot's rule for an entry id
            raise InvalidArgument("into_entry_id", "must be 1 to 128 letters, digits, '-', '_', '.' or ':'")
        if into and answer:
            raise InvalidArgument("answer", "must be empty with into_entry_id: the entry keeps its own answer")
        fix = await self._trainer.review(_fix_id(request.fix_id), "approve", *_signed(request), answer,
                                         allow_regressions=request.allow_regressions, into=into)
        return pb.ApproveFixResponse(fix=fix_message(fix))

    async def EvaluateKnowledge(self, request: pb.EvaluateKnowledgeRequest,
                                context: grpc.aio.ServicerContext) -> pb.EvaluateKnowledgeResponse:
        return pb.EvaluateKnowledgeResponse(evaluation=evaluation_message(await self._trainer.evaluate()))

    async def RejectFix(self, request: pb.RejectFixRequest, context: grpc.aio.ServicerContext) -> pb.RejectFixResponse:
        fix = await self._trainer.review(_fix_id(request.fix_id), "reject", *_signed(request))
        return pb.RejectFixResponse(fix=fix_message(fix))

    async def RollbackFix(self, request: pb.RollbackFixRequest,
                          context: grpc.aio.ServicerContext) -> pb.RollbackFixResponse:
        fix = await self._trainer.review(_fix_id(request.fix_id), "rollback", *_signed(request))
        return pb.RollbackFixResponse(fix=fix_message(fix))

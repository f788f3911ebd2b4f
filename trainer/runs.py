"""Runs and fixes on record: starting a run (one at a time, under the run
lock), and the review actions that publish, reject or roll back a fix. The SQL
is trainer/repository.py's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Literal, cast

import asyncpg
import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.errors import FailedPrecondition, InvalidArgument, NotFound
from mendmodels.chat.base import ChatModel
from trainer import changes, regressions, repository, writes
from trainer.changes import ADD_PHRASINGS, EDIT_ANSWER, Change
from trainer.judge import Judge
from trainer.loop import Counts, Policy, run_once
from trainer.repository import RUN_LOCK, FixRecord, RunRecord

# RUN_LOCK: the key of the lock that keeps runs one at a time, the rule this module enforces.
__all__ = ["RUN_LOCK", "Action", "Trainer"]

_log = logging.getLogger("trainer.runs")
Action = Literal["approve", "reject", "rollback"]
_DONE = {"approve": "approved", "reject": "rejected", "rollback": "rolled back"}
# Revisions read at a time when looking for the one a stopped approval into an entry wrote.
REVISIONS_PAGE = 100


def failed_message(counts: Counts, failures: list[str]) -> str:
    """What a run in which questions failed says about it (GetRun, the Job's output)."""
    cause = f"; first failure: {failures[0]}" if failures else ""
    return (f"{counts.failed} of {counts.read} interactions failed and stay in the queue for the next run"
            f"{cause}")[:1000]


class _RunLedger:
    """A run's changes to existing entries, in the trainer's table, on the run's connection
    (inside the page's transaction when the page saves them)."""

    def __init__(self, connection: asyncpg.Connection, run_id: uuid.UUID) -> None:
        self.connection = connection
        self.run_id = run_id

    async def pending(self, entry_ids: Sequence[str], run_id: str) -> list[Change]:
        return await repository.pending_changes(self.connection, list(entry_ids), self.run_id)

    async def save(self, changed: Sequence[Change]) -> None:
        await repository.record_changes(self.connection, list(changed))

    async def turned_down(self, entry_ids: Sequence[str]) -> dict[str, set[str]]:
        return await repository.turned_down_phrasings(self.connection, sorted(set(entry_ids)))


class Trainer:
    def __init__(self, pool: asyncpg.Pool, interactions: ipb_grpc.InteractionsServiceAsyncStub,
                 knowledge: bpb_grpc.KnowledgeServiceAsyncStub, teacher: ChatModel, policy: Policy,
                 judge: Judge | None = None) -> None:
        self.pool = pool
        self.interactions = interactions
        self.knowledge = knowledge
        self.teacher = teacher
        self.policy = policy
        self.judge = judge

    async def get_run(self, run_id: uuid.UUID) -> RunRecord:
        run = await repository.get_run(self.pool, run_id)
        if run is None:
            raise NotFound(f"run {run_id} does not exist")
        return run

    async def list_runs(self, state: str, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[RunRecord]:
        return await repository.list_runs(self.pool, state, after, limit)

    async def start(self, run_id: uuid.UUID, trigger: Literal["schedule", "manual"],
                    force: bool) -> tuple[RunRecord, asyncio.Task[None] | None]:
        """Records a run and starts it in the background (None: it ended at once).
        A repeated run_id returns that run (also when two starts with it race);
        another run in progress is FAILED_PRECONDITION."""
        existing = await repository.get_run(self.pool, run_id)
        if existing is not None:
            return existing, None
        async with AsyncExitStack() as stack:
            connection = await stack.enter_async_context(repository.run_connection(self.pool))
            try:
                run = await repository.insert_run(connection, run_id, trigger, force, self.policy.publish,
                                                  self.policy.threshold)
            except repository.RunLockTaken:
                raise FailedPrecondition("another trainer run is in progress; try again when it has finished") from None
            if run is None:  # a start racing this one with the same run_id recorded it first
                await stack.aclose()  # the connection goes back before the run is read on another
                return await self.get_run(run_id), None
            # Started: the connection, and with it the lock, go to the run's task, which lets go when the run ends.
            held = stack.pop_all()
        return run, asyncio.create_task(self._run(held, connection, run_id, force))

    async def _run(self, held: AsyncExitStack, connection: asyncpg.Connection, run_id: uuid.UUID, force: bool) -> None:
        # Even when the row cannot be updated at the end the lock must go, or no run
        # starts again in this process; the next run marks this one abandoned.
        async with held:
            state, error, counts = "succeeded", "", Counts()
            failures: list[str] = []
            try:
                policy = replace(self.policy, threshold=1) if force else self.policy
                # Every entry the run writes names it in its revision (who wrote it, and why).
                knowledge = cast("bpb_grpc.KnowledgeServiceAsyncStub", writes.StampedKnowledge(
                    self.knowledge, bpb.RevisionNote(
                        reason=f"written by trainer run {run_id} (publish policy {policy.publish})",
                        training_run_id=str(run_id))))
                counts = await run_once(self.interactions, knowledge, self.teacher, policy, str(run_id),
                                        on_fixes=partial(repository.record_fixes, connection, run_id),
                                        judge=self.judge,
                                        on_progress=partial(repository.record_progress, connection, run_id),
                                        hold=partial(repository.hold_fixes, connection), failures=failures,
                                        ledger=_RunLedger(connection, run_id),
                                        on_evaluation=partial(repository.record_evaluation, connection, run_id))
                if counts.gated and not force:
                    state = "skipped_below_threshold"
                elif counts.failed:
                    # The fixes of the other questions are written; the failed ones stay
                    # unprocessed for the next run. The run still failed at its job.
                    state, error = "failed", failed_message(counts, failures)
            except asyncio.CancelledError:
                # The process is stopping: not a success; the next run would call it abandoned anyway.
                state, error = "failed", "cancelled: the trainer stopped during the run"
                raise
            except Exception as failure:  # noqa: BLE001 - recorded on the run
                state, error = "failed", f"{type(failure).__name__}: {failure}"[:1000]
                _log.exception("run failed", extra={"run_id": str(run_id)})
            finally:
                await repository.finish_run(connection, run_id, state, counts, error)

    async def get_fix(self, fix_id: str) -> FixRecord:
        fix = await repository.get_fix(self.pool, fix_id)
        if fix is None:
            raise NotFound(f"fix {fix_id!r} does not exist")
        return fix

    async def list_fixes(self, state: str, run_id: uuid.UUID | None, after: tuple[datetime, str] | None,
                         limit: int) -> list[FixRecord]:
        return await repository.list_fixes(self.pool, state, run_id, after, limit)

    async def evaluate(self) -> regressions.Evaluation:
        """The regression set replayed against the published knowledge now."""
        cases = await regressions.regression_set(self.interactions, self.knowledge)
        return await regressions.evaluate(self.knowledge, cases)

    async def _gate(self, fix_id: str, allow_regressions: bool, into: str = "") -> None:
        """Before an approval: the fix replayed again against the regression set
        as it is now (it may have grown since the run wrote the fix); what it
        would take goes on record, and without `allow_regressions` a fix that
        would take any right answer is refused. A new-entry fix approved `into`
        an existing entry is replayed as that entry's added phrasings."""
        fix = await repository.get_fix(self.pool, fix_id)
        if fix is None or fix.state != "proposed" or fix.kind == EDIT_ANSWER:  # review() says why, or no keys change
            return
        current = await self._entry(into or fix.entry_id)
        if current is None:
            return  # review() refuses it
        if fix.kind == ADD_PHRASINGS or into:
            adds = changes.missing(current, _merged_questions(fix) if into else
                                   [q for q in fix.questions if q not in set(fix.withheld_questions)])
            if not adds:
                return
            current = changes.with_phrasings(current, adds)
        cases = await regressions.regression_set(self.interactions, self.knowledge)
        results = await regressions.replay(self.knowledge, cases, [current])
        verdict = regressions.gate(cases, results, [current], adding={}).get(current.entry_id)
        found = verdict.regressions if verdict is not None else []
        await repository.record_regressions(self.pool, fix_id, found)
        if found and not allow_regressions:
            moved_from = sorted({regression.entry_id for regression in found})
            first = await repository.proposed_phrasings(self.pool, moved_from)
            hint = (f"Approve {', '.join(first[:5])} first (phrasings proposed for those entries, which may keep "
                    "their answers), reject it, " if first else "Reject it, ")
            raise FailedPrecondition(
                f"fix {fix_id!r} would take {len(found)} right answer(s) from {len(moved_from)} other entr"
                f"{'y' if len(moved_from) == 1 else 'ies'} ({', '.join(moved_from[:5])}); GetFix lists them as "
                f"`regressions`. {hint}or approve with allow_regressions to publish it anyway")

    async def review(self, fix_id: str, action: Action, reviewer: str, note: str, answer: str = "",
                     allow_regressions: bool = False, into: str = "") -> FixRecord:
        """approve (proposed -> published), reject (proposed -> rejected) or
        rollback (published -> rolled_back), each as the fix's kind needs
        (`_apply`, `_undo`). Approving a new-entry fix `into` an existing entry
        publishes its questions as that entry's phrasings instead (`_merge`): the
        fix becomes ADD_PHRASINGS of it. The index and the interactions change first; the
        fix's state last, so a retried action completes. The fix's row stays
        locked throughout: two reviews of one fix (an approve and a reject at
        once) run one after the other, and the second finds the first's state;
        a running trainer page that grows the fix waits too. An approval into an
        entry records that entry first (`_claim`), and a failed one takes it off
        again unless it wrote there (`_release`)."""
        if action == "approve":
            # The cheap refusals first (review() makes them again under the lock), then the replay.
            found = await repository.get_fix(self.pool, fix_id)
            if found is not None and answer and found.kind == ADD_PHRASINGS:
                raise InvalidArgument("answer", "must be empty for an ADD_PHRASINGS fix: it adds phrasings to an "
                                                "entry and has no answer of its own")
            merging = found is not None and bool(into) and found.state == "proposed"
            if merging and found is not None and found.into_entry_id != into:  # a retry checks under the lock
                await self._merge_target(found, into)
            await self._gate(fix_id, allow_regressions, into)
            if merging:
                await self._claim(fix_id, into)
            try:
                return await self._review(fix_id, action, reviewer, note, answer, into)
            except BaseException:
                if merging:
                    with contextlib.suppress(Exception):  # the error that matters is the one being raised
                        await self._release(fix_id, into)
                raise
        return await self._review(fix_id, action, reviewer, note, answer, into)

    async def _review(self, fix_id: str, action: Action, reviewer: str, note: str, answer: str,
                      into: str) -> FixRecord:
        needed = "published" if action == "rollback" else "proposed"
        async with repository.transaction(self.pool) as connection:
            fix = await repository.lock_fix(connection, fix_id)
            if fix is None:
                raise NotFound(f"fix {fix_id!r} does not exist")
            if fix.state != needed:
                raise FailedPrecondition(f"fix {fix_id!r} is {fix.state}; only a {needed} fix can be {_DONE[action]}")
            if answer and fix.kind == ADD_PHRASINGS:
                raise InvalidArgument("answer", "must be empty for an ADD_PHRASINGS fix: it adds phrasings to an "
                                                "entry and has no answer of its own")
            landed = await self._merged(fix) if fix.kind == changes.NEW_ENTRY and fix.into_entry_id else None
            if landed is not None and fix.into_entry_id != into and await self._entry(fix.into_entry_id) is not None:
                raise FailedPrecondition(
                    f"fix {fix_id!r} was being approved into entry {fix.into_entry_id!r} when that approval "
                    "stopped half way (its questions are in that entry already); approve it into that entry "
                    "again (into_entry_id) to finish it, then roll it back if it should not stay")
            if into and fix.into_entry_id != into:
                raise FailedPrecondition(f"another approval of fix {fix_id!r}, into entry {fix.into_entry_id!r}, is "
                                         "under way; look at the fix again when it has finished")
            applied = None
            # Each change to the index names the fix, its run and the reviewer in the entry's revision.
            signed = bpb.RevisionNote(author=reviewer, reason=f"{_DONE[action]} fix {fix_id}"
                                      + (f": {note}" if note else ""), fix_id=fix_id, training_run_id=str(fix.run_id))
            if action == "approve" and into:
                target = await self._merge_target(fix, into, finishing=landed is not None)
                applied = await self._merge(fix, target, signed, landed)
                answer = target.content  # an ADD_PHRASINGS fix shows its entry's answer
                outcome, state = ipb.TRAINING_OUTCOME_FIXED, "published"
            elif action == "approve":
                applied = await self._apply(fix, answer, signed)
                outcome, state = ipb.TRAINING_OUTCOME_FIXED, "published"
            else:
                if action == "rollback":
                    await self._undo(fix, signed)
                elif fix.kind == changes.NEW_ENTRY:  # a proposed change to an existing entry was never applied
                    await self.knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id=fix_id, allow_missing=True,
                                                                            note=signed))
                outcome, state = ((ipb.TRAINING_OUTCOME_REJECTED, "rejected") if action == "reject"
                                  else (ipb.TRAINING_OUTCOME_ROLLED_BACK, "rolled_back"))
            await self.interactions.MarkProcessed(ipb.MarkProcessedRequest(marks=[
                ipb.ProcessedMark(interaction_id=i, outcome=outcome, knowledge_entry_id=into or fix.entry_id,
                                  training_run_id=str(fix.run_id)) for i in fix.interaction_ids]))
            return await repository.record_review(connection, fix_id, was=needed, state=state, reviewer=reviewer,
                                                  note=note, answer=answer, applied=applied, into=into)

    async def _merge_target(self, fix: FixRecord, into: str, finishing: bool = False) -> bpb.KnowledgeEntry:
        """The entry a new-entry fix is approved into, as stored now; refuses
        one that cannot take the fix's questions (unless `finishing` an approval
        that already wrote them: it only needs the entry to exist)."""
        if fix.kind != changes.NEW_ENTRY:
            raise InvalidArgument("into_entry_id", f"only a NEW_ENTRY fix can be approved into an existing entry; "
                                                   f"fix {fix.fix_id!r} is {fix.kind.upper()}")
        if into == fix.fix_id:
            raise InvalidArgument("into_entry_id", "names the fix's own entry; leave it empty to publish the entry")
        target = await self._entry(into)
        if target is None:
            raise NotFound(f"entry {into!r} does not exist")
        if finishing:
            return target
        if target.status != bpb.ENTRY_STATUS_PUBLISHED or target.kind != bpb.ENTRY_KIND_QA:
            raise FailedPrecondition(f"entry {into!r} is not a published Q&A entry; only one can take fix "
                                     f"{fix.fix_id!r}'s questions as phrasings")
        return target

    async def _claim(self, fix_id: str, into: str) -> None:
        """Records the approval's target before the index changes. A target on
        record from an approval that changed nothing (one running now, or one
        whose release failed) gives way; review() refuses the one running, and
        one that changed its entry must be finished first."""
        on_record = await repository.claim_into(self.pool, fix_id, into)
        if on_record and on_record != into:
            fix = await repository.get_fix(self.pool, fix_id)
            if fix is not None and await self._merged(fix) is None:
                await repository.claim_into(self.pool, fix_id, into, replace=True)

    async def _release(self, fix_id: str, into: str) -> None:
        """After an approval into `into` failed: its target leaves the record
        unless the approval changed that entry (then only it can finish)."""
        fix = await repository.get_fix(self.pool, fix_id)
        if fix is not None and fix.state == "proposed" and fix.into_entry_id == into and \
                await self._merged(fix) is None:
            await repository.release_into(self.pool, fix_id, into)

    async def _merged(self, fix: FixRecord) -> list[str] | None:
        """What an approval of `fix` into `fix.into_entry_id` already wrote: the
        phrasings it added to that entry, read from the revision it signed (the
        entry's questions less those of the revision before), or None when it
        wrote nothing there yet (or the entry is gone). So a retried approval
        records exactly what the first one wrote, and rolling the fix back
        removes exactly that."""
        signed: bpb.KnowledgeRevision | None = None
        token = ""
        while True:
            try:
                page = await self.knowledge.ListRevisions(bpb.ListRevisionsRequest(
                    entry_id=fix.into_entry_id, page_size=REVISIONS_PAGE, page_token=token))
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                return None
            for revision in page.revisions:  # newest first: the one before the signed one follows it
                if signed is not None:
                    before = set(revision.entry.questions)
                    return [q for q in signed.entry.questions if q not in before]
                if _signed(revision, fix.fix_id, "approve"):
                    signed = revision
            token = page.next_page_token
            if not token:
                return None if signed is None else list(signed.entry.questions)

    async def _merge(self, fix: FixRecord, target: bpb.KnowledgeEntry, note: bpb.RevisionNote,
                     landed: list[str] | None) -> tuple[list[str], str]:
        """Publishes a new-entry fix's questions as phrasings of `target` and
        takes its proposed entry out of the index; returns the phrasings added.
        Every question of the fix goes, those the run's gate withheld from the
        new entry too: as the target's phrasings the approval's gate judged them
        again. A retry after a first attempt wrote the target (`landed`: what it
        added) writes it no more."""
        added = landed
        if added is None:
            questions = _merged_questions(fix)
            added, wanted = changes.missing(target, questions), changes.missing(target, questions, limit=False)
            if len(added) < len(wanted):
                raise FailedPrecondition(
                    f"entry {target.entry_id!r} has room for {len(added)} more phrasing(s) and fix {fix.fix_id!r} "
                    f"brings {len(wanted)}; remove some of its phrasings first, or approve the fix as a new entry")
            if added:
                await self._write(target, changes.with_phrasings(target, added), "questions", note)
        await self.knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id=fix.fix_id, allow_missing=True, note=note))
        return added, ""

    async def _entry(self, entry_id: str) -> bpb.KnowledgeEntry | None:
        """The entry as stored now; None when it no longer exists."""
        try:
            return (await self.knowledge.GetEntry(bpb.GetEntryRequest(entry_id=entry_id))).entry
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def _write(self, current: bpb.KnowledgeEntry, changed: bpb.KnowledgeEntry, field: str,
                     note: bpb.RevisionNote) -> None:
        """Writes `field` of `changed` over the entry as read (`current`): an edit
        made in between is refused (FAILED_PRECONDITION naming it), never overwritten."""
        await self.knowledge.UpdateEntry(bpb.UpdateEntryRequest(
            entry=changed, update_mask=FieldMask(paths=[field]), expected_revision=current.revision, note=note))

    async def _apply(self, fix: FixRecord, answer: str, note: bpb.RevisionNote) -> tuple[list[str], str] | None:
        """Publishes the fix; for a change to an existing entry, returns what
        it did (the phrasings added, the answer replaced), for the record."""
        if fix.kind == changes.NEW_ENTRY:
            entry = bpb.KnowledgeEntry(entry_id=fix.fix_id, status=bpb.ENTRY_STATUS_PUBLISHED, content=answer)
            mask = FieldMask(paths=["status", "content"] if answer else ["status"])
            await self.knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=entry, update_mask=mask, note=note))
            return None
        current = await self._entry(fix.entry_id)
        if current is None:
            raise FailedPrecondition(f"entry {fix.entry_id!r}, which fix {fix.fix_id!r} changes, no longer exists; "
                                     "reject the fix")
        if fix.kind == ADD_PHRASINGS:
            added = changes.missing(current, [q for q in fix.questions if q not in set(fix.withheld_questions)])
            if added:
                await self._write(current, changes.with_phrasings(current, added), "questions", note)
            return added, ""
        await self._write(current, changes.with_answer(current, answer or fix.answer), "content", note)
        return [], current.content

    async def _undo(self, fix: FixRecord, note: bpb.RevisionNote) -> None:
        """Undoes exactly what the published fix did to the index, as a new
        revision of the entry signed with `note`:
        - a new entry is deleted (its history keeps every revision, edits made
          by hand since included: RestoreRevision brings one back);
        - a change to an existing entry whose approval is still the entry's
          newest revision restores the revision before it, exactly as it was;
        - one changed since keeps what changed since: only the fix's own
          phrasings leave, or its answer gives way to the one before it; an
          answer edited since refuses (FAILED_PRECONDITION), so that edit is
          never overwritten. So do changes a run published under `auto` (a run
          may change one entry for two fixes in one write) and fixes published
          before revisions were kept."""
        if fix.kind == changes.NEW_ENTRY:
            await self.knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id=fix.fix_id, allow_missing=True,
                                                                    note=note))
            return
        current = await self._entry(fix.entry_id)
        if current is None:  # the entry is gone, and with it what the fix changed
            return
        listed = (await self.knowledge.ListRevisions(bpb.ListRevisionsRequest(entry_id=fix.entry_id,
                                                                              page_size=1))).revisions
        newest = listed[0] if listed else None
        if newest is not None and _signed(newest, fix.fix_id, "rollback"):
            return  # a retried rollback whose change landed the first time: only the record is left
        if fix.kind == EDIT_ANSWER and current.content != fix.answer:
            raise FailedPrecondition(
                f"entry {fix.entry_id!r}'s answer changed since fix {fix.fix_id!r} published it, so rolling "
                "back would overwrite that change; edit the entry by hand (the fix's previous_answer holds "
                "the answer before it)")
        if previous := _revision_before(fix, current, newest):
            # The expected revision makes the bot refuse, naming the change, an edit that lands meanwhile.
            await self.knowledge.RestoreRevision(bpb.RestoreRevisionRequest(
                entry_id=fix.entry_id, revision=previous, expected_revision=current.revision, note=note))
        elif fix.kind == ADD_PHRASINGS:
            if set(fix.added_questions) & set(current.questions):
                await self._write(current, changes.without_phrasings(current, fix.added_questions, fix.fix_id),
                                  "questions", note)
        else:
            await self._write(current, changes.with_answer(current, fix.previous_answer), "content", note)



def _merged_questions(fix: FixRecord) -> list[str]:
    """The phrasings a new-entry fix brings to the entry it is approved into."""
    return list(dict.fromkeys([*fix.questions, *fix.withheld_questions]))


def _revision_before(fix: FixRecord, current: bpb.KnowledgeEntry, newest: bpb.KnowledgeRevision | None) -> int:
    """The entry's revision before the fix's approval, when that approval is
    still its newest revision (nothing changed since); else 0."""
    if newest is not None and newest.revision == current.revision > 1 and newest.note.fix_id == fix.fix_id:
        return current.revision - 1
    return 0


def _signed(revision: bpb.KnowledgeRevision, fix_id: str, action: Action) -> bool:
    """Whether `revision` is this fix's `action` (its note as `review` signs it):
    a fix's approval and its rollback both name the fix."""
    return revision.note.fix_id == fix_id and revision.note.reason.startswith(f"{_DONE[action]} fix {fix_id}")

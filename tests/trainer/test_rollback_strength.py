"""A rollback that restores the revision before its fix names the revision it
read: a person's edit landing between the trainer's read of the entry's
history and the restore is refused, never overwritten (trainer/runs.py
`_undo`); an approved new entry's revision names the reviewer and the fix.
Pinned where the mutation run (scripts/mutate, docs/testing.md) found
a change that no test noticed."""

from __future__ import annotations

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, expect_status
from tests.trainer.builders import kinds_of_fix
from trainer.loop import Policy

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
STALE = "Delivery takes 1-2 business days now, and is free over 50 euros."
CORRECTED = "Standard shipping takes 1-2 business days and is free over 50 euros."
BY_HAND = "Standard shipping takes 2 business days (written by a person while the fix was rolled back)."


class EditedAfterTheHistory:
    """The trainer's knowledge client, with a person's edit of the entry landing
    just after the trainer read the entry's history."""

    def __init__(self, inner, person) -> None:
        self.inner, self.person = inner, person

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def ListRevisions(self, request, **options):
        listed = await self.inner.ListRevisions(request, **options)
        await self.person.UpdateEntry(bpb.UpdateEntryRequest(
            entry=bpb.KnowledgeEntry(entry_id=request.entry_id, content=BY_HAND), update_mask={"paths": ["content"]}))
        return listed


async def test_an_edit_landing_while_a_rollback_restores_is_refused_never_overwritten(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    edit = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[pb.FIX_KIND_EDIT_ANSWER]
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, answer=CORRECTED, reviewer="ana"))
    plain = trainer.knowledge
    trainer.knowledge = EditedAfterTheHistory(plain, knowledge)
    try:
        await expect_status(stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ben")),
                            grpc.StatusCode.FAILED_PRECONDITION, "changed since")
    finally:
        trainer.knowledge = plain
    now = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=edit.entry_id))).entry
    assert now.content == BY_HAND  # the person's edit stands


async def test_approving_a_new_entry_records_the_reviewer_and_the_fix_in_its_revision(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    new = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[pb.FIX_KIND_NEW_ENTRY]
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=new.fix_id, reviewer="ana", note="reads well"))
    [approval] = (await knowledge.ListRevisions(bpb.ListRevisionsRequest(entry_id=new.fix_id, page_size=1))).revisions
    assert approval.entry.status == bpb.ENTRY_STATUS_PUBLISHED
    assert (approval.actor, approval.note.author, approval.note.fix_id, approval.note.training_run_id) == (
        "trainer", "ana", new.fix_id, new.run_id)
    assert "reads well" in approval.note.reason

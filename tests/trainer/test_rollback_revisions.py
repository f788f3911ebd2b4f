"""Fixes as knowledge revisions: every change a run or a review makes to the
index is a revision naming the fix, its run and the reviewer; rolling back an
approved change restores the revision before it, and keeps what was changed
by hand since. The trainer runs against the real interactions service and
knowledge index."""

from __future__ import annotations

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, SHIPPING, expect_status
from tests.trainer.builders import kinds_of_fix
from trainer.loop import Policy

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
AUTO = Policy(threshold=1, publish="auto", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
STALE = "Delivery takes 1-2 business days now, and is free over 50 euros."
CORRECTED = "Standard shipping takes 1-2 business days and is free over 50 euros."


async def revisions(knowledge, entry_id: str) -> list[bpb.KnowledgeRevision]:
    return list((await knowledge.ListRevisions(bpb.ListRevisionsRequest(entry_id=entry_id))).revisions)


async def stored(knowledge, entry_id: str) -> bpb.KnowledgeEntry:
    return (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=entry_id))).entry


def same(entry: bpb.KnowledgeEntry, other: bpb.KnowledgeEntry) -> bool:
    """The same entry, whatever its revision and times."""
    fields = ("entry_id", "kind", "title", "content", "questions", "source", "provenance", "status", "metadata")
    return all(getattr(entry, name) == getattr(other, name) for name in fields)


async def approved_edit(stub, trainer, interactions, knowledge) -> tuple[pb.Fix, bpb.KnowledgeEntry]:
    """The EDIT_ANSWER fix of a run under review, approved with the reviewer's
    answer; and the entry as it was before the approval."""
    edit = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[pb.FIX_KIND_EDIT_ANSWER]
    before = await stored(knowledge, "faq-shipping")
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, answer=CORRECTED, reviewer="ana",
                                               note="checked the rates"))
    return edit, before


async def test_rolling_back_an_edited_answer_restores_the_revision_before_it(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    edit, before = await approved_edit(stub, trainer, interactions, knowledge)
    approval = (await revisions(knowledge, "faq-shipping"))[0]
    assert (approval.revision, approval.action, approval.actor, approval.entry.content) == (
        before.revision + 1, bpb.REVISION_ACTION_UPDATE, "trainer", CORRECTED)
    assert approval.note == bpb.RevisionNote(author="ana", reason=f"approved fix {edit.fix_id}: checked the rates",
                                             fix_id=edit.fix_id, training_run_id=edit.run_id)
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ben", note="rates not live yet"))
    now = await stored(knowledge, "faq-shipping")
    assert now.content == SHIPPING.content and same(now, before)
    rollback = (await revisions(knowledge, "faq-shipping"))[0]
    assert (rollback.revision, rollback.action, rollback.restored_revision) == (
        approval.revision + 1, bpb.REVISION_ACTION_RESTORE, before.revision)
    assert rollback.note == bpb.RevisionNote(author="ben", reason=f"rolled back fix {edit.fix_id}: rates not live yet",
                                             fix_id=edit.fix_id, training_run_id=edit.run_id)


async def test_a_rollback_keeps_what_was_changed_by_hand_since_and_never_overwrites_an_answer(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    edit, before = await approved_edit(stub, trainer, interactions, knowledge)
    # A phrasing added by hand after the approval stays through the rollback.
    by_hand = [*before.questions, "What does delivery cost?"]
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
        entry=bpb.KnowledgeEntry(entry_id="faq-shipping", questions=by_hand), update_mask={"paths": ["questions"]}))
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana"))
    now = await stored(knowledge, "faq-shipping")
    assert (now.content, list(now.questions)) == (SHIPPING.content, by_hand)
    assert (await revisions(knowledge, "faq-shipping"))[0].action == bpb.REVISION_ACTION_UPDATE


async def test_an_answer_edited_since_the_approval_is_not_rolled_back(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    edit, _ = await approved_edit(stub, trainer, interactions, knowledge)
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
        entry=bpb.KnowledgeEntry(entry_id="faq-shipping", content="Shipping takes 2 days."),
        update_mask={"paths": ["content"]}, note=bpb.RevisionNote(author="carla", reason="new carrier")))
    newest = (await revisions(knowledge, "faq-shipping"))[0]
    await expect_status(stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "answer changed since")
    assert (await stored(knowledge, "faq-shipping")).content == "Shipping takes 2 days."
    assert (await revisions(knowledge, "faq-shipping"))[0] == newest
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=edit.fix_id))).fix.state == pb.FIX_STATE_PUBLISHED


async def test_a_new_entry_has_its_runs_revisions_and_its_rollback_deletes_it_for_the_record(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    new = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[pb.FIX_KIND_NEW_ENTRY]
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=new.fix_id, reviewer="ana"))
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=new.fix_id, reviewer="ana", note="no tents"))
    await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=new.entry_id)), grpc.StatusCode.NOT_FOUND)
    deleted, approved, proposed = await revisions(knowledge, new.entry_id)
    assert [r.action for r in (deleted, approved, proposed)] == [
        bpb.REVISION_ACTION_DELETE, bpb.REVISION_ACTION_UPDATE, bpb.REVISION_ACTION_CREATE]
    assert {r.actor for r in (deleted, approved, proposed)} == {"trainer"}
    assert proposed.note == bpb.RevisionNote(reason=f"written by trainer run {new.run_id} (publish policy review)",
                                             training_run_id=new.run_id)
    assert proposed.entry.status == bpb.ENTRY_STATUS_PROPOSED and approved.entry.status == bpb.ENTRY_STATUS_PUBLISHED
    assert (deleted.note.author, deleted.note.reason, deleted.note.fix_id) == (
        "ana", f"rolled back fix {new.fix_id}: no tents", new.fix_id)


async def test_a_change_a_run_published_names_the_run_and_rolls_back(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    edit = (await kinds_of_fix(stub, trainer, interactions, knowledge, AUTO, STALE))[pb.FIX_KIND_EDIT_ANSWER]
    published = (await revisions(knowledge, "faq-shipping"))[0]
    assert (published.actor, published.entry.content) == ("trainer", edit.answer)
    assert published.note == bpb.RevisionNote(reason=f"written by trainer run {edit.run_id} (publish policy auto)",
                                              training_run_id=edit.run_id)
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana"))
    assert (await stored(knowledge, "faq-shipping")).content == SHIPPING.content
    rollback = (await revisions(knowledge, "faq-shipping"))[0]
    assert (rollback.note.fix_id, rollback.note.author) == (edit.fix_id, "ana")


async def test_a_rejected_new_entry_leaves_the_index_with_the_reviewers_note(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    new = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[pb.FIX_KIND_NEW_ENTRY]
    await stub.RejectFix(pb.RejectFixRequest(fix_id=new.fix_id, reviewer="ana", note="we do not rent tents"))
    deleted = (await revisions(knowledge, new.entry_id))[0]
    assert (deleted.action, deleted.actor) == (bpb.REVISION_ACTION_DELETE, "trainer")
    assert deleted.note == bpb.RevisionNote(author="ana", reason=f"rejected fix {new.fix_id}: we do not rent tents",
                                            fix_id=new.fix_id, training_run_id=new.run_id)


class MarkingFailsOnce:
    """Interactions whose first MarkProcessed fails after the index was changed: a rollback cut half way."""

    def __init__(self, inner) -> None:
        self.inner, self.failed = inner, False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def MarkProcessed(self, request, **options):
        if not self.failed:
            self.failed = True
            raise RuntimeError("interactions went away")
        return await self.inner.MarkProcessed(request, **options)


@pytest.mark.parametrize(("kind", "changed_by_hand"), [
    (pb.FIX_KIND_ADD_PHRASINGS, False), (pb.FIX_KIND_EDIT_ANSWER, False), (pb.FIX_KIND_ADD_PHRASINGS, True)])
async def test_a_retried_rollback_finishes_without_publishing_the_fix_again(
        trainer_setup, interactions, knowledge, kind, changed_by_hand):
    stub, trainer = trainer_setup
    fix = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[kind]
    before = await stored(knowledge, fix.entry_id)
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana"))
    if changed_by_hand:  # a phrasing added by hand since: the rollback undoes only the fix's own change
        entry = await stored(knowledge, fix.entry_id)
        entry.questions.append("Do you take returns by post?")
        await knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=entry, update_mask={"paths": ["questions"]}))
    trainer.interactions = MarkingFailsOnce(trainer.interactions)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.RollbackFix(pb.RollbackFixRequest(fix_id=fix.fix_id, reviewer="ben"))
    undone = await stored(knowledge, fix.entry_id)
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=fix.fix_id, reviewer="ben"))  # the retry
    after = await stored(knowledge, fix.entry_id)
    assert same(after, undone) and after.revision == undone.revision  # the retry wrote nothing to the entry
    assert after.content == before.content
    assert not set(fix.added_questions) & set(after.questions)
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.state == pb.FIX_STATE_ROLLED_BACK


class EditedWhileReading:
    """The trainer's knowledge client, with a person's edit of the entry landing just after each read of it."""

    def __init__(self, inner, person, content: str) -> None:
        self.inner, self.person, self.content = inner, person, content

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def GetEntry(self, request, **options):
        read = await self.inner.GetEntry(request, **options)
        await self.person.UpdateEntry(bpb.UpdateEntryRequest(
            entry=bpb.KnowledgeEntry(entry_id=request.entry_id, content=f"{self.content} ({read.entry.revision})"),
            update_mask={"paths": ["content"]}))
        return read


async def test_an_edit_landing_while_an_approval_writes_is_refused_never_overwritten(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    fix = (await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE))[pb.FIX_KIND_ADD_PHRASINGS]
    by_hand = "Returns are free for 30 days (written by a person while the fix was approved)."
    plain = trainer.knowledge
    trainer.knowledge = EditedWhileReading(plain, knowledge, by_hand)
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "changed since")
    now = await stored(knowledge, fix.entry_id)
    assert now.content.startswith(by_hand)  # the person's edit stands
    assert not set(fix.questions) - set(fix.withheld_questions) <= set(now.questions)  # the fix did not land
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    # Approved again, with no edit in between, it reads the entry as it is now and keeps the person's answer.
    trainer.knowledge = plain
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana"))
    assert (await stored(knowledge, fix.entry_id)).content == now.content

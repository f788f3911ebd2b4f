"""Review of fixes whose entry changed under them, what each kind of fix records
of how it was made, and what a failed run says: pinned where the mutation run
(scripts/mutate, docs/testing.md) found a change that no test noticed. The
trainer runs against the real interactions service and knowledge index."""

from __future__ import annotations

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, SHIPPING, expect_status
from tests.trainer.builders import kinds_of_fix
from trainer.loop import Counts, Policy, _Run
from trainer.runs import failed_message

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
STALE = "Delivery takes 1-2 business days now, and is free over 50 euros."


async def three_kinds(stub, trainer, interactions, knowledge) -> dict[int, pb.Fix]:
    """A run with one fix of each kind, under review; the fixes by kind."""
    fixes = await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE)
    assert set(fixes) == {pb.FIX_KIND_NEW_ENTRY, pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_KIND_EDIT_ANSWER}, fixes
    return fixes


async def test_each_kind_of_fix_records_what_made_it(trainer_setup, interactions, knowledge):
    """A new entry and an edited answer were written by the teacher with this
    prompt version; added phrasings were not written by anyone, and only an
    edit has an answer it replaces."""
    stub, trainer = trainer_setup
    fixes = await three_kinds(stub, trainer, interactions, knowledge)
    made = {kind: (fix.teacher_model, fix.prompt_version, fix.previous_answer) for kind, fix in fixes.items()}
    assert made == {pb.FIX_KIND_NEW_ENTRY: ("teacher-double", "fix-v2", ""),
                    pb.FIX_KIND_ADD_PHRASINGS: ("", "", ""),
                    pb.FIX_KIND_EDIT_ANSWER: ("teacher-double", "fix-v2", SHIPPING.content)}


async def test_approving_a_change_to_an_entry_deleted_since_says_to_reject_it(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    fixes = await three_kinds(stub, trainer, interactions, knowledge)
    await knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id="faq-shipping"))
    edit = fixes[pb.FIX_KIND_EDIT_ANSWER]
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, reviewer="ana")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details == (f"entry 'faq-shipping', which fix {edit.fix_id!r} changes, no longer exists; "
                       "reject the fix")
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=edit.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    rejected = (await stub.RejectFix(pb.RejectFixRequest(fix_id=edit.fix_id, reviewer="ana"))).fix
    assert rejected.state == pb.FIX_STATE_REJECTED


async def test_rolling_back_fixes_whose_entries_are_gone_succeeds(trainer_setup, interactions, knowledge):
    """What a fix changed went with its entry: the rollback has nothing left to
    undo in the index, and still records the rollback."""
    stub, trainer = trainer_setup
    fixes = await three_kinds(stub, trainer, interactions, knowledge)
    for kind in (pb.FIX_KIND_NEW_ENTRY, pb.FIX_KIND_ADD_PHRASINGS):
        await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fixes[kind].fix_id, reviewer="ana"))
    await knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id=fixes[pb.FIX_KIND_NEW_ENTRY].fix_id))
    await knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id="faq-returns"))
    for kind in (pb.FIX_KIND_NEW_ENTRY, pb.FIX_KIND_ADD_PHRASINGS):
        rolled = (await stub.RollbackFix(pb.RollbackFixRequest(fix_id=fixes[kind].fix_id, reviewer="ana"))).fix
        assert rolled.state == pb.FIX_STATE_ROLLED_BACK


async def test_rolling_back_an_edit_changed_since_says_how_to_undo_it(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    edit = (await three_kinds(stub, trainer, interactions, knowledge))[pb.FIX_KIND_EDIT_ANSWER]
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, reviewer="ana"))
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
        entry=bpb.KnowledgeEntry(entry_id="faq-shipping", content="Shipping takes 2 days."),
        update_mask={"paths": ["content"]}))
    details = await expect_status(stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details == (f"entry 'faq-shipping''s answer changed since fix {edit.fix_id!r} published it, so rolling "
                       "back would overwrite that change; edit the entry by hand (the fix's previous_answer holds "
                       "the answer before it)")


def test_a_failed_run_says_how_many_failed_and_the_first_cause():
    counts = Counts(read=12, failed=3)
    assert failed_message(counts, ["RuntimeError: teacher unavailable", "later"]) == (
        "3 of 12 interactions failed and stay in the queue for the next run; "
        "first failure: RuntimeError: teacher unavailable")
    assert failed_message(counts, []) == "3 of 12 interactions failed and stay in the queue for the next run"
    assert len(failed_message(counts, ["x" * 2000])) == 1000


def test_a_question_in_an_earlier_fix_is_fixed_once_that_fix_is_published():
    """The state on record (a review) decides; without one, the entry's status."""
    outcome = _Run._outcome
    assert outcome("published", bpb.ENTRY_STATUS_PROPOSED) == ipb.TRAINING_OUTCOME_FIXED
    assert outcome("proposed", bpb.ENTRY_STATUS_PUBLISHED) == ipb.TRAINING_OUTCOME_PROPOSED
    assert outcome("", bpb.ENTRY_STATUS_PUBLISHED) == ipb.TRAINING_OUTCOME_FIXED
    assert outcome("", bpb.ENTRY_STATUS_PROPOSED) == ipb.TRAINING_OUTCOME_PROPOSED

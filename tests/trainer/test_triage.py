"""Triage of disliked answers into the right kind of fix, against the real
interactions service and knowledge index (pgvector, MiniLM): each class its
kind; review, reject and rollback of each kind through TrainerService; folding
of the new kinds within and across runs; a run killed before marking."""

from __future__ import annotations

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, expect_status, processed, upsert
from tests.trainer.builders import REVIEW, disliked, fixes_by_kind, forced_run
from trainer.loop import Policy

AUTO = Policy(threshold=1, publish="auto", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
SHIPPED_FROM = ("faq-shipping", 0.5)  # the bot answered from the shipping entry
STALE = "Delivery takes 1-2 business days now, and is free over 50 euros."


async def entry(knowledge, entry_id: str) -> bpb.KnowledgeEntry:
    return (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=entry_id))).entry


async def one_of_each(interactions) -> dict[str, str]:
    """A disliked interaction of each triage class; their ids by class."""
    return {
        # The bot answered from the shipping entry; the returns entry answers it.
        "misrouted": await disliked(interactions, "How do I return an item I bought?", source=SHIPPED_FROM,
                                    answer="Standard shipping takes 3-5 business days."),
        # The bot answered from the right entry, which is out of date.
        "wrong": await disliked(interactions, "How long does shipping take?", source=("faq-shipping", 0.77),
                                answer="Standard shipping takes 3-5 business days.",
                                reason=ipb.FEEDBACK_REASON_OUTDATED, comment=STALE),
        # Answered right; the customer dislikes the policy.
        "no_action": await disliked(interactions, "When will my parcel arrive?", source=("faq-shipping", 1.0),
                                    answer="Standard shipping takes 3-5 business days.",
                                    reason=ipb.FEEDBACK_REASON_OTHER, comment="Too slow, I want it tomorrow."),
        # Nothing answers it.
        "gap": await disliked(interactions, "Do you rent out tents?"),
    }


async def test_each_class_gets_its_kind_and_under_review_no_entry_changes(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    ids = await one_of_each(interactions)
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    counts = done.counts
    assert (counts.gap, counts.misrouted, counts.wrong, counts.no_action) == (1, 1, 1, 1), counts
    assert (counts.read, counts.covered, counts.proposed, counts.failed) == (4, 1, 3, 0)
    kinds = await fixes_by_kind(stub, done.run_id)
    (new,), (add,), (edit,) = (kinds[pb.FIX_KIND_NEW_ENTRY], kinds[pb.FIX_KIND_ADD_PHRASINGS],
                               kinds[pb.FIX_KIND_EDIT_ANSWER])
    assert list(new.interaction_ids) == [ids["gap"]] and new.question == "Do you rent out tents?"
    assert (add.entry_id, list(add.added_questions), list(add.interaction_ids)) == (
        "faq-returns", ["How do I return an item I bought?"], [ids["misrouted"]])
    assert add.answer == RETURNS.content and add.state == pb.FIX_STATE_PROPOSED
    assert (edit.entry_id, edit.previous_answer, list(edit.interaction_ids)) == (
        "faq-shipping", SHIPPING.content, [ids["wrong"]])
    assert edit.answer and edit.answer != SHIPPING.content and edit.teacher_model == "teacher-double"
    # Proposals only: the published entries are as they were.
    assert list((await entry(knowledge, "faq-returns")).questions) == list(RETURNS.questions)
    assert (await entry(knowledge, "faq-shipping")).content == SHIPPING.content
    stored = await processed(interactions)
    assert stored[ids["no_action"]].training_outcome == ipb.TRAINING_OUTCOME_COVERED
    assert stored[ids["no_action"]].knowledge_entry_id == "faq-shipping"
    assert (stored[ids["misrouted"]].knowledge_entry_id, stored[ids["wrong"]].knowledge_entry_id) == (
        "faq-returns", "faq-shipping")
    assert {stored[i].training_outcome for i in (ids["misrouted"], ids["wrong"], ids["gap"])} == {
        ipb.TRAINING_OUTCOME_PROPOSED}


async def test_an_answer_the_bot_was_not_sure_of_is_never_an_edit_of_the_entry_it_came_from(
        trainer_setup, interactions, knowledge):
    """A follow-up nothing covered on its own was answered, hedged, from the
    conversation's topic (Interaction.unsure). The customer calls it wrong, with
    a comment, and its entry is the best for the question: still no edit of that
    entry's answer, which was never chosen as the answer to it. The same dislike
    of a confident answer is an edit."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    hedged = await disliked(interactions, "How long does shipping take?", source=("faq-shipping", 0.77),
                            answer="I'm not sure I understood, but ... 3-5 business days.", unsure=True,
                            reason=ipb.FEEDBACK_REASON_INCORRECT, comment=STALE)
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    assert (done.counts.wrong, done.counts.gap) == (0, 1), done.counts
    kinds = await fixes_by_kind(stub, done.run_id)
    assert pb.FIX_KIND_EDIT_ANSWER not in kinds
    (new,) = kinds[pb.FIX_KIND_NEW_ENTRY]
    assert list(new.interaction_ids) == [hedged]

    confident = await disliked(interactions, "How long does shipping take?", source=("faq-shipping", 0.77),
                               answer=SHIPPING.content, reason=ipb.FEEDBACK_REASON_INCORRECT, comment=STALE)
    again = await forced_run(stub)
    assert again.counts.wrong == 1, again.counts
    (edit,) = (await fixes_by_kind(stub, again.run_id))[pb.FIX_KIND_EDIT_ANSWER]
    assert (edit.entry_id, list(edit.interaction_ids)) == ("faq-shipping", [confident])


async def test_approve_and_rollback_of_each_change_kind(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    ids = await one_of_each(interactions)
    kinds = await fixes_by_kind(stub, (await forced_run(stub)).run_id)
    (add,), (edit,) = kinds[pb.FIX_KIND_ADD_PHRASINGS], kinds[pb.FIX_KIND_EDIT_ANSWER]
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=add.fix_id, answer="x", reviewer="ana")),
                        grpc.StatusCode.INVALID_ARGUMENT, "answer", "ADD_PHRASINGS")
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=add.fix_id, reviewer="ana"))).fix
    assert approved.state == pb.FIX_STATE_PUBLISHED
    assert list(approved.added_questions) == ["How do I return an item I bought?"]
    assert list((await entry(knowledge, "faq-returns")).questions) == [*RETURNS.questions,
                                                                        "How do I return an item I bought?"]
    fixed = "Standard shipping takes 1-2 business days and is free over 50 euros."
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, answer=fixed, reviewer="ana"))).fix
    assert (approved.answer, approved.previous_answer) == (fixed, SHIPPING.content)
    assert (await entry(knowledge, "faq-shipping")).content == fixed
    stored = await processed(interactions)
    assert {stored[ids[c]].training_outcome for c in ("misrouted", "wrong")} == {ipb.TRAINING_OUTCOME_FIXED}
    # The bot now finds the returns entry for the misrouted question.
    hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(
        query="How do I return an item I bought?", k=1))).hits
    assert hits[0].entry.entry_id == "faq-returns"

    # A phrasing someone else added meanwhile stays; only the fix's own leaves.
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
        entry=bpb.KnowledgeEntry(entry_id="faq-returns", questions=[*RETURNS.questions,
                                 "How do I return an item I bought?", "Can I get a refund?"]),
        update_mask={"paths": ["questions"]}))
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=add.fix_id, reviewer="ana"))
    assert list((await entry(knowledge, "faq-returns")).questions) == [*RETURNS.questions, "Can I get a refund?"]
    rolled = (await stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana"))).fix
    assert rolled.state == pb.FIX_STATE_ROLLED_BACK
    assert (await entry(knowledge, "faq-shipping")).content == SHIPPING.content
    stored = await processed(interactions)
    assert {stored[ids[c]].training_outcome for c in ("misrouted", "wrong")} == {ipb.TRAINING_OUTCOME_ROLLED_BACK}
    assert {stored[ids[c]].knowledge_entry_id for c in ("misrouted", "wrong")} == {"faq-returns", "faq-shipping"}


async def test_a_rejected_change_leaves_its_entry_and_a_changed_answer_is_not_rolled_back(trainer_setup, interactions,
                                                                                          knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    ids = await one_of_each(interactions)
    kinds = await fixes_by_kind(stub, (await forced_run(stub)).run_id)
    (add,), (edit,) = kinds[pb.FIX_KIND_ADD_PHRASINGS], kinds[pb.FIX_KIND_EDIT_ANSWER]
    await stub.RejectFix(pb.RejectFixRequest(fix_id=add.fix_id, reviewer="ana", note="not a returns question"))
    returns = await entry(knowledge, "faq-returns")
    assert list(returns.questions) == list(RETURNS.questions) and returns.content == RETURNS.content
    assert (await processed(interactions))[ids["misrouted"]].training_outcome == ipb.TRAINING_OUTCOME_REJECTED
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, reviewer="ana"))
    by_hand = "Shipping takes 2 days."
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=bpb.KnowledgeEntry(entry_id="faq-shipping",
                                                                                 content=by_hand),
                                                       update_mask={"paths": ["content"]}))
    await expect_status(stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "answer changed since")
    assert (await entry(knowledge, "faq-shipping")).content == by_hand
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=edit.fix_id))).fix.state == pb.FIX_STATE_PUBLISHED


async def test_dislikes_on_one_entry_fold_into_its_pending_change_across_runs(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    first = [await disliked(interactions, "How do I return an item I bought?", source=SHIPPED_FROM),
             await disliked(interactions, "How can I return something?", source=SHIPPED_FROM),
             await disliked(interactions, "How long does shipping take?", source=("faq-shipping", 0.77),
                            reason=ipb.FEEDBACK_REASON_OUTDATED, comment=STALE)]
    one = await forced_run(stub)
    kinds = await fixes_by_kind(stub, one.run_id)
    assert (len(kinds[pb.FIX_KIND_ADD_PHRASINGS]), len(kinds[pb.FIX_KIND_EDIT_ANSWER])) == (1, 1), kinds
    (add,), (edit,) = kinds[pb.FIX_KIND_ADD_PHRASINGS], kinds[pb.FIX_KIND_EDIT_ANSWER]
    assert list(add.interaction_ids) == first[:2]
    later = [await disliked(interactions, "What's the return policy?", source=SHIPPED_FROM),
             await disliked(interactions, "How long does shipping take?", source=("faq-shipping", 0.77),
                            reason=ipb.FEEDBACK_REASON_INCORRECT, comment="It came in two days.")]
    trainer.teacher = Teacher()
    two = await forced_run(stub)
    assert (two.counts.misrouted, two.counts.wrong, two.counts.proposed) == (1, 1, 2), two.counts
    assert trainer.teacher.asked == []  # the pending edit absorbs the new dislike: nothing to rewrite
    assert (await stub.ListFixes(pb.ListFixesRequest(run_id=two.run_id))).fixes == []
    grown = (await stub.GetFix(pb.GetFixRequest(fix_id=add.fix_id))).fix
    assert list(grown.interaction_ids) == [*first[:2], later[0]]
    assert list(grown.added_questions) == ["How do I return an item I bought?", "How can I return something?",
                                           "What's the return policy?"]
    grown_edit = (await stub.GetFix(pb.GetFixRequest(fix_id=edit.fix_id))).fix
    assert list(grown_edit.interaction_ids) == [first[2], later[1]] and grown_edit.answer == edit.answer
    # Once approved, a change takes no more questions: the next dislike proposes a new one.
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=add.fix_id, reviewer="ana"))
    await disliked(interactions, "How can I return something, please?", source=SHIPPED_FROM)
    three = await forced_run(stub)
    (newer,) = (await fixes_by_kind(stub, three.run_id)).get(pb.FIX_KIND_ADD_PHRASINGS, [None])
    assert newer is not None and newer.fix_id != add.fix_id and newer.state == pb.FIX_STATE_PROPOSED


async def test_under_auto_changes_apply_at_once_and_roll_back(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), AUTO
    await upsert(knowledge, RETURNS, SHIPPING)
    ids = await one_of_each(interactions)
    done = await forced_run(stub)
    assert (done.counts.fixed, done.counts.covered, done.counts.failed) == (3, 1, 0), done.counts
    kinds = await fixes_by_kind(stub, done.run_id)
    (add,), (edit,) = kinds[pb.FIX_KIND_ADD_PHRASINGS], kinds[pb.FIX_KIND_EDIT_ANSWER]
    assert {add.state, edit.state} == {pb.FIX_STATE_PUBLISHED}
    assert "How do I return an item I bought?" in (await entry(knowledge, "faq-returns")).questions
    assert (await entry(knowledge, "faq-shipping")).content == edit.answer != SHIPPING.content
    assert (await processed(interactions))[ids["wrong"]].training_outcome == ipb.TRAINING_OUTCOME_FIXED
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=add.fix_id, reviewer="ana"))
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana"))
    assert list((await entry(knowledge, "faq-returns")).questions) == list(RETURNS.questions)
    assert (await entry(knowledge, "faq-shipping")).content == SHIPPING.content


class CrashBeforeMarking:
    """The interactions stub, except that the run dies when it marks."""

    def __init__(self, stub) -> None:
        self.ListInteractions = stub.ListInteractions

    async def MarkProcessed(self, request):
        raise RuntimeError("killed")


async def test_a_run_killed_before_marking_then_run_again_writes_each_change_once(trainer_setup, interactions,
                                                                                  knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    ids = await one_of_each(interactions)
    reachable, trainer.interactions = trainer.interactions, CrashBeforeMarking(trainer.interactions)
    try:
        killed = await forced_run(stub)
    finally:
        trainer.interactions = reachable
    assert killed.state == pb.RUN_STATE_FAILED and "killed" in killed.error_message
    again = await forced_run(stub)
    assert again.state == pb.RUN_STATE_SUCCEEDED and again.counts.read == 4
    kinds = await fixes_by_kind(stub)
    assert {kind: len(found) for kind, found in kinds.items()} == {
        pb.FIX_KIND_NEW_ENTRY: 1, pb.FIX_KIND_ADD_PHRASINGS: 1, pb.FIX_KIND_EDIT_ANSWER: 1}
    stored = await processed(interactions)
    assert all(stored[i].processed_for_training for i in ids.values())

"""The regression gate, over the real services (TrainerService, the bot's
KnowledgeService with pgvector and MiniLM, interactions, PostgreSQL): a fix
must not take a liked answer from the entry that answered it right.

The questions were chosen by their MiniLM similarities (cosine):
- the liked "Can I send back a gift I bought online?" is answered by the
  returns entry's one phrasing at 0.49 (above the bot's 0.42 cut);
- "Can I exchange a gift for another size?" is 0.70 similar to it (a fix
  phrased so would take it), "Can I swap a present for a different size?"
  0.47 (it would not); the two are 0.78 similar, so they fold into one fix;
- "Can I send back a gift?" is 0.92 similar to it: a fix with that one
  phrasing can only take it.
"""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import Teacher, expect_status, processed, upsert
from tests.trainer.builders import GIFT_CARDS_ENTRY, disliked, forced_run, liked

RETURNS = "returns"
LIKED = "Can I send back a gift I bought online?"
TAKES = "Can I exchange a gift for another size?"
KEEPS = "Can I swap a present for a different size?"
ONLY_TAKES = "Can I send back a gift?"
NEAR_KEEPS = "Can I swap a gift I got for a different size?"  # 0.89 like KEEPS, 0.63 like LIKED


async def seed(knowledge, interactions) -> None:
    await upsert(knowledge, bpb.KnowledgeEntry(
        entry_id=RETURNS, kind=bpb.ENTRY_KIND_QA, title="Returns", questions=["How do I return an item?"],
        content="Send it back within 30 days with the prepaid label.", source="faq"))
    await liked(interactions, LIKED, RETURNS)


async def run(stub, trainer, interactions, *questions: str, publish: str = "review",
              reinforce: bool = False) -> tuple[pb.Run, list[pb.Fix]]:
    """A forced run over `questions`, disliked; `reinforce` off unless asked: these
    tests are about the gate, which the liked questions as phrasings would spare."""
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish=publish, reinforce=reinforce)
    for question in questions:
        await disliked(interactions, question)
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    return done, list((await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes)


async def answered_from(knowledge, question: str) -> str:
    hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(query=question, k=1))).hits
    return hits[0].entry.entry_id if hits else ""


async def test_a_phrasing_that_would_take_a_liked_answer_is_withheld_and_the_rest_published(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, [fix] = await run(stub, trainer, interactions, TAKES, KEEPS, publish="auto")
    assert fix.kind == pb.FIX_KIND_NEW_ENTRY and fix.state == pb.FIX_STATE_PUBLISHED
    assert list(fix.questions) == [KEEPS] and list(fix.withheld_questions) == [TAKES]
    assert not fix.regressions
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id))).entry
    assert list(entry.questions) == [KEEPS]
    # The liked question is still answered from its entry; the fix answers its own topic.
    assert await answered_from(knowledge, LIKED) == RETURNS
    assert await answered_from(knowledge, "Can I swap a present for another size?") == fix.entry_id
    # Both disliked questions are in the fix, the withheld phrasing's too.
    assert {(await processed(interactions))[i].training_outcome for i in fix.interaction_ids} == {
        ipb.TRAINING_OUTCOME_FIXED}
    assert len(fix.interaction_ids) == 2


async def test_under_auto_a_fix_that_can_only_take_a_liked_answer_is_held_for_review(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    done, [fix] = await run(stub, trainer, interactions, ONLY_TAKES, publish="auto")
    assert fix.state == pb.FIX_STATE_PROPOSED and list(fix.questions) == [ONLY_TAKES]
    [regression] = fix.regressions
    assert (regression.question, regression.entry_id, regression.moved_to_entry_id) == (LIKED, RETURNS, fix.entry_id)
    assert regression.entry_score == pytest.approx(0.49, abs=0.02)
    assert regression.moved_to_score == pytest.approx(0.92, abs=0.02)
    assert done.counts.proposed == 1 and done.counts.fixed == 0
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id))).entry
    assert entry.status == bpb.ENTRY_STATUS_PROPOSED
    assert await answered_from(knowledge, LIKED) == RETURNS
    # GetFix shows the same list to the reviewer.
    assert list((await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.regressions) == list(fix.regressions)


async def test_approving_a_fix_that_would_take_a_liked_answer_needs_the_override(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    before = (await stub.EvaluateKnowledge(pb.EvaluateKnowledgeRequest())).evaluation
    assert (before.questions, before.liked, before.right, before.accuracy) == (2, 1, 2, 1.0)
    done, [fix] = await run(stub, trainer, interactions, ONLY_TAKES)
    assert [r.question for r in fix.regressions] == [LIKED]
    assert (done.evaluation_before.right, done.evaluation_after.right) == (2, 2)  # nothing published yet
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "allow_regressions")
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    assert await answered_from(knowledge, LIKED) == RETURNS
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                           allow_regressions=True))).fix
    assert approved.state == pb.FIX_STATE_PUBLISHED
    # The replay was right: published, the fix takes the liked question, and the evaluation says so.
    assert await answered_from(knowledge, LIKED) == fix.entry_id
    after = (await stub.EvaluateKnowledge(pb.EvaluateKnowledgeRequest())).evaluation
    assert (after.questions, after.right) == (3, 2)  # the fix's phrasing joined the set
    [wrong] = after.wrong
    assert (wrong.question, wrong.entry_id, wrong.moved_to_entry_id) == (LIKED, RETURNS, fix.entry_id)


async def test_a_fix_that_takes_nothing_is_approved_without_the_override(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, [fix] = await run(stub, trainer, interactions, "Do you rent out tents?")
    assert not fix.regressions and not fix.withheld_questions
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana"))).fix
    assert approved.state == pb.FIX_STATE_PUBLISHED


async def test_the_gate_replays_against_the_knowledge_as_it_is_at_approval(trainer_setup, interactions, knowledge):
    """A fix proposed when it took nothing is replayed again on approval: a
    customer liked an answer since that the fix would take."""
    stub, trainer = trainer_setup
    await upsert(knowledge, bpb.KnowledgeEntry(
        entry_id=RETURNS, kind=bpb.ENTRY_KIND_QA, title="Returns", questions=["How do I return an item?"],
        content="Send it back within 30 days with the prepaid label.", source="faq"))
    _, [fix] = await run(stub, trainer, interactions, ONLY_TAKES)
    assert not fix.regressions
    await liked(interactions, LIKED, RETURNS)
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "1 right answer")
    assert [r.question for r in (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.regressions] == [LIKED]


async def test_a_liked_question_becomes_a_phrasing_of_its_entry_and_no_fix_can_take_it(
        trainer_setup, interactions, knowledge):
    """The cheap remedy: with the liked question a phrasing of the entry that
    answered it, the fix keeps the phrasing the gate withholds without it."""
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, fixes = await run(stub, trainer, interactions, TAKES, KEEPS, publish="auto", reinforce=True)
    [added] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    [new] = [f for f in fixes if f.kind == pb.FIX_KIND_NEW_ENTRY]
    assert (added.entry_id, list(added.added_questions), added.state) == (RETURNS, [LIKED], pb.FIX_STATE_PUBLISHED)
    assert len(added.interaction_ids) == 1  # the liked interaction: the evidence
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=RETURNS))).entry
    assert list(entry.questions) == ["How do I return an item?", LIKED]
    assert new.state == pb.FIX_STATE_PUBLISHED and sorted(new.questions) == sorted([TAKES, KEEPS])
    assert not new.regressions and not new.withheld_questions
    assert await answered_from(knowledge, LIKED) == RETURNS
    assert await answered_from(knowledge, TAKES) == new.entry_id
    # Rolled back, the liked phrasing leaves its entry again, and only it.
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=added.fix_id, reviewer="ana"))
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=RETURNS))).entry
    assert list(entry.questions) == ["How do I return an item?"]


async def test_under_review_the_liked_phrasings_are_proposed_and_the_fix_waits_for_them(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, fixes = await run(stub, trainer, interactions, TAKES, KEEPS, reinforce=True)
    [added] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    [new] = [f for f in fixes if f.kind == pb.FIX_KIND_NEW_ENTRY]
    assert added.state == new.state == pb.FIX_STATE_PROPOSED
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=RETURNS))).entry.questions) == [
        "How do I return an item?"]  # untouched until approved
    # Proposed with the liked phrasing in view, the fix takes nothing and keeps both phrasings;
    # approved first, it would take the liked answer: the gate replays against the index as it is.
    assert not new.regressions and sorted(new.questions) == sorted([TAKES, KEEPS])
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=new.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "allow_regressions", f"Approve {added.fix_id} first")
    # The refusal put what it would take on record.
    assert [r.question for r in (await stub.GetFix(pb.GetFixRequest(fix_id=new.fix_id))).fix.regressions] == [LIKED]
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=added.fix_id, reviewer="ana"))
    assert (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=new.fix_id, reviewer="ana"))).fix.state == \
        pb.FIX_STATE_PUBLISHED
    assert await answered_from(knowledge, LIKED) == RETURNS
    assert await answered_from(knowledge, TAKES) == new.entry_id


GIFT_CARDS = GIFT_CARDS_ENTRY.entry_id
RETURN_A_CARD = "Can I return a gift card?"  # liked, answered from the gift cards entry
RETURN_A_CARD_TOO = "Can I give back a gift card?"  # liked, answered from the gift cards entry
# Liked later, answered from returns (0.69); the two card phrasings (0.78 and 0.69 like it) would take it.
RETURN_A_GIFT = "How do I return a gift?"


async def test_approving_added_phrasings_that_would_take_a_liked_answer_needs_the_override(
        trainer_setup, interactions, knowledge):
    """The approval's replay covers phrasings added to an existing entry too, not only new entries."""
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    await upsert(knowledge, GIFT_CARDS_ENTRY)
    await liked(interactions, RETURN_A_CARD, GIFT_CARDS)
    await liked(interactions, RETURN_A_CARD_TOO, GIFT_CARDS)
    _, fixes = await run(stub, trainer, interactions, "Do you rent out tents?", reinforce=True)
    [added] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS and f.entry_id == GIFT_CARDS]
    assert sorted(added.questions) == sorted([RETURN_A_CARD, RETURN_A_CARD_TOO]) and not added.regressions
    await liked(interactions, RETURN_A_GIFT, RETURNS)
    assert await answered_from(knowledge, RETURN_A_GIFT) == RETURNS
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=added.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "allow_regressions")
    assert [r.question for r in (await stub.GetFix(pb.GetFixRequest(fix_id=added.fix_id))).fix.regressions] == [
        RETURN_A_GIFT]
    assert (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=added.fix_id, reviewer="ana",
                                                       allow_regressions=True))).fix.state == pb.FIX_STATE_PUBLISHED
    assert await answered_from(knowledge, RETURN_A_GIFT) == GIFT_CARDS  # the replay was right


async def test_a_liked_phrasing_a_reviewer_turned_down_is_not_proposed_again(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, fixes = await run(stub, trainer, interactions, KEEPS, reinforce=True)
    [added] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    await stub.RejectFix(pb.RejectFixRequest(fix_id=added.fix_id, reviewer="ana", note="not the same question"))
    _, again = await run(stub, trainer, interactions, "Do you rent out tents?", reinforce=True)
    assert [f.kind for f in again] == [pb.FIX_KIND_NEW_ENTRY]


async def test_under_auto_a_proposed_liked_phrasing_stays_proposed(trainer_setup, interactions, knowledge):
    """Proposed under review, then the policy turns to auto: the proposal is
    the reviewer's; the auto run writes its own change, recorded as it writes."""
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, fixes = await run(stub, trainer, interactions, KEEPS, reinforce=True)
    [proposed] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    _, later = await run(stub, trainer, interactions, "Do you rent out tents?", publish="auto", reinforce=True)
    [published] = [f for f in later if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    assert published.fix_id != proposed.fix_id and published.state == pb.FIX_STATE_PUBLISHED
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=proposed.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=RETURNS))).entry.questions) == [
        "How do I return an item?", LIKED]


async def test_a_liked_answer_of_an_entry_withdrawn_since_leaves_the_regression_set(
        trainer_setup, interactions, knowledge):
    stub, _ = trainer_setup
    await seed(knowledge, interactions)
    await liked(interactions, "Do you sell gift cards?", "gift-cards")  # an entry that is gone
    evaluation = (await stub.EvaluateKnowledge(pb.EvaluateKnowledgeRequest())).evaluation
    assert (evaluation.questions, evaluation.liked, evaluation.right) == (2, 1, 2)


async def test_a_phrasing_a_misrouted_question_would_add_is_withheld_when_it_would_take_a_liked_answer(
        trainer_setup, interactions, knowledge):
    """Under auto, two disliked questions that the exchanges entry answers (0.74 like its phrasing,
    above this judge's 0.7): "I want a different size, can I exchange?" is added to it; the one 0.70
    like the liked question would take that question from the returns entry (0.49), so it is
    withheld from the change, and the liked question is still answered from returns."""
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    await upsert(knowledge, bpb.KnowledgeEntry(
        entry_id="exchanges", kind=bpb.ENTRY_KIND_QA, title="Exchanges", source="faq",
        questions=["Do you exchange items for a different size?"], content="Exchanges are free within 30 days."))
    kept = "I want a different size, can I exchange?"
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="auto", reinforce=False, covered_similarity=0.7)
    for question in (TAKES, kept):
        await disliked(interactions, question)
    done = await forced_run(stub)
    assert (done.state, done.counts.misrouted) == (pb.RUN_STATE_SUCCEEDED, 2), done.counts
    (change,) = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert (change.kind, change.entry_id, change.state) == (pb.FIX_KIND_ADD_PHRASINGS, "exchanges",
                                                           pb.FIX_STATE_PUBLISHED)
    assert (list(change.added_questions), list(change.withheld_questions)) == ([kept], [TAKES])
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="exchanges"))).entry
    assert list(entry.questions) == ["Do you exchange items for a different size?", kept]
    assert await answered_from(knowledge, LIKED) == RETURNS


async def test_a_phrasing_withheld_on_one_page_stays_withheld_when_a_later_page_grows_the_fix(
        trainer_setup, interactions, knowledge, monkeypatch):
    """One question a page: the fix starts with KEEPS, the next page's TAKES joins it and is
    withheld, the last page's near-duplicate of KEEPS joins it and is withheld too (0.63 like the liked
    question: with KEEPS, at 0.48, it would take it from returns' 0.49): TAKES is still listed as
    withheld beside it."""
    from trainer import loop

    monkeypatch.setattr(loop, "PAGE", 1)
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    _, [fix] = await run(stub, trainer, interactions, KEEPS, TAKES, NEAR_KEEPS)
    assert len(fix.interaction_ids) == 3 and TAKES not in fix.questions
    assert list(fix.withheld_questions) == [TAKES, NEAR_KEEPS]

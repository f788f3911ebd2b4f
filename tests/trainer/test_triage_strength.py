"""A page's changes at their edges: when an answer edit cannot be revised the
page's other changes still are proposed; phrasings a page adds to an entry
whose reinforcement is proposed are gated on top of it; a question on a later
page that grows an earlier page's fix (under auto, without a hold) is fixed
and the fix keeps its answer. Over the real services, with tests/trainer/test_triage.py's
questions (their MiniLM similarities put each in its class). Pinned where the
mutation run (scripts/mutate, docs/testing.md) found a change that no test
noticed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, processed, upsert
from tests.trainer.builders import PausingTeacher, disliked, finished, forced_run, liked
from trainer import loop, triage
from trainer.loop import Policy, run_once

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
OUTDATED = "How long does shipping take?"


async def test_an_answer_the_teacher_could_not_revise_fails_alone_and_the_pages_other_changes_are_proposed(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(fail_on=OUTDATED), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    # First on the page: the bot answered from the right entry, which is out of date (an edit to revise).
    wrong = await disliked(interactions, OUTDATED, source=("faq-shipping", 0.77),
                           answer="Standard shipping takes 3-5 business days.", reason=ipb.FEEDBACK_REASON_OUTDATED,
                           comment="Delivery takes 1-2 business days now, and is free over 50 euros.")
    # Then one the returns entry answers, which the bot answered from the shipping entry (phrasings to add).
    misrouted = await disliked(interactions, "How do I return an item I bought?", source=("faq-shipping", 0.5),
                               answer="Standard shipping takes 3-5 business days.")
    done = await forced_run(stub)
    assert (done.counts.wrong, done.counts.misrouted, done.counts.failed, done.counts.proposed) == (1, 1, 1, 1)
    stored = await processed(interactions)
    assert stored[wrong].training_outcome == ipb.TRAINING_OUTCOME_FAILED
    assert stored[wrong].knowledge_entry_id == ""  # a failed question names no entry
    assert (stored[misrouted].training_outcome, stored[misrouted].knowledge_entry_id) == (
        ipb.TRAINING_OUTCOME_PROPOSED, "faq-returns")
    (added,) = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert (added.kind, list(added.interaction_ids)) == (pb.FIX_KIND_ADD_PHRASINGS, [misrouted])


async def test_phrasings_a_page_adds_to_an_entry_with_a_proposed_reinforcement_are_gated_on_top_of_it(
        trainer_setup, interactions, knowledge):
    """Under review the run proposes a liked question as a phrasing of the returns entry (a
    reinforcement), and the same page misroutes a disliked question to that entry: the page's gate
    replays the entry with both, and the run goes on."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), replace(REVIEW, reinforce=True)
    await upsert(knowledge, RETURNS, SHIPPING)
    await liked(interactions, "How can I return something?", "faq-returns")
    misrouted = await disliked(interactions, "How do I return an item I bought?", source=("faq-shipping", 0.5),
                               answer="Standard shipping takes 3-5 business days.")
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    assert done.counts.misrouted == 1
    stored = await processed(interactions)
    assert (stored[misrouted].training_outcome, stored[misrouted].knowledge_entry_id) == (
        ipb.TRAINING_OUTCOME_PROPOSED, "faq-returns")


async def test_under_auto_a_question_that_grows_an_earlier_pages_fix_is_fixed_with_the_fixs_answer(
        interactions, knowledge, monkeypatch):
    """A run without a hold (run_once as the tests and a library caller call it): the second page's
    near-duplicate joins the fix the first page published, so its question is fixed too, and the
    fix keeps its answer."""
    monkeypatch.setattr(loop, "PAGE", 1)
    first, second = "Can I swap a present for a different size?", "Can I exchange a gift for another size?"
    ids = [await disliked(interactions, question) for question in (first, second)]
    counts = await run_once(interactions, knowledge, Teacher(), replace(REVIEW, publish="auto"))
    assert (counts.read, counts.fixed, counts.failed) == (2, 2, 0), counts
    stored = await processed(interactions)
    assert {stored[i].training_outcome for i in ids} == {ipb.TRAINING_OUTCOME_FIXED}
    (fix_id,) = {stored[i].knowledge_entry_id for i in ids}
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix_id))).entry
    assert entry.content == "Yes, we rent tents for 15 euros a weekend."
    assert list(entry.provenance.interaction_ids) == ids


async def test_under_auto_a_change_grows_over_its_runs_pages_and_a_later_run_starts_its_own(
        trainer_setup, interactions, knowledge, monkeypatch):
    """One misrouted question a page: under auto the first page publishes phrasings for the
    returns entry, and the second page's question joins that change, which this run applies as
    it grows. A later run's misrouted question does not grow the change an earlier run
    published: it is a change of its own, which a reviewer can roll back alone."""
    monkeypatch.setattr(loop, "PAGE", 1)
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), replace(REVIEW, publish="auto")
    await upsert(knowledge, RETURNS, SHIPPING)
    shipped = ("faq-shipping", 0.5)
    questions = ["How do I return an item I bought?", "How can I return something?", "What's the return policy?"]
    first = [await disliked(interactions, question, source=shipped) for question in questions[:2]]
    one = await forced_run(stub)
    assert (one.state, one.counts.misrouted, one.counts.fixed) == (pb.RUN_STATE_SUCCEEDED, 2, 2), one.counts
    (grown,) = (await stub.ListFixes(pb.ListFixesRequest(run_id=one.run_id))).fixes
    assert (grown.kind, grown.state, grown.entry_id) == (pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_STATE_PUBLISHED,
                                                        "faq-returns")
    assert (list(grown.interaction_ids), list(grown.added_questions)) == (first, questions[:2])
    later = await disliked(interactions, questions[2], source=shipped)
    two = await forced_run(stub)
    assert (two.counts.misrouted, two.counts.fixed) == (1, 1), two.counts
    (own,) = (await stub.ListFixes(pb.ListFixesRequest(run_id=two.run_id))).fixes
    assert own.fix_id != grown.fix_id and list(own.interaction_ids) == [later]
    assert list(own.added_questions) == questions[2:]
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=grown.fix_id))).fix == grown
    returns = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert list(returns.questions) == [*RETURNS.questions, *questions]


MISROUTED = ("How do I return an item I bought?", "How can I return something?")
PAUSED = "Do you repair zips on jackets?"


async def run_reviewed_between_pages(stub, trainer, interactions, knowledge, monkeypatch, policy,
                                     review) -> tuple[dict[str, pb.Fix], str, list[str]]:
    """Two pages: a question the returns entry answers (the bot answered it from the
    shipping entry) and a gap each; the second page's gap waits for the teacher (after
    that page read the changes on record) while `review` acts on the first page's change.
    The run's ADD_PHRASINGS fixes by id, the reviewed one's id, and the interaction ids."""
    monkeypatch.setattr(loop, "PAGE", 2)
    trainer.teacher, trainer.policy = PausingTeacher(PAUSED), policy
    await upsert(knowledge, RETURNS, SHIPPING)
    shipped = ("faq-shipping", 0.5)
    ids = [await disliked(interactions, MISROUTED[0], source=shipped),
           await disliked(interactions, "Do you sell gift cards?"),
           await disliked(interactions, MISROUTED[1], source=shipped), await disliked(interactions, PAUSED)]
    run_id = (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id
    await asyncio.wait_for(trainer.teacher.waiting.wait(), 30)
    (change,) = [f for f in (await stub.ListFixes(pb.ListFixesRequest(run_id=run_id))).fixes
                 if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    await review(change)
    trainer.teacher.release.set()
    run = await finished(stub, run_id)
    assert run.state == pb.RUN_STATE_SUCCEEDED, run.error_message
    fixes = [f for f in (await stub.ListFixes(pb.ListFixesRequest(run_id=run_id))).fixes
             if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    return {f.fix_id: f for f in fixes}, change.fix_id, ids


@pytest.mark.parametrize(("publish", "review", "reviewed", "newer", "listed"), [
    # Under review: the later page's question starts a new proposal instead of growing the approved change.
    ("review", "ApproveFix", pb.FIX_STATE_PUBLISHED, pb.FIX_STATE_PROPOSED, MISROUTED[0]),
    # Under auto: it is applied as a change of its own, not hidden in the rolled-back one.
    ("auto", "RollbackFix", pb.FIX_STATE_ROLLED_BACK, pb.FIX_STATE_PUBLISHED, MISROUTED[1]),
])
async def test_a_change_a_reviewer_approved_or_rolled_back_during_the_run_takes_no_more_questions(
        trainer_setup, interactions, knowledge, monkeypatch, publish, review, reviewed, newer, listed):
    stub, trainer = trainer_setup
    request = pb.ApproveFixRequest if review == "ApproveFix" else pb.RollbackFixRequest

    async def act(change):
        await getattr(stub, review)(request(fix_id=change.fix_id, reviewer="ana"))

    fixes, acted, ids = await run_reviewed_between_pages(stub, trainer, interactions, knowledge, monkeypatch,
                                                         replace(REVIEW, publish=publish), act)
    assert (fixes[acted].state, list(fixes[acted].interaction_ids)) == (reviewed, [ids[0]])
    (later,) = [f for f in fixes.values() if f.fix_id != acted]
    assert (later.state, list(later.interaction_ids), list(later.added_questions)) == (newer, [ids[2]], [MISROUTED[1]])
    returns = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert list(returns.questions) == [*RETURNS.questions, listed]


async def test_a_runs_failures_are_counted_over_all_its_pages(interactions, knowledge, monkeypatch):
    """The first page's question fails (the teacher cannot answer it), the second page's does not."""
    monkeypatch.setattr(loop, "PAGE", 1)
    await disliked(interactions, "Do you rent out tents?")
    await disliked(interactions, "Do you sell gift cards?")
    counts = await run_once(interactions, knowledge, Teacher(fail_on="Do you rent out tents?"), REVIEW)
    assert (counts.read, counts.failed, counts.proposed) == (2, 1, 1), counts


def verdict_for(reason: int, score: float, comment: str = "") -> str:
    """The triage of a dislike of an answer from the entry that is still the best for the question, at `score`."""
    from trainer.judge import Hit
    from trainer.triage import decide

    returns = bpb.KnowledgeEntry(entry_id="faq-returns", questions=["How do I return something?"])
    item = ipb.Interaction(user_query="How long do I have to return boots?", feedback_reason=reason,
                           feedback_comment=comment,
                           sources=[ipb.KnowledgeSource(entry_id="faq-returns", title="Returns", score=score)])
    return decide(item, [Hit(returns, score)]).kind.value


@pytest.mark.parametrize(("reason", "score", "comment", "kind"), [
    (ipb.FEEDBACK_REASON_OTHER, 0.5, "", "no_action"),  # a policy the customer dislikes, however weak the match
    (ipb.FEEDBACK_REASON_INCORRECT, triage.SURE, "", "wrong"),  # no comment, but exactly SURE a match
    (ipb.FEEDBACK_REASON_INCORRECT, triage.SURE - 0.01, "", "gap"),  # no comment and not sure: a new entry
    (ipb.FEEDBACK_REASON_UNSPECIFIED, triage.SURE, "", "no_action"),  # no reason, about its very entry
    (ipb.FEEDBACK_REASON_NOT_RELEVANT, 0.95, "", "gap"),  # "about something else", however close the match
])
def test_a_dislike_of_the_best_entrys_answer_is_triaged_by_its_reason_and_how_sure_the_match_is(
        reason, score, comment, kind):
    assert verdict_for(reason, score, comment) == kind

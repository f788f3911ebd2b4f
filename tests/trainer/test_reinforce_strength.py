"""The run's reinforcement (trainer/loop.py `_Run.reinforce`: liked questions
become phrasings of the entry that answered them), over the real services like
tests/trainer/test_gate.py, whose questions (chosen by their MiniLM
similarities) these reuse: an addition is gated like any change, and under
review a run grows the entry's proposal instead of proposing again. Pinned
where the mutation run (scripts/mutate, docs/testing.md) found a change that
no test noticed."""

from __future__ import annotations

from dataclasses import replace

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import Teacher, upsert
from tests.trainer.builders import GIFT_CARDS_ENTRY, disliked, forced_run, liked

RETURNS = "returns"
GIFT_CARDS = GIFT_CARDS_ENTRY.entry_id
LIKED = "Can I send back a gift I bought online?"  # liked, answered from returns
RETURN_A_CARD = "Can I return a gift card?"  # liked, answered from gift cards
RETURN_A_CARD_TOO = "Can I give back a gift card?"  # liked, answered from gift cards
RETURN_A_GIFT = "How do I return a gift?"  # liked, answered from returns; the card phrasing would take it


async def seed(knowledge, interactions) -> None:
    await upsert(knowledge, bpb.KnowledgeEntry(
        entry_id=RETURNS, kind=bpb.ENTRY_KIND_QA, title="Returns", questions=["How do I return an item?"],
        content="Send it back within 30 days with the prepaid label.", source="faq"))
    await liked(interactions, LIKED, RETURNS)


async def reinforcing_run(stub, trainer, interactions, question: str, publish: str = "review") -> list[pb.Fix]:
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish=publish, reinforce=True)
    await disliked(interactions, question)
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    return list((await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes)


async def test_a_liked_question_that_would_take_another_liked_answer_is_not_proposed_as_a_phrasing(
        trainer_setup, interactions, knowledge, caplog):
    """The gift cards' two additions would take a liked answer of returns
    (0.78 and 0.69 like it, against returns' 0.69): they are withheld, and no
    change of gift cards is proposed. The run's log counts what it proposed."""
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    await upsert(knowledge, GIFT_CARDS_ENTRY)
    await liked(interactions, RETURN_A_CARD, GIFT_CARDS)
    await liked(interactions, RETURN_A_CARD_TOO, GIFT_CARDS)
    gift = await liked(interactions, RETURN_A_GIFT, RETURNS)
    with caplog.at_level("INFO", logger="trainer"):
        fixes = await reinforcing_run(stub, trainer, interactions, "Do you rent out tents?")
    added = {f.entry_id: f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS}
    assert GIFT_CARDS not in added  # its additions would take RETURN_A_GIFT from returns: withheld
    assert (list(added[RETURNS].questions), list(added[RETURNS].interaction_ids)) == ([RETURN_A_GIFT], [gift])
    [logged] = [r for r in caplog.records if r.getMessage() == "liked questions added to their entries"]
    assert (logged.run_id, logged.entries, logged.phrasings, logged.published) == (
        added[RETURNS].run_id, 1, 1, False)


async def test_under_review_a_later_run_grows_the_entrys_proposal_instead_of_proposing_again(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    [first] = [f for f in await reinforcing_run(stub, trainer, interactions, "Do you rent out tents?")
               if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    assert (first.entry_id, list(first.questions), first.state) == (RETURNS, [LIKED], pb.FIX_STATE_PROPOSED)
    await liked(interactions, RETURN_A_GIFT, RETURNS)
    await reinforcing_run(stub, trainer, interactions, "Do you rent out kayaks?")
    proposals = [f for f in (await stub.ListFixes(pb.ListFixesRequest())).fixes
                 if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    assert [f.fix_id for f in proposals] == [first.fix_id]
    assert list(proposals[0].questions) == [LIKED, RETURN_A_GIFT]


async def test_a_change_names_as_evidence_only_the_liked_interactions_of_the_phrasings_it_adds(
        trainer_setup, interactions, knowledge):
    """Under auto the first run publishes the liked question as a phrasing; the
    next adds a newly liked one, and its evidence is that one's interaction,
    not the earlier one's, whose phrasing the entry already has."""
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    [first] = [f for f in await reinforcing_run(stub, trainer, interactions, "Do you rent out tents?", "auto")
               if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    assert list(first.added_questions) == [LIKED]
    gift = await liked(interactions, RETURN_A_GIFT, RETURNS)
    [second] = [f for f in await reinforcing_run(stub, trainer, interactions, "Do you rent out kayaks?", "auto")
                if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    assert (list(second.added_questions), list(second.interaction_ids)) == ([RETURN_A_GIFT], [gift])


async def test_a_liked_question_is_proposed_on_its_own_beside_an_answer_edit_under_review(
        trainer_setup, interactions, knowledge):
    """The entry's pending proposal a reinforcement grows is its ADD_PHRASINGS
    one: an edit of the entry's answer waiting for review is another decision,
    and takes no phrasings from the run."""
    from mend.interactions.v1 import interactions_service_pb2 as ipb

    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="review", reinforce=False)
    await disliked(interactions, "How do I return an item?", source=(RETURNS, 0.77),
                   answer="Send it back within 30 days with the prepaid label.",
                   reason=ipb.FEEDBACK_REASON_OUTDATED, comment="Returns are free for 90 days now.")
    first = await forced_run(stub)
    [edit] = [f for f in (await stub.ListFixes(pb.ListFixesRequest(run_id=first.run_id))).fixes
              if f.kind == pb.FIX_KIND_EDIT_ANSWER]
    assert (edit.entry_id, edit.state) == (RETURNS, pb.FIX_STATE_PROPOSED)
    fixes = await reinforcing_run(stub, trainer, interactions, "Do you rent out tents?")
    [added] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    assert (added.entry_id, list(added.questions), added.state) == (RETURNS, [LIKED], pb.FIX_STATE_PROPOSED)
    assert list((await stub.GetFix(pb.GetFixRequest(fix_id=edit.fix_id))).fix.questions) == list(edit.questions)


async def test_a_proposal_a_later_run_grows_keeps_the_evidence_it_had(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await seed(knowledge, interactions)
    [first] = [f for f in await reinforcing_run(stub, trainer, interactions, "Do you rent out tents?")
               if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    [liked_first] = first.interaction_ids
    gift = await liked(interactions, RETURN_A_GIFT, RETURNS)
    await reinforcing_run(stub, trainer, interactions, "Do you rent out kayaks?")
    grown = (await stub.GetFix(pb.GetFixRequest(fix_id=first.fix_id))).fix
    assert (list(grown.questions), list(grown.interaction_ids)) == ([LIKED, RETURN_A_GIFT], [liked_first, gift])

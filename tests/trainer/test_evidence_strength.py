"""Liked answers as evidence that a topic is misrouted (trainer/evidence.py,
trainer/loop.py `_Run._misrouted_topics`), at its edge: a topic of exactly
`evidence.MIN_VOTES` disliked questions is weighed too. The questions are
tests/trainer/test_evidence.py's (MiniLM similarities there). Pinned where the
mutation run (scripts/mutate, docs/testing.md) found a change that no test
noticed."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as ipb
from tests.support import BRAND, SHIPPING, Teacher, dislike, processed, upsert
from tests.trainer.builders import liked
from trainer import evidence
from trainer.changes import ADD_PHRASINGS, MemoryLedger
from trainer.loop import Policy, run_once

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
LIKED = ["Do you deliver to Norway?", "Can you ship my order to Norway?", "Do you ship to Norway?"]
DISLIKED = ["Will you send my parcel to Norway?", "Is delivery to Norway possible?"]


async def test_a_topic_of_exactly_the_minimum_votes_is_added_to_the_entry_its_liked_neighbours_name(
        interactions, knowledge):
    assert len(DISLIKED) == evidence.MIN_VOTES
    await upsert(knowledge, SHIPPING)
    for question in LIKED:
        await liked(interactions, question, "faq-shipping")
    ids = await dislike(interactions, *DISLIKED)
    ledger = MemoryLedger()
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (counts.misrouted, counts.gap) == (2, 0), counts
    (change,) = ledger.changes.values()
    assert (change.kind, change.entry_id, change.interaction_ids) == (ADD_PHRASINGS, "faq-shipping", ids)


TENTS = ["Is tent hire available for a weekend?", "Can I hire a tent?", "Can I rent a tent from you?",
         "Could I borrow a tent for a trip?"]


async def test_a_topic_the_liked_answers_send_nowhere_does_not_stop_the_next_topic_being_weighed(
        interactions, knowledge):
    """Two new topics on one page: tents first (no liked neighbours: a new entry), then Norway."""
    await upsert(knowledge, SHIPPING)
    for question in LIKED:
        await liked(interactions, question, "faq-shipping")
    await dislike(interactions, *TENTS)
    norway = await dislike(interactions, *DISLIKED)
    ledger = MemoryLedger()
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (counts.misrouted, counts.gap) == (2, 4), counts
    (change,) = ledger.changes.values()
    assert (change.entry_id, change.interaction_ids) == ("faq-shipping", norway)


async def test_dislikes_that_join_a_fix_waiting_for_review_stay_in_it_whatever_the_liked_answers_say(
        interactions, knowledge):
    """An earlier run proposed a new entry for Norway (no liked answers then). Liked answers came
    since; new Norway dislikes join the proposed fix, which a reviewer decides on: the fix's
    questions are not weighed again as a topic of their own."""
    await upsert(knowledge, SHIPPING)
    first = await dislike(interactions, *DISLIKED)
    ledger = MemoryLedger()
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (counts.gap, counts.proposed) == (2, 2), counts
    stored = await processed(interactions)
    (fix_id,) = {stored[i].knowledge_entry_id for i in first}
    for question in LIKED:
        await liked(interactions, question, "faq-shipping")
    later = await dislike(interactions, "Can I get my order delivered in Norway?", "Do you send parcels to Norway?")
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (counts.read, counts.misrouted, counts.gap, counts.failed) == (2, 0, 2, 0), counts
    stored = await processed(interactions)
    assert {stored[i].knowledge_entry_id for i in later} == {fix_id} and ledger.changes == {}


async def test_a_liked_answer_the_bot_was_unsure_of_is_no_evidence(interactions):
    """A follow-up answered from the conversation's topic and liked: it says nothing of what that entry answers."""
    for question, unsure in (("and what does that cost?", True), ("How much is express delivery?", False)):
        created = (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
            user_query=question, bot_response="(the entry's answer)", unsure=unsure,
            sources=[ipb.KnowledgeSource(entry_id="faq-shipping", title="Shipping", score=0.6)])))).interaction
        await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(interaction_id=created.interaction_id,
                                                                    rating=ipb.RATING_LIKE))
    assert [like.question for like in await evidence.liked(interactions)] == ["How much is express delivery?"]

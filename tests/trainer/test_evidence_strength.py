"""Liked answers as evidence that a topic is misrouted (trainer/evidence.py,
trainer/loop.py `_Run._misrouted_topics`), at its edge: a topic of exactly
`evidence.MIN_VOTES` disliked questions is weighed too. The questions are
tests/trainer/test_evidence.py's (MiniLM similarities there). Pinned where the
mutation run (scripts/mutate, docs/testing.md) found a change that no test
noticed."""

from __future__ import annotations

from tests.support import BRAND, SHIPPING, Teacher, dislike, upsert
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

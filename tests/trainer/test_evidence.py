"""Liked answers as evidence that a topic of disliked questions is misrouted
(trainer/evidence.py), a new fix's phrasings chosen from its topic's core, and
a complaint about the answering entry kept out of a close new-entry fix: one
run (`run_once`) against the real interactions service and knowledge index
(pgvector, MiniLM). The questions' similarities are MiniLM's: the disliked
Norway questions are 0.75-0.84 alike and to the liked ones, at most 0.57 to the
shipping entry's phrasings (below the judge's 0.8)."""

from __future__ import annotations

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from tests.support import BRAND, SHIPPING, Teacher, dislike, processed, upsert
from tests.trainer.builders import disliked, liked
from trainer import evidence
from trainer.changes import ADD_PHRASINGS, EDIT_ANSWER, MemoryLedger
from trainer.loop import SOURCE, Policy, run_once

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
LIKED = ["Do you deliver to Norway?", "Can you ship my order to Norway?", "Do you ship to Norway?"]
DISLIKED = ["Will you send my parcel to Norway?", "Is delivery to Norway possible?",
            "Can I get my order delivered in Norway?"]
# A chain at the fold's 0.7: hire-weekend ~ hire (0.80) ~ rent (0.86) ~ borrow (0.82); "Can I hire
# a tent?" is close to all three others, "Can I rent a tent from you?" to two, the ends to one or two.
TENTS = ["Is tent hire available for a weekend?", "Can I hire a tent?", "Can I rent a tent from you?",
         "Could I borrow a tent for a trip?"]


async def fixes(knowledge) -> list[bpb.KnowledgeEntry]:
    return list((await knowledge.ListEntries(bpb.ListEntriesRequest(source=SOURCE))).entries)


async def test_a_topic_whose_liked_neighbours_an_entry_answered_is_added_to_that_entry(interactions, knowledge):
    await upsert(knowledge, SHIPPING)
    for question in LIKED:
        await liked(interactions, question, "faq-shipping")
    ids = await dislike(interactions, *DISLIKED)
    ledger, teacher = MemoryLedger(), Teacher()
    counts = await run_once(interactions, knowledge, teacher, REVIEW, ledger=ledger)
    assert (counts.read, counts.misrouted, counts.gap, counts.proposed) == (3, 3, 0, 3), counts
    assert await fixes(knowledge) == [] and teacher.asked == []  # no new entry, nothing to draft
    (change,) = ledger.changes.values()
    assert (change.kind, change.entry_id) == (ADD_PHRASINGS, "faq-shipping")
    assert change.interaction_ids == ids and change.added_questions == DISLIKED
    stored = await processed(interactions)
    assert {stored[i].knowledge_entry_id for i in ids} == {"faq-shipping"}


async def test_without_liked_neighbours_the_same_topic_is_a_new_entry(interactions, knowledge):
    await upsert(knowledge, SHIPPING)
    await liked(interactions, "Do you sell gift cards?", "faq-shipping")  # liked, but about something else
    ids = await dislike(interactions, *DISLIKED)
    ledger = MemoryLedger()
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (counts.misrouted, counts.gap) == (0, 3), counts
    (fix,) = await fixes(knowledge)
    assert list(fix.provenance.interaction_ids) == ids and ledger.changes == {}


async def test_liked_evidence_for_the_entry_the_customer_disliked_does_not_count(interactions, knowledge):
    await upsert(knowledge, SHIPPING)
    for question in LIKED:
        await liked(interactions, question, "faq-shipping")
    # The bot answered each from the shipping entry and the customer said it was unrelated.
    for question in DISLIKED:
        await disliked(interactions, question, source=("faq-shipping", 0.5), answer=SHIPPING.content)
    ledger = MemoryLedger()
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (counts.misrouted, counts.gap) == (0, 3) and ledger.changes == {}, counts


async def test_a_liked_question_answered_from_another_entry_now_is_no_evidence(interactions, knowledge):
    await upsert(knowledge, SHIPPING)
    for question in LIKED:
        await liked(interactions, question, "faq-shipping")
    # Still answered from the shipping entry (which the batch therefore finds), but not about Norway.
    await liked(interactions, "When will my parcel arrive?", "faq-shipping")
    # Since they were liked, an entry on their very topic took them over.
    await upsert(knowledge, bpb.KnowledgeEntry(
        entry_id="faq-norway", kind=bpb.ENTRY_KIND_QA, source="test-kb", content="We ship to Norway in 5 days.",
        questions=LIKED))
    near = await evidence.nearest(knowledge, DISLIKED, await evidence.liked(interactions))
    assert near == [None, None, None]


async def test_a_new_fix_lists_the_phrasings_most_like_the_others(interactions, knowledge, monkeypatch):
    from trainer import loop

    monkeypatch.setattr(loop, "NEW_PHRASINGS", 2)
    ids = await dislike(interactions, *TENTS)
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW)
    assert counts.proposed == 4
    (fix,) = await fixes(knowledge)
    assert list(fix.questions) == ["Can I hire a tent?", "Can I rent a tent from you?"]
    assert list(fix.provenance.interaction_ids) == ids  # every question is in the fix


async def test_a_complaint_about_the_answering_entry_edits_it_rather_than_joining_a_close_fix(interactions,
                                                                                             knowledge):
    await upsert(knowledge, SHIPPING)
    await dislike(interactions, "Do you ship to Norway?")  # a gap: a new fix waits for review
    first = await run_once(interactions, knowledge, Teacher(), REVIEW)
    (pending,) = await fixes(knowledge)
    assert first.gap == 1 and pending.status == bpb.ENTRY_STATUS_PROPOSED
    # 0.88 like the pending fix's phrasing, but answered from the shipping entry, and out of date.
    complaint = await disliked(interactions, "Do you deliver to Norway?", source=("faq-shipping", 0.4),
                               answer=SHIPPING.content, reason=ipb.FEEDBACK_REASON_OUTDATED,
                               comment="You deliver to Norway since May.")
    ledger = MemoryLedger()
    second = await run_once(interactions, knowledge, Teacher(), REVIEW, ledger=ledger)
    assert (second.wrong, second.gap) == (1, 0), second
    (change,) = ledger.changes.values()
    assert (change.kind, change.entry_id, change.interaction_ids) == (EDIT_ANSWER, "faq-shipping", [complaint])
    (still,) = await fixes(knowledge)
    assert list(still.provenance.interaction_ids) == list(pending.provenance.interaction_ids)

"""How the trainer calls its models: at the concurrency each model takes, asking
a busy one again, and, on the embedded default, the real teacher through a run
that needs more fixes than the old fixed four calls in flight (with which the
embedded model answered the fourth "busy" and nearly every later call failed)."""

from __future__ import annotations

import asyncio

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit.errors import ResourceExhausted
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, dislike, upsert
from tests.trainer.builders import disliked
from trainer.loop import Policy, run_once

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.8, brand=BRAND)
# Unrelated questions, none near another (each its own fix) nor near the sample knowledge.
QUESTIONS = ["Do you rent out tents for a weekend?", "Can I pay with a gift card from another shop?",
             "Do you ship to Iceland?", "Is there a student discount?", "Can I book a repair appointment in store?",
             "Do you buy back used hiking boots?"]


async def test_the_embedded_teacher_writes_every_fix_of_a_run_with_none_failed(interactions, knowledge, chat_model):
    questions = QUESTIONS[:5]  # one more fix than the old four calls in flight
    await dislike(interactions, *questions)
    counts = await run_once(interactions, knowledge, chat_model, REVIEW)
    assert (counts.read, counts.proposed, counts.failed) == (5, 5, 0), counts


class Busy(Teacher):
    """Answers RESOURCE_EXHAUSTED ("busy") to its first calls, then answers; counts overlap."""

    def __init__(self, busy_calls: int, concurrency: int) -> None:
        super().__init__()
        self.busy_calls = busy_calls
        self.concurrency = concurrency
        self.running = self.most = 0

    async def stream(self, messages, max_tokens):
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01)
            if self.busy_calls > 0:
                self.busy_calls -= 1
                raise ResourceExhausted("the chat model is busy")
            async for piece in super().stream(messages, max_tokens):
                yield piece
        finally:
            self.running -= 1


async def test_a_busy_model_is_asked_again_and_never_asked_beyond_its_concurrency(
        interactions, knowledge, monkeypatch):
    from trainer import loop

    monkeypatch.setattr(loop, "BUSY_BACKOFF_S", (0.01, 0.02, 0.04, 0.08))
    await dislike(interactions, *QUESTIONS)
    teacher = Busy(busy_calls=3, concurrency=1)
    counts = await run_once(interactions, knowledge, teacher, REVIEW)
    assert (counts.proposed, counts.failed) == (len(QUESTIONS), 0), counts
    assert teacher.most == 1 and teacher.busy_calls == 0


async def test_a_model_busy_beyond_the_backoff_fails_its_question_only(interactions, knowledge, monkeypatch):
    from trainer import loop

    monkeypatch.setattr(loop, "BUSY_BACKOFF_S", (0.01, 0.02))
    await dislike(interactions, *QUESTIONS[:2])
    teacher = Busy(busy_calls=3, concurrency=1)  # the first question: busy three times in a row
    failures: list[str] = []
    counts = await run_once(interactions, knowledge, teacher, REVIEW, failures=failures)
    assert (counts.proposed, counts.failed) == (1, 1), counts
    assert failures == ["ResourceExhausted: the chat model is busy"]


async def test_answer_edits_are_asked_of_the_teacher_at_its_own_concurrency_too(interactions, knowledge):
    """Two entries' answers called out of date on one page: two revisions, one at a time for a one-at-a-time model."""
    await upsert(knowledge, RETURNS, SHIPPING)
    for question, entry_id in (("What is your return policy?", "faq-returns"),
                               ("When will my parcel arrive?", "faq-shipping")):
        await disliked(interactions, question, source=(entry_id, 0.9), answer="(the entry's answer)",
                       reason=ipb.FEEDBACK_REASON_OUTDATED, comment="That changed last month.")
    teacher = Busy(busy_calls=0, concurrency=1)
    counts = await run_once(interactions, knowledge, teacher, REVIEW)
    assert (counts.wrong, counts.proposed, counts.failed) == (2, 2, 0), counts
    assert teacher.most == 1

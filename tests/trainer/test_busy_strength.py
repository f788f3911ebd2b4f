"""A busy model is asked again after a pause, and each pause is logged with why:
pinned where the mutation run (scripts/mutate, docs/testing.md) found that no
test read the log line."""

from __future__ import annotations

import asyncio
import logging

from mendkit.errors import ResourceExhausted
from tests.support import BRAND, RETURNS, Teacher, dislike, upsert
from trainer import loop
from trainer.judge import ModelJudge
from trainer.loop import Policy, run_once


async def test_each_busy_answer_is_logged_with_the_pause_and_the_models_words(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="trainer")
    monkeypatch.setattr(loop, "BUSY_BACKOFF_S", (0.01, 0.02, 0.03))
    long = "busy " * 100
    answers = iter([ResourceExhausted("the chat model is busy"), ResourceExhausted("still busy"),
                    ResourceExhausted(long), "done"])

    async def call():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await loop._patiently(call) == "done"
    logged = [(r.getMessage(), r.pause_s, r.error) for r in caplog.records if r.name == "trainer"]
    assert logged == [("the model is busy; asking again", 0.01, "the chat model is busy"),
                      ("the model is busy; asking again", 0.02, "still busy"),
                      ("the model is busy; asking again", 0.03, long[:200])]


async def test_a_failed_model_call_is_logged_and_its_cause_kept_for_the_run(caplog):
    caplog.set_level(logging.INFO, logger="trainer")
    failures: list[str] = []

    async def fails():
        raise RuntimeError("teacher unavailable " + "x" * 400)

    async def works():
        return "an answer"

    results = await loop._few_at_a_time([fails, works], 2, failures, "drafted answers")
    assert isinstance(results[0], RuntimeError) and results[1] == "an answer"
    assert failures == [("RuntimeError: teacher unavailable " + "x" * 400)[:300]]
    (record,) = [r for r in caplog.records if r.name == "trainer" and r.levelno == logging.WARNING]
    assert (record.getMessage(), record.error) == ("a model call failed", failures[0])


class CountingJudgeModel:
    """A judge's model (in production the embedded one, or a cloud one) that takes one call at a
    time and answers "no"; counts how many calls overlap."""

    model_id = "judge"
    concurrency = 1

    def __init__(self) -> None:
        self.running = self.most = self.calls = 0

    async def stream(self, messages, max_tokens):
        self.running += 1
        self.calls += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.02)
            yield "no"
        finally:
            self.running -= 1


async def test_the_judge_is_asked_at_its_models_concurrency(interactions, knowledge):
    """Every question of the page has a published candidate (the returns entry), so the judge is asked
    about each: never more at once than its model takes (the embedded model answers "busy" beyond it)."""
    await upsert(knowledge, RETURNS)
    questions = ["Do you rent out tents for a weekend?", "Can I pay with a gift card from another shop?",
                 "Do you ship to Iceland?", "Is there a student discount?"]
    await dislike(interactions, *questions)
    model = CountingJudgeModel()
    policy = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.8, brand=BRAND)
    counts = await run_once(interactions, knowledge, Teacher(), policy, judge=ModelJudge(model))
    assert (counts.read, counts.failed) == (4, 0), counts
    assert model.calls == 4 and model.most == 1


class OneAtATimeJudge:
    """A judge of its own (no model behind it, as a library caller may give the trainer) that says
    how many questions it takes at once; counts how many overlap."""

    concurrency = 1

    def __init__(self) -> None:
        self.running = self.most = self.calls = 0

    async def covering(self, question, candidates):
        self.running += 1
        self.calls += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.02)
            return None
        finally:
            self.running -= 1


async def test_a_judge_without_a_model_is_asked_at_its_own_concurrency(interactions, knowledge):
    await upsert(knowledge, RETURNS)
    await dislike(interactions, "Do you rent out tents for a weekend?", "Can I pay with a gift card from another shop?",
                  "Do you ship to Iceland?", "Is there a student discount?")
    judge = OneAtATimeJudge()
    policy = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.8, brand=BRAND)
    counts = await run_once(interactions, knowledge, Teacher(), policy, judge=judge)
    assert (counts.read, counts.failed) == (4, 0), counts
    assert judge.calls == 4 and judge.most == 1

"""What a run tells its operator: the run's span and its counts, a log line per
page, an ERROR naming the first failure when interactions failed, the closing
line, and the line that says the run stopped below its threshold. Pinned where
the mutation run (scripts/mutate, docs/testing.md) found that no test read them."""

from __future__ import annotations

import logging
import uuid

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, dislike, upsert
from tests.trainer.builders import REVIEW, disliked, forced_run
from trainer import loop
from trainer.loop import Policy, run_once

TWO = Policy(threshold=2, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)


def said(caplog, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "trainer" and r.levelno == level]


async def test_a_run_logs_each_page_its_failures_and_its_end_and_spans_its_counts(
        interactions, knowledge, spans, caplog, monkeypatch):
    """One question a page (the threshold is met only by the second), the first failing."""
    caplog.set_level(logging.INFO, logger="trainer")
    monkeypatch.setattr(loop, "PAGE", 1)
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    failures: list[str] = []
    counts = await run_once(interactions, knowledge, Teacher(fail_on="Do you rent out tents?"), TWO,
                            failures=failures)
    assert (counts.read, counts.failed, counts.proposed, counts.gated) == (2, 1, 1, 0), counts
    infos = said(caplog, logging.INFO)
    run_id = infos[-1].run_id
    uuid.UUID(run_id)  # a run without an id gets a fresh one
    pages = [r for r in infos if r.getMessage().startswith("page ")]
    assert [(r.getMessage(), r.run_id, r.pages, r.read) for r in pages] == [
        ("page 1 done: read 2, covered 0, fixed 0, proposed 0, failed 1", run_id, 1, 2),
        ("page 2 done: read 2, covered 0, fixed 0, proposed 1, failed 1", run_id, 2, 2)]
    (error,) = said(caplog, logging.ERROR)
    assert error.getMessage() == "1 of 2 interactions failed; they stay in the queue for the next run"
    assert (error.run_id, error.first_failure) == (run_id, failures[0]) and failures[0]
    finished = infos[-1]
    assert (finished.getMessage(), finished.read, finished.failed, finished.fixes) == ("run finished", 2, 1, 1)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "mend.trainer.run"]
    assert (span.attributes["mend.trainer.read"], span.attributes["mend.trainer.failed"],
            span.attributes["mend.trainer.proposed"]) == (2, 1, 1)


async def test_a_run_below_its_threshold_says_so_and_spans_what_it_held_back(interactions, knowledge, spans, caplog):
    caplog.set_level(logging.INFO, logger="trainer")
    await dislike(interactions, "Do you rent out tents?")
    counts = await run_once(interactions, knowledge, Teacher(), TWO)
    assert (counts.read, counts.gated, counts.proposed) == (1, 1, 0), counts
    (line,) = said(caplog, logging.INFO)
    assert (line.getMessage(), line.read, line.threshold) == ("below the feedback threshold; nothing to do", 1, 2)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "mend.trainer.run"]
    assert span.attributes["mend.trainer.gated"] == 1


async def test_a_page_of_slow_model_calls_says_how_many_are_done_while_it_runs(interactions, knowledge, caplog,
                                                                               monkeypatch):
    """The embedded teacher takes 17-66 s an answer: between two page lines a
    page of them is hours, so the run says how far its model calls are (here at
    every call: PROGRESS_S 0), and not after the last one, which the page's own
    line follows."""
    caplog.set_level(logging.INFO, logger="trainer")
    monkeypatch.setattr(loop, "PROGRESS_S", 0.0)
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?", "Can I pay with Bitcoin?")
    counts = await run_once(interactions, knowledge, Teacher(fail_on="Bitcoin"), TWO)
    assert (counts.proposed, counts.failed) == (2, 1), counts
    progress = [(r.getMessage(), r.done, r.failed, r.calls) for r in said(caplog, logging.INFO)
                if r.getMessage().startswith("drafted answers:")]
    assert len(progress) == 2 and progress[-1][1:] in {(2, 0, 3), (2, 1, 3)}, progress
    assert [message for message, *_ in progress] == [f"drafted answers: {d} of 3 done, {f} failed"
                                                     for _, d, f, _ in progress]


async def test_the_progress_line_comes_at_most_every_progress_s_as_calls_end(caplog, monkeypatch):
    """Five calls one at a time, each ending 15 s after the one before (a fake
    clock): with PROGRESS_S 30 the line comes after the second and the fourth,
    exactly 30 s apart, and not after the fifth and last; a failed call (the
    second and third) is done and counted failed."""
    caplog.set_level(logging.INFO, logger="trainer")
    now = [0.0]
    monkeypatch.setattr(loop, "_clock", lambda: now[0])
    monkeypatch.setattr(loop, "PROGRESS_S", 30.0)

    def call(number: int):
        async def answered() -> str:
            now[0] += 15.0
            if number in (1, 2):
                raise RuntimeError("teacher unavailable")
            return f"answer {number}"
        return answered

    failures: list[str] = []
    results = await loop._few_at_a_time([call(n) for n in range(5)], 1, failures, "revised answers")
    assert results[0] == "answer 0" and isinstance(results[2], RuntimeError) and results[4] == "answer 4"
    lines = [(r.getMessage(), r.done, r.failed, r.calls) for r in said(caplog, logging.INFO)]
    assert lines == [("revised answers: 2 of 5 done, 1 failed", 2, 1, 5),
                     ("revised answers: 4 of 5 done, 2 failed", 4, 2, 5)]


async def test_each_kind_of_model_call_names_itself_in_the_progress_line(trainer_setup, interactions, knowledge,
                                                                         caplog, monkeypatch):
    """Drafted answers (new entries), revised answers (edits of wrong ones) and
    judged questions (whether a published entry covers a gap), each by name."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    caplog.set_level(logging.INFO, logger="trainer")
    monkeypatch.setattr(loop, "PROGRESS_S", 0.0)
    await upsert(knowledge, RETURNS, SHIPPING)
    for entry, question in (("faq-shipping", "How long does shipping take?"), ("faq-returns", "Can I return it?")):
        await disliked(interactions, question, source=(entry, 0.9), reason=ipb.FEEDBACK_REASON_OUTDATED,
                       comment="That changed last month.")
    await disliked(interactions, "How do I send back shoes that do not fit?")
    await disliked(interactions, "Do you ship parcels to Norway?")
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED and done.counts.wrong == 2, done.counts
    kinds = {r.getMessage().split(":")[0] for r in said(caplog, logging.INFO) if r.getMessage().endswith("failed")}
    assert kinds == {"revised answers", "judged questions", "drafted answers"}, kinds

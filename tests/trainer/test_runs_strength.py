"""A run's life as TrainerService records it, at its edges: the judge it is given
is the one asked, a run that succeeded says nothing went wrong, a run stopped
with the trainer is failed as cancelled, a repeated request id returns its run
while another one holds the lock, and the reviews' own records. Pinned where the
mutation run (scripts/mutate, docs/testing.md) found a change that no test
noticed. Real interactions service and knowledge index."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, expect_status, processed, upsert
from tests.trainer.builders import HeldTeacher, disliked, finished, kinds_of_fix
from trainer import loop
from trainer.loop import Policy
from trainer.runs import Trainer

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)


class NoJudge:
    """A judge that finds nothing covered, and keeps the questions it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def covering(self, question, candidates):
        self.asked.append(question)
        return None


async def test_the_run_asks_the_judge_it_was_given_and_a_success_has_no_error(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy, trainer.judge = Teacher(), REVIEW, NoJudge()
    await upsert(knowledge, RETURNS, SHIPPING)
    # The bot did not know; the returns entry might answer it: a question for the judge.
    await disliked(interactions, "How do I return an item I bought?")
    done = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert done.state == pb.RUN_STATE_SUCCEEDED and done.error_message == ""
    assert trainer.judge.asked == ["How do I return an item I bought?"]
    assert done.counts.gap == 1  # the judge said nothing covers it: a new entry


async def test_a_run_stopped_with_the_trainer_is_failed_as_cancelled(trainer_setup, interactions):
    stub, trainer = trainer_setup
    held = trainer.teacher = HeldTeacher()
    trainer.policy = REVIEW
    await disliked(interactions, "Do you rent out tents?")
    run, task = await trainer.start(uuid.uuid4(), "manual", True)
    assert task is not None
    await asyncio.sleep(0.5)  # the run is with the teacher now
    task.cancel()
    held.release.set()  # nothing waits on it once the run is cancelled
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped = (await stub.GetRun(pb.GetRunRequest(run_id=str(run.run_id)))).run
    assert stopped.state == pb.RUN_STATE_FAILED
    assert stopped.error_message == "cancelled: the trainer stopped during the run"
    # The lock went with it: the next run starts.
    trainer.teacher = Teacher()
    assert (await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)).state == \
        pb.RUN_STATE_SUCCEEDED


async def test_a_finished_runs_request_id_returns_it_while_another_run_holds_the_lock(trainer_setup, interactions):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await disliked(interactions, "Do you rent out tents?")
    earlier = str(uuid.uuid4())
    await finished(stub, (await stub.StartRun(pb.StartRunRequest(request_id=earlier, force=True))).run.run_id)
    held = trainer.teacher = HeldTeacher()
    await disliked(interactions, "Do you sell gift cards?")
    running = (await stub.StartRun(pb.StartRunRequest(force=True))).run
    try:
        again = (await stub.StartRun(pb.StartRunRequest(request_id=earlier))).run
        assert (again.run_id, again.state) == (earlier, pb.RUN_STATE_SUCCEEDED)
        details = await expect_status(stub.StartRun(pb.StartRunRequest()), grpc.StatusCode.FAILED_PRECONDITION)
        assert details == "another trainer run is in progress; try again when it has finished"
    finally:
        held.release.set()  # whatever failed above, the held run ends
    assert (await finished(stub, running.run_id)).state == pb.RUN_STATE_SUCCEEDED


async def test_reviews_mark_the_questions_with_the_fixs_run_and_record_what_they_did(trainer_setup, interactions,
                                                                                     knowledge):
    stub, trainer = trainer_setup
    fixes = await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW,
                               "Delivery takes 1-2 business days now.")
    add, edit, new = fixes[pb.FIX_KIND_ADD_PHRASINGS], fixes[pb.FIX_KIND_EDIT_ANSWER], fixes[pb.FIX_KIND_NEW_ENTRY]
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=add.fix_id, answer="x",
                                                                       reviewer="ana")),
                                  grpc.StatusCode.INVALID_ARGUMENT)
    assert details == ("answer: must be empty for an ADD_PHRASINGS fix: it adds phrasings to an entry and has no "
                       "answer of its own")
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=add.fix_id, reviewer="ana"))).fix
    assert approved.previous_answer == ""  # it replaced no answer
    stored = await processed(interactions)
    (question,) = add.interaction_ids
    assert (stored[question].training_outcome, stored[question].training_run_id) == (
        ipb.TRAINING_OUTCOME_FIXED, add.run_id)

    # The entry was edited by hand after the proposal: the approval replaces that answer,
    # and the rollback brings that one back, not the answer the proposal saw.
    by_hand = "Standard shipping takes 2-4 business days."
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=bpb.KnowledgeEntry(entry_id="faq-shipping",
                                                                                 content=by_hand),
                                                       update_mask={"paths": ["content"]}))
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=edit.fix_id, reviewer="ana"))).fix
    assert approved.previous_answer == by_hand
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=edit.fix_id, reviewer="ana"))
    assert (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-shipping"))).entry.content == by_hand

    # A proposed new entry someone deleted by hand can still be rejected.
    await knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id=new.fix_id))
    rejected = (await stub.RejectFix(pb.RejectFixRequest(fix_id=new.fix_id, reviewer="ana"))).fix
    assert rejected.state == pb.FIX_STATE_REJECTED
    (asked,) = new.interaction_ids
    assert (await processed(interactions))[asked].training_outcome == ipb.TRAINING_OUTCOME_REJECTED


class BrokenIndex:
    """The knowledge service, except that searching fails with `error`."""

    def __init__(self, knowledge, error: Exception) -> None:
        self.knowledge = knowledge
        self.error = error

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def BatchSearchKnowledge(self, request, **options):
        raise self.error


async def test_a_run_that_breaks_is_failed_with_the_cause_and_logged(trainer_setup, interactions, caplog):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    trainer.knowledge = BrokenIndex(trainer.knowledge, RuntimeError("the index is gone " + "x" * 2000))
    await disliked(interactions, "Do you rent out tents?")
    done = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert done.state == pb.RUN_STATE_FAILED
    assert done.error_message == ("RuntimeError: the index is gone " + "x" * 2000)[:1000]
    (record,) = [r for r in caplog.records if r.name == "trainer.runs" and r.levelname == "ERROR"]
    assert record.getMessage() == "run failed" and record.run_id == done.run_id and record.exc_info is not None


async def test_a_new_fix_is_titled_by_its_question_and_says_which_run_made_it(trainer_setup, interactions, knowledge,
                                                                             monkeypatch):
    """Also where the server's clock is not on UTC: the provenance's time is the real time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        stub, trainer = trainer_setup
        trainer.teacher, trainer.policy = Teacher(), REVIEW
        await disliked(interactions, "Do you rent out tents?")
        before = datetime.now(UTC)
        done = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
        (fix,) = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
        entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.fix_id))).entry
        assert entry.title == "Do you rent out tents?"
        assert (entry.provenance.training_run_id, entry.provenance.created_by) == (done.run_id, "trainer")
        made = entry.provenance.create_time.ToDatetime(UTC)
        assert abs((made - before).total_seconds()) < 120
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


async def test_a_judge_given_to_the_trainer_is_the_one_asked(trainer_setup, interactions, knowledge):
    _, trainer = trainer_setup
    judge = NoJudge()
    given = Trainer(trainer.pool, trainer.interactions, trainer.knowledge, Teacher(), REVIEW, judge=judge)
    await upsert(knowledge, RETURNS, SHIPPING)
    await disliked(interactions, "How do I return an item I bought?")
    _, task = await given.start(uuid.uuid4(), "manual", True)
    assert task is not None
    await task
    assert judge.asked == ["How do I return an item I bought?"]


async def test_each_page_is_a_span_with_its_size(trainer_setup, interactions, spans):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await disliked(interactions, "Do you rent out tents?")
    await disliked(interactions, "Do you sell gift cards?")
    await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    pages = [s for s in spans.get_finished_spans() if s.name == "mend.trainer.page"]
    assert [s.attributes["mend.trainer.page_size"] for s in pages] == [2]


class RecordingIndex:
    """The knowledge service, keeping the batch searches it was asked for (and their deadline)."""

    def __init__(self, knowledge) -> None:
        self.knowledge = knowledge
        self.searches: list[tuple[bpb.BatchSearchKnowledgeRequest, float | None]] = []

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def BatchSearchKnowledge(self, request, **options):
        self.searches.append((request, options.get("timeout")))
        return await self.knowledge.BatchSearchKnowledge(request, **options)


async def test_a_page_searches_three_hits_of_published_and_proposed_entries_with_two_minutes(
        trainer_setup, interactions):
    """A page's search embeds up to 1,000 questions: longer than a call's default deadline. Its new
    fixes' questions are searched once more, for the five published entries nearest each."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    trainer.knowledge = recording = RecordingIndex(trainer.knowledge)
    await disliked(interactions, "Do you rent out tents?")
    await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    ((request, timeout), (nearby, nearby_timeout)) = recording.searches
    assert timeout == 120 and request.peer_similarity == pytest.approx(REVIEW.duplicate_similarity)
    assert [(q.query, q.k, list(q.statuses)) for q in request.queries] == [
        ("Do you rent out tents?", 3, [bpb.ENTRY_STATUS_PUBLISHED, bpb.ENTRY_STATUS_PROPOSED])]
    assert nearby_timeout == 120 and nearby.peer_similarity == 0
    assert [(q.query, q.k, list(q.statuses)) for q in nearby.queries] == [("Do you rent out tents?", 5, [])]


async def test_counts_add_up_over_pages_and_a_question_with_no_words_is_covered_by_nothing(
        trainer_setup, interactions, monkeypatch):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    monkeypatch.setattr(loop, "PAGE", 2)
    noise = await disliked(interactions, "???")
    for question in ("Do you rent out tents?", "Do you sell gift cards?", "Can I pay with bitcoin?"):
        await disliked(interactions, question)
    done = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert (done.counts.read, done.counts.gap, done.counts.no_action, done.counts.covered,
            done.counts.proposed) == (4, 3, 1, 1, 3), done.counts
    marked = (await processed(interactions))[noise]
    assert (marked.training_outcome, marked.knowledge_entry_id) == (ipb.TRAINING_OUTCOME_COVERED, "")


class NoNearbySearch:
    """The knowledge service, except that the search for a new fix's nearby entries is unavailable."""

    def __init__(self, knowledge) -> None:
        self.knowledge = knowledge

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def BatchSearchKnowledge(self, request, **options):
        if all(query.k == loop.NEARBY for query in request.queries):
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details="the index is restarting")
        return await self.knowledge.BatchSearchKnowledge(request, **options)


async def test_a_fix_lists_no_nearby_entries_when_their_search_fails_and_the_log_says_why(
        trainer_setup, interactions, knowledge, caplog):
    """The nearby entries are a suggestion for the reviewer: the fix is still proposed."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    trainer.knowledge = NoNearbySearch(trainer.knowledge)
    await upsert(knowledge, RETURNS, SHIPPING)
    await disliked(interactions, "Do you rent out tents?")
    done = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert (done.state, done.counts.proposed) == (pb.RUN_STATE_SUCCEEDED, 1), done.error_message
    (fix,) = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert fix.question == "Do you rent out tents?" and list(fix.nearby_entries) == []
    (record,) = [r for r in caplog.records if r.name == "trainer" and r.levelname == "WARNING"
                 and "nearby" in r.getMessage()]
    assert record.getMessage() == "no nearby entries for this page's new fixes: UNAVAILABLE"
    assert record.run_id == done.run_id

"""TrainerService (admin) over real channels: runs, fixes, review and undo,
one run at a time, bad input."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import Teacher, dislike, expect_status, free_port, processed
from tests.trainer.builders import HeldTeacher, PausingTeacher, finished


async def run_with_fixes(stub, trainer, interactions) -> tuple[pb.Run, list[pb.Fix], list[str]]:
    trainer.teacher = Teacher()
    ids = await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    started = (await stub.StartRun(pb.StartRunRequest())).run
    assert started.state == pb.RUN_STATE_RUNNING and started.trigger == pb.RUN_TRIGGER_MANUAL
    run = await finished(stub, started.run_id)
    fixes = list((await stub.ListFixes(pb.ListFixesRequest(run_id=run.run_id))).fixes)
    return run, fixes, ids


async def test_a_run_is_recorded_with_its_counts_and_fixes(trainer_setup, interactions):
    stub, trainer = trainer_setup
    run, fixes, ids = await run_with_fixes(stub, trainer, interactions)
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.publish_policy == pb.PUBLISH_POLICY_REVIEW
    assert (run.counts.read, run.counts.proposed, run.counts.fixed) == (2, 2, 0)
    assert run.HasField("end_time") and run.feedback_threshold == 2
    assert {f.state for f in fixes} == {pb.FIX_STATE_PROPOSED} and len(fixes) == 2
    assert sorted(i for f in fixes for i in f.interaction_ids) == sorted(ids)
    assert [r.run_id for r in (await stub.ListRuns(pb.ListRunsRequest())).runs] == [run.run_id]


async def test_approve_with_an_edited_answer_publishes_it(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    _, fixes, _ = await run_with_fixes(stub, trainer, interactions)
    fix = next(f for f in fixes if f.question == "Do you rent out tents?")
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(
        fix_id=fix.fix_id, answer="Yes: tents rent for 15 euros a weekend.", reviewer="ana", note="checked"))).fix
    assert approved.state == pb.FIX_STATE_PUBLISHED and approved.reviewer == "ana"
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id))).entry
    assert entry.status == bpb.ENTRY_STATUS_PUBLISHED and entry.content == "Yes: tents rent for 15 euros a weekend."
    assert (await processed(interactions))[fix.interaction_ids[0]].training_outcome == ipb.TRAINING_OUTCOME_FIXED
    hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(query="Can I hire a tent?", k=1))).hits
    assert hits[0].entry.entry_id == fix.entry_id
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "published")


async def test_reject_and_rollback_take_the_entry_out_of_the_index(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    _, fixes, _ = await run_with_fixes(stub, trainer, interactions)
    rejected, rolled = fixes
    await stub.RejectFix(pb.RejectFixRequest(fix_id=rejected.fix_id, reviewer="ana"))
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=rolled.fix_id, reviewer="ana"))
    undone = (await stub.RollbackFix(pb.RollbackFixRequest(fix_id=rolled.fix_id, reviewer="ana",
                                                           note="wrong price"))).fix
    assert undone.state == pb.FIX_STATE_ROLLED_BACK and undone.review_note == "wrong price"
    for fix in (rejected, rolled):
        await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id)), grpc.StatusCode.NOT_FOUND)
    stored = await processed(interactions)
    assert stored[rejected.interaction_ids[0]].training_outcome == ipb.TRAINING_OUTCOME_REJECTED
    assert stored[rolled.interaction_ids[0]].training_outcome == ipb.TRAINING_OUTCOME_ROLLED_BACK
    await expect_status(stub.RollbackFix(pb.RollbackFixRequest(fix_id=rolled.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "rolled_back")
    await expect_status(stub.RejectFix(pb.RejectFixRequest(fix_id=rejected.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "rejected")


async def test_one_run_at_a_time_and_request_ids_are_idempotent(trainer_setup, interactions):
    stub, trainer = trainer_setup
    trainer.teacher = HeldTeacher()
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    request_id = str(uuid.uuid4())
    try:
        first = (await stub.StartRun(pb.StartRunRequest(request_id=request_id))).run
        assert first.run_id == request_id
        again = (await stub.StartRun(pb.StartRunRequest(request_id=request_id))).run
        assert again.run_id == request_id and again.state == pb.RUN_STATE_RUNNING
        await expect_status(stub.StartRun(pb.StartRunRequest()), grpc.StatusCode.FAILED_PRECONDITION, "in progress")
    finally:
        # Released whatever happened: the fixture waits for the run, which waits for the teacher,
        # so a failed assert above would otherwise hang the suite instead of failing it.
        trainer.teacher.release.set()
    assert (await finished(stub, request_id)).state == pb.RUN_STATE_SUCCEEDED
    # Nothing left to process: a second run reads nothing and marks nothing twice.
    second = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert second.counts.read == 0


async def test_below_the_threshold_a_run_is_skipped_unless_forced(trainer_setup, interactions):
    stub, trainer = trainer_setup
    trainer.teacher = Teacher()
    await dislike(interactions, "Do you rent out tents?")
    skipped = await finished(stub, (await stub.StartRun(pb.StartRunRequest())).run.run_id)
    assert skipped.state == pb.RUN_STATE_SKIPPED_BELOW_THRESHOLD and skipped.counts.gated == 1
    forced = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert forced.state == pb.RUN_STATE_SUCCEEDED and forced.forced and forced.counts.proposed == 1
    runs = (await stub.ListRuns(pb.ListRunsRequest(page_size=1))).runs
    assert [r.run_id for r in runs] == [forced.run_id]


async def test_runs_and_fixes_page_newest_first_ties_broken_by_id(trainer_setup, pool):
    from datetime import UTC, datetime, timedelta

    stub, _ = trainer_setup
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    runs = [(uuid.uuid4(), at - timedelta(minutes=n // 3), "failed" if n % 2 else "succeeded") for n in range(7)]
    await pool.executemany("INSERT INTO trainer_runs (run_id, state, trigger, publish_policy, feedback_threshold, "
                           "start_time) VALUES ($1, $3, 'schedule', 'review', 2, $2)", runs)
    fixes = [(f"fix-{n:02d}", runs[n % 2][0], at - timedelta(minutes=n // 3)) for n in range(7)]
    await pool.executemany("INSERT INTO trainer_fixes (fix_id, run_id, questions, answer, interaction_ids, state, "
                           "teacher_model, prompt_version, create_time) "
                           "VALUES ($1, $2, '{q}', 'a', '{}', 'proposed', 'm', 'v', $3)", fixes)

    async def every(list_page, request, field: str) -> tuple[list, int]:
        """Every item, following the page tokens; and how many pages that took."""
        found, pages = [], 0
        while True:
            response = await list_page(request)
            pages += 1
            found += getattr(response, field)
            if not response.next_page_token:
                return found, pages
            request.page_token = response.next_page_token

    newest = sorted(runs, key=lambda r: (r[1], r[0]), reverse=True)
    found, pages = await every(stub.ListRuns, pb.ListRunsRequest(page_size=2), "runs")
    assert [r.run_id for r in found] == [str(r[0]) for r in newest] and pages == 4
    found, _ = await every(stub.ListRuns, pb.ListRunsRequest(page_size=2, state=pb.RUN_STATE_FAILED), "runs")
    assert [r.run_id for r in found] == [str(r[0]) for r in newest if r[2] == "failed"]
    found, _ = await every(stub.ListFixes, pb.ListFixesRequest(page_size=2, run_id=str(runs[0][0])), "fixes")
    ones = sorted((f for f in fixes if f[1] == runs[0][0]), key=lambda f: (f[2], f[0]), reverse=True)
    assert [f.fix_id for f in found] == [f[0] for f in ones] == ["fix-02", "fix-00", "fix-04", "fix-06"]
    # A token serves only the filters it was issued for.
    token = (await stub.ListFixes(pb.ListFixesRequest(page_size=1, run_id=str(runs[0][0])))).next_page_token
    await expect_status(stub.ListFixes(pb.ListFixesRequest(page_size=1, page_token=token)),
                        grpc.StatusCode.INVALID_ARGUMENT, "page_token", "different filters")


async def test_bad_admin_input(trainer_setup):
    stub, _ = trainer_setup
    await expect_status(stub.GetRun(pb.GetRunRequest(run_id="nope")), grpc.StatusCode.INVALID_ARGUMENT, "run_id")
    missing = str(uuid.uuid4())
    await expect_status(stub.GetRun(pb.GetRunRequest(run_id=missing)), grpc.StatusCode.NOT_FOUND, missing)
    await expect_status(stub.GetFix(pb.GetFixRequest(fix_id="fix-unknown")), grpc.StatusCode.NOT_FOUND, "fix-unknown")
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest()), grpc.StatusCode.INVALID_ARGUMENT, "fix_id")
    for unsigned in (stub.ApproveFix(pb.ApproveFixRequest(fix_id="fix-unknown")),
                     stub.RejectFix(pb.RejectFixRequest(fix_id="fix-unknown", reviewer=" ")),
                     stub.RollbackFix(pb.RollbackFixRequest(fix_id="fix-unknown"))):
        await expect_status(unsigned, grpc.StatusCode.INVALID_ARGUMENT, "reviewer")
    await expect_status(stub.ListFixes(pb.ListFixesRequest(page_size=5000)), grpc.StatusCode.INVALID_ARGUMENT,
                        "page_size")
    await expect_status(stub.ListRuns(pb.ListRunsRequest(state=42)), grpc.StatusCode.INVALID_ARGUMENT, "state")
    await expect_status(stub.ListRuns(pb.ListRunsRequest(page_token="forged")), grpc.StatusCode.INVALID_ARGUMENT,
                        "page_token")
    await expect_status(stub.StartRun(pb.StartRunRequest(request_id="x")), grpc.StatusCode.INVALID_ARGUMENT,
                        "request_id")


async def running(stub, run_id: str, ready) -> pb.Run:
    """The run as GetRun shows it once `ready(run)` (polled)."""
    for _ in range(300):
        run = (await stub.GetRun(pb.GetRunRequest(run_id=run_id))).run
        if ready(run):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"GetRun never showed it: {run}")


async def test_a_running_run_shows_its_progress_page_by_page(trainer_setup, interactions, monkeypatch, caplog):
    from trainer import loop

    stub, trainer = trainer_setup
    monkeypatch.setattr(loop, "PAGE", 2)
    trainer.teacher = PausingTeacher("Do you repair zips on jackets?")
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?", "Do you repair zips on jackets?")
    with caplog.at_level("INFO", logger="trainer"):
        run_id = (await stub.StartRun(pb.StartRunRequest())).run.run_id
        run = await running(stub, run_id, lambda run: run.counts.gap == 3)
        # The first page is done and on record; the second is triaged and waits on the teacher.
        assert run.state == pb.RUN_STATE_RUNNING and trainer.teacher.waiting.is_set()
        assert (run.counts.read, run.counts.proposed) == (3, 2)
        trainer.teacher.release.set()
        run = await finished(stub, run_id)
    assert (run.counts.read, run.counts.proposed) == (3, 3)
    pages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("page ")]
    assert pages == ["page 1 done: read 2, covered 0, fixed 0, proposed 2, failed 0",
                     "page 2 done: read 3, covered 0, fixed 0, proposed 3, failed 0"]


async def test_a_page_shows_what_it_read_and_how_it_triaged_it_before_the_teacher_answers(
        trainer_setup, interactions):
    """With the embedded teacher a page's answers take minutes to hours: GetRun
    shows the page's triage while they are written, and the fixes once done."""
    stub, trainer = trainer_setup
    trainer.teacher = PausingTeacher("Do you rent out tents?")
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    run_id = (await stub.StartRun(pb.StartRunRequest())).run.run_id
    run = await running(stub, run_id, lambda run: run.counts.read)
    await asyncio.wait_for(trainer.teacher.waiting.wait(), 30)
    run = await running(stub, run_id, lambda run: run.counts.gap)
    assert run.state == pb.RUN_STATE_RUNNING
    assert (run.counts.read, run.counts.gap, run.counts.proposed, run.counts.failed) == (2, 2, 0, 0)
    trainer.teacher.release.set()
    run = await finished(stub, run_id)
    assert (run.state, run.counts.read, run.counts.gap, run.counts.proposed) == (pb.RUN_STATE_SUCCEEDED, 2, 2, 2)


async def test_a_run_past_its_threshold_shows_what_it_read_before_it_replays_the_regression_set(
        trainer_setup, interactions, monkeypatch):
    """Replaying the regression set can take a minute (5,000 liked questions
    embedded cold): GetRun already says how many dislikes the run read."""
    from trainer import loop

    stub, trainer = trainer_setup
    trainer.teacher = Teacher()
    release, replaying, replay = asyncio.Event(), asyncio.Event(), loop.regressions.replay

    async def slow_replay(*args, **kwargs):
        replaying.set()
        await release.wait()
        return await replay(*args, **kwargs)

    monkeypatch.setattr(loop.regressions, "replay", slow_replay)
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    run_id = (await stub.StartRun(pb.StartRunRequest())).run.run_id
    await asyncio.wait_for(replaying.wait(), 30)
    run = await running(stub, run_id, lambda run: run.counts.read)
    assert (run.state, run.counts.read, run.counts.gap, run.counts.proposed) == (pb.RUN_STATE_RUNNING, 2, 0, 0)
    release.set()
    assert (await finished(stub, run_id)).counts.proposed == 2


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_a_review_made_while_a_run_is_on_a_later_page_stands(trainer_setup, interactions, knowledge,
                                                                      monkeypatch, action):
    from trainer import loop

    stub, trainer = trainer_setup
    monkeypatch.setattr(loop, "PAGE", 2)
    trainer.teacher = PausingTeacher("Do you repair zips on jackets?")
    # Page 2 holds a near-duplicate of page 1's tents fix, and a new question the teacher waits on.
    ids = await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?",
                        "Can I rent a tent from you?", "Do you repair zips on jackets?")
    run_id = (await stub.StartRun(pb.StartRunRequest())).run.run_id
    await asyncio.wait_for(trainer.teacher.waiting.wait(), 30)  # page 1 is written, page 2 is being taught
    fixes = (await stub.ListFixes(pb.ListFixesRequest(run_id=run_id))).fixes
    tents = next(f for f in fixes if f.question == "Do you rent out tents?")
    edited = "Yes: tents rent for 15 euros a weekend, poles included."
    if action == "approve":
        await stub.ApproveFix(pb.ApproveFixRequest(fix_id=tents.fix_id, answer=edited, reviewer="ana"))
    else:
        await stub.RejectFix(pb.RejectFixRequest(fix_id=tents.fix_id, reviewer="ana", note="we do not rent"))
    trainer.teacher.release.set()
    run = await finished(stub, run_id)
    assert run.state == pb.RUN_STATE_SUCCEEDED
    fix = (await stub.GetFix(pb.GetFixRequest(fix_id=tents.fix_id))).fix
    assert list(fix.questions) == ["Do you rent out tents?", "Can I rent a tent from you?"]
    assert list(fix.interaction_ids) == [ids[0], ids[2]]
    stored = await processed(interactions)
    if action == "approve":
        assert fix.state == pb.FIX_STATE_PUBLISHED and fix.answer == edited
        entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=tents.entry_id))).entry
        assert entry.status == bpb.ENTRY_STATUS_PUBLISHED and entry.content == edited
        assert list(entry.questions) == list(fix.questions)
        assert list(entry.provenance.interaction_ids) == [ids[0], ids[2]]
        assert stored[ids[2]].training_outcome == ipb.TRAINING_OUTCOME_FIXED
        assert (run.counts.fixed, run.counts.proposed) == (1, 3)
    else:
        assert fix.state == pb.FIX_STATE_REJECTED and fix.answer == tents.answer
        await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=tents.entry_id)),
                            grpc.StatusCode.NOT_FOUND)
        assert stored[ids[2]].training_outcome == ipb.TRAINING_OUTCOME_REJECTED
        assert (run.counts.fixed, run.counts.proposed) == (0, 3)
    assert stored[ids[2]].processed_for_training and stored[ids[2]].knowledge_entry_id == tents.entry_id


async def test_an_approve_and_a_reject_of_one_fix_at_once_one_wins(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    _, fixes, _ = await run_with_fixes(stub, trainer, interactions)
    fix = fixes[0]
    results = await asyncio.gather(
        stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
        stub.RejectFix(pb.RejectFixRequest(fix_id=fix.fix_id, reviewer="bo")), return_exceptions=True)
    won = [r.fix for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    stored = (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix
    assert stored.state == won[0].state
    outcome = (await processed(interactions))[fix.interaction_ids[0]].training_outcome
    if stored.state == pb.FIX_STATE_PUBLISHED:
        assert (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id))).entry.status == \
            bpb.ENTRY_STATUS_PUBLISHED and outcome == ipb.TRAINING_OUTCOME_FIXED
    else:
        await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id)), grpc.StatusCode.NOT_FOUND)
        assert outcome == ipb.TRAINING_OUTCOME_REJECTED


async def test_a_run_whose_process_stopped_is_marked_abandoned_by_the_next_run(trainer_setup, interactions, pool):
    stub, trainer = trainer_setup
    trainer.teacher = Teacher()
    killed = uuid.uuid4()
    await pool.execute("INSERT INTO trainer_runs (run_id, state, trigger, publish_policy, feedback_threshold) "
                       "VALUES ($1, 'running', 'schedule', 'review', 2)", killed)
    await dislike(interactions, "Do you rent out tents?")
    started = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert started.state == pb.RUN_STATE_SUCCEEDED
    stopped = (await stub.GetRun(pb.GetRunRequest(run_id=str(killed)))).run
    assert stopped.state == pb.RUN_STATE_FAILED and stopped.HasField("end_time")
    assert stopped.error_message == "abandoned: the process running it stopped"


class _FinalUpdateFails:
    """The trainer's pool, except that a run's final UPDATE of its row fails."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def __getattr__(self, name):
        return getattr(self.pool, name)

    async def acquire(self):
        connection = await self.pool.acquire()

        class Connection:
            def __getattr__(self, name):
                return getattr(connection, name)

            async def execute(self, sql, *args):
                if sql.startswith("UPDATE trainer_runs SET state = $2"):
                    raise ConnectionError("the database went away")
                return await connection.execute(sql, *args)

        wrapped = Connection()
        wrapped.real = connection
        return wrapped

    async def release(self, connection) -> None:
        await self.pool.release(getattr(connection, "real", connection))


async def test_a_run_that_cannot_record_its_end_still_releases_the_lock(trainer_setup, interactions, pool):
    stub, trainer = trainer_setup
    trainer.teacher = Teacher()
    await dislike(interactions, "Do you rent out tents?")
    trainer.pool = _FinalUpdateFails(pool)
    first = (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id
    for _ in range(300):
        if await pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0:
            break
        await asyncio.sleep(0.05)
    trainer.pool = pool
    # Not FAILED_PRECONDITION: the lock went with the failed run; that run is abandoned.
    second = await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)
    assert second.state == pb.RUN_STATE_SUCCEEDED
    assert (await stub.GetRun(pb.GetRunRequest(run_id=first))).run.state == pb.RUN_STATE_FAILED


async def test_two_starts_with_one_request_id_at_once_return_the_same_run(trainer_setup, interactions):
    stub, trainer = trainer_setup
    trainer.teacher = Teacher()
    await dislike(interactions, "Do you rent out tents?")
    request_id = str(uuid.uuid4())
    for _ in range(5):
        runs = await asyncio.gather(*(stub.StartRun(pb.StartRunRequest(request_id=request_id, force=True))
                                      for _ in range(2)))
        assert {r.run.run_id for r in runs} == {request_id}
        await finished(stub, request_id)
        request_id = str(uuid.uuid4())


async def test_a_review_while_the_bot_is_down_is_unavailable_naming_the_dependency(trainer_setup, interactions):
    from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc

    stub, trainer = trainer_setup
    _, fixes, _ = await run_with_fixes(stub, trainer, interactions)
    reachable = trainer.knowledge
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as nowhere:
        trainer.knowledge = bpb_grpc.KnowledgeServiceStub(nowhere)
        try:
            await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fixes[0].fix_id, reviewer="ana")),
                                grpc.StatusCode.UNAVAILABLE, "a service this one depends on is unavailable")
        finally:
            trainer.knowledge = reachable
    # Nothing changed: the fix can still be approved once the bot is back.
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fixes[0].fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fixes[0].fix_id, reviewer="ana"))


async def test_a_blank_edited_answer_is_invalid(trainer_setup, interactions):
    stub, trainer = trainer_setup
    _, fixes, _ = await run_with_fixes(stub, trainer, interactions)
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fixes[0].fix_id, answer="  \n ", reviewer="ana")),
                        grpc.StatusCode.INVALID_ARGUMENT, "answer")
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fixes[0].fix_id))).fix.state == pb.FIX_STATE_PROPOSED


async def test_a_start_right_after_a_run_ends_waits_for_its_lock_instead_of_refusing(trainer_setup, interactions,
                                                                                    database_url):
    """A run's row says it ended a moment before its lock goes; a start in that
    moment waits for the lock rather than answering "another run is in progress"
    (seen once as a flaky back-to-back start). A run really in progress is still refused."""
    import asyncpg

    from trainer.runs import RUN_LOCK

    stub, trainer = trainer_setup
    trainer.teacher = Teacher()
    await dislike(interactions, "Do you rent out tents?")
    holder = await asyncpg.connect(database_url)  # the lock held, no run running: a run letting go
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", RUN_LOCK)
        asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(
            holder.execute("SELECT pg_advisory_unlock_all()")))
        started = await stub.StartRun(pb.StartRunRequest(force=True))
        assert (await finished(stub, started.run.run_id)).state == pb.RUN_STATE_SUCCEEDED
    finally:
        await holder.close()


async def test_a_run_in_which_questions_failed_says_so(trainer_setup, interactions, caplog):
    """Not SUCCEEDED with an empty message: FAILED, how many failed and why, and
    an ERROR line in the log; the other question's fix is still written."""
    import logging

    stub, trainer = trainer_setup
    trainer.teacher = Teacher(fail_on="tents")
    await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    with caplog.at_level(logging.ERROR, logger="trainer"):
        started = await stub.StartRun(pb.StartRunRequest(force=True))
        run = await finished(stub, started.run.run_id)
    assert run.state == pb.RUN_STATE_FAILED
    assert (run.counts.read, run.counts.proposed, run.counts.failed) == (2, 1, 1)
    assert run.error_message.startswith("1 of 2 interactions failed and stay in the queue for the next run")
    assert "RuntimeError: teacher unavailable" in run.error_message
    assert any(r.levelno == logging.ERROR and "1 of 2 interactions failed" in r.getMessage() for r in caplog.records)

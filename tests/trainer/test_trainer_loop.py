"""The self-healing loop (one run) against the real interactions service and
the real knowledge index (pgvector, MiniLM), with a deterministic teacher."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.credentials import TRAINER
from tests.support import BRAND, PYTHON, REPO, RETURNS, Teacher, channel, dislike, free_port, processed, upsert
from trainer.loop import SOURCE, Policy, run_once

AUTO = Policy(threshold=2, publish="auto", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
REVIEW = Policy(threshold=2, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)


async def fixes(knowledge) -> list[bpb.KnowledgeEntry]:
    return list((await knowledge.ListEntries(bpb.ListEntriesRequest(source=SOURCE))).entries)


async def test_below_the_threshold_nothing_happens(interactions, knowledge):
    await dislike(interactions, "Do you rent tents?")
    teacher = Teacher()
    counts = await run_once(interactions, knowledge, teacher, AUTO)
    assert (counts.read, counts.gated, counts.fixed) == (1, 1, 0)
    assert teacher.asked == [] and await fixes(knowledge) == []
    assert not any(i.processed_for_training for i in (await processed(interactions)).values())


async def test_covered_questions_are_skipped_and_new_ones_fixed_and_published(interactions, knowledge):
    await upsert(knowledge, RETURNS)
    covered_id, fixed_id = await dislike(interactions, "What is your return policy?", "Do you rent out tents?")
    teacher = Teacher()
    counts = await run_once(interactions, knowledge, teacher, AUTO, run_id="run-1")
    assert (counts.read, counts.covered, counts.fixed, counts.failed) == (2, 1, 1, 0)
    assert teacher.asked == ["Do you rent out tents?"]
    stored = await processed(interactions)
    assert stored[covered_id].training_outcome == ipb.TRAINING_OUTCOME_COVERED
    assert stored[covered_id].knowledge_entry_id == "faq-returns"
    fix = (await fixes(knowledge))[0]
    assert stored[fixed_id].training_outcome == ipb.TRAINING_OUTCOME_FIXED
    assert stored[fixed_id].knowledge_entry_id == fix.entry_id and stored[fixed_id].training_run_id == "run-1"
    assert fix.status == bpb.ENTRY_STATUS_PUBLISHED and fix.source == SOURCE
    assert list(fix.provenance.interaction_ids) == [fixed_id]
    assert (fix.provenance.teacher_model, fix.provenance.prompt_version) == ("teacher-double", "fix-v2")
    # The bot now finds the fix for a paraphrase of the disliked question.
    hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(query="Can I hire a tent from you?", k=1))).hits
    assert hits[0].entry.entry_id == fix.entry_id and "rent tents" in hits[0].entry.content


async def test_near_duplicates_become_one_fix_with_every_phrasing(interactions, knowledge):
    ids = await dislike(interactions, "Do you rent out tents?", "Can I rent a tent from you?",
                        "Do you sell gift cards?")
    teacher = Teacher()
    counts = await run_once(interactions, knowledge, teacher, AUTO)
    assert counts.fixed == 3 and len(teacher.asked) == 2
    by_questions = {tuple(f.questions): f for f in await fixes(knowledge)}
    tents = by_questions[("Do you rent out tents?", "Can I rent a tent from you?")]
    assert sorted(tents.provenance.interaction_ids) == sorted(ids[:2])


async def test_under_review_fixes_wait_and_do_not_answer_customers(interactions, knowledge):
    ids = await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    counts = await run_once(interactions, knowledge, Teacher(), REVIEW)
    assert (counts.proposed, counts.fixed) == (2, 0)
    assert {f.status for f in await fixes(knowledge)} == {bpb.ENTRY_STATUS_PROPOSED}
    stored = await processed(interactions)
    assert {stored[i].training_outcome for i in ids} == {ipb.TRAINING_OUTCOME_PROPOSED}
    hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(query="Do you rent out tents?"))).hits
    assert all(h.entry.source != SOURCE for h in hits)


async def test_a_failing_teacher_leaves_the_question_for_the_next_run(interactions, knowledge):
    failing, fine = await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    counts = await run_once(interactions, knowledge, Teacher(fail_on="tents"), AUTO)
    assert (counts.failed, counts.fixed) == (1, 1)
    stored = await processed(interactions)
    assert not stored[failing].processed_for_training
    assert stored[failing].training_outcome == ipb.TRAINING_OUTCOME_FAILED
    again = await run_once(interactions, knowledge, Teacher(), Policy(1, "auto", 0.8, 0.7, BRAND))
    assert (again.read, again.fixed) == (1, 1)


class CrashBeforeMarking:
    """The interactions stub, except that the run dies when it marks."""

    def __init__(self, stub) -> None:
        self.stub = stub
        self.ListInteractions = stub.ListInteractions

    async def MarkProcessed(self, request):
        raise RuntimeError("killed")


async def test_a_run_killed_before_marking_then_run_again_writes_no_duplicate(interactions, knowledge):
    ids = await dislike(interactions, "Do you rent out tents?", "Can I rent a tent from you?",
                        "Do you sell gift cards?")
    with pytest.raises(RuntimeError, match="killed"):
        await run_once(CrashBeforeMarking(interactions), knowledge, Teacher(), AUTO)
    written = sorted(f.entry_id for f in await fixes(knowledge))
    assert len(written) == 2
    counts = await run_once(interactions, knowledge, Teacher(), AUTO)
    assert counts.read == 3 and counts.failed == 0
    assert sorted(f.entry_id for f in await fixes(knowledge)) == written
    stored = await processed(interactions)
    assert all(stored[i].processed_for_training for i in ids)
    assert {stored[i].knowledge_entry_id for i in ids} == set(written)


async def test_the_job_command_reports_its_counts_and_fails_with_status_1(interactions, knowledge, database_url,
                                                                          interactions_address, knowledge_address):
    import asyncio
    import os

    await dislike(interactions, "Do you rent out tents?")

    async def job(env: dict[str, str], command: str = "run") -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "trainer", command, cwd=REPO, env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
        return process.returncode, output

    # As in the cluster: a managed database is migrated first (the Helm hook), not by the Job.
    code, output = await job({"DATABASE_URL": database_url}, "migrate")
    assert code == 0, output
    code, output = await job({"DATABASE_URL": database_url, "INTERACTIONS_ADDR": interactions_address,
                              "BOT_ADDR": knowledge_address, "FEEDBACK_THRESHOLD": "5"})
    assert code == 0, output
    assert "skipped_below_threshold: read 1, gated 1, covered 0, fixed 0" in output
    code, output = await job({"DATABASE_URL": database_url, "INTERACTIONS_ADDR": f"127.0.0.1:{free_port()}",
                              "BOT_ADDR": knowledge_address})
    assert code == 1 and " failed: read 0" in output and "UNAVAILABLE" in output
    code, output = await job({"MEND_PUBLISH_POLICY": "auto"})
    assert code == 2 and "MEND_PUBLISH_POLICY=auto needs a cloud teacher" in output

    # An admin's run holds the lock: the scheduled run steps aside and succeeds.
    import asyncpg

    from trainer.runs import RUN_LOCK

    holder = await asyncpg.connect(database_url)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", RUN_LOCK)
        code, output = await job({"DATABASE_URL": database_url, "INTERACTIONS_ADDR": interactions_address,
                                  "BOT_ADDR": knowledge_address})
    finally:
        await holder.close()
    assert code == 0, output
    assert "trainer: skipped: another trainer run is in progress" in output


async def test_the_migrate_command_migrates_a_new_database_without_loading_models(postgres_server, tmp_path):
    import os
    import subprocess

    import asyncpg

    from mendkit.embedded_postgres import ensure_database

    url = postgres_server.rsplit("/", 1)[0] + f"/mend_trainer_migrate_{os.getpid()}"
    await ensure_database(url)
    # A chat model that cannot load: `migrate` must not need one.
    env = {**os.environ, "DATABASE_URL": url, "MEND_LLM": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:9"}

    def migrate() -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-m", "trainer", "migrate"], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=120)

    first, second = migrate(), migrate()
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout and "migration(s)" in first.stdout
    assert second.returncode == 0 and "database is up to date" in second.stdout
    connection = await asyncpg.connect(url)
    try:
        tables = {r["tablename"] for r in await connection.fetch("SELECT tablename FROM pg_tables")}
    finally:
        await connection.close()
    assert {"trainer_runs", "trainer_fixes"} <= tables
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "mend_trainer_migrate_{os.getpid()}"')
    finally:
        await admin.close()


class YesNo:
    """A judge model double that says `reply` and records what it was shown."""

    model_id = "judge-double"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.shown: list[str] = []

    async def stream(self, messages, max_tokens):
        self.shown.append(messages[-1].content)
        yield self.reply


@pytest.mark.parametrize(("reply", "misrouted"), [("Yes.", 1), ("no", 0), ("I think so", 0)])
async def test_a_model_judge_decides_which_entry_answers_a_question_the_bot_missed(interactions, knowledge, reply,
                                                                                   misrouted):
    """The bot did not know; the judge says whether the entry found answers it
    (its phrasings join that entry) or not (a new entry)."""
    from trainer.judge import ModelJudge

    await upsert(knowledge, RETURNS)
    await dislike(interactions, "How do I send back an item?", "Can I return shoes I wore outside?")
    judge_model = YesNo(reply)
    counts = await run_once(interactions, knowledge, Teacher(), AUTO, judge=ModelJudge(judge_model))
    assert (counts.misrouted, counts.gap, counts.fixed, counts.covered) == (2 * misrouted, 2 - 2 * misrouted, 2, 0)
    assert "You can return unused items within 60 days" in judge_model.shown[0]  # it saw the retrieved entry
    assert judge_model.shown[0].rstrip().endswith("Does the knowledge above already answer the question?")
    returns = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    added = {"How do I send back an item?", "Can I return shoes I wore outside?"} & set(returns.questions)
    assert len(added) == 2 * misrouted
    assert len(await fixes(knowledge)) == 2 - 2 * misrouted


async def test_cloud_teacher_and_judge_default_to_sonnet_and_haiku(monkeypatch):
    from contextlib import AsyncExitStack

    from trainer.__main__ import HAIKU, SONNET, models
    from trainer.judge import ModelJudge, SimilarityJudge
    from trainer.settings import Settings

    monkeypatch.setenv("MEND_LLM", "bedrock")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("MEND_PUBLISH_POLICY", "auto")
    async with AsyncExitStack() as stack:
        teacher, judge = models(Settings.from_env(), stack)
        assert teacher.model_id == SONNET and isinstance(judge, ModelJudge) and judge.model.model_id == HAIKU
        monkeypatch.setenv("MEND_JUDGE_MODEL", "anthropic.claude-3-5-haiku-20241022-v1:0")
        assert models(Settings.from_env(), stack)[1].model.model_id == "anthropic.claude-3-5-haiku-20241022-v1:0"
        monkeypatch.setenv("MEND_LLM", "local")
        monkeypatch.setenv("MEND_PUBLISH_POLICY", "review")
        assert isinstance(models(Settings.from_env(), stack)[1], SimilarityJudge)


@pytest.mark.parametrize(("value", "reinforce"), [(None, True), ("false", False), ("true", True)])
def test_liked_questions_become_phrasings_unless_the_operator_says_not(monkeypatch, value, reinforce):
    from trainer.__main__ import policy
    from trainer.settings import Settings

    if value is not None:
        monkeypatch.setenv("MEND_LIKED_AS_PHRASINGS", value)
    assert policy(Settings.from_env()).reinforce is reinforce


# --- large runs: a few round trips per page, not one per question ---------------------


class Calls(grpc.aio.UnaryUnaryClientInterceptor):
    """Counts the RPCs a client makes, by method name."""

    def __init__(self) -> None:
        self.made: Counter[str] = Counter()

    async def intercept_unary_unary(self, continuation, details, request):
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        self.made[method.rsplit("/", 1)[-1]] += 1
        return await continuation(details, request)


@pytest.fixture
async def counted(interactions, knowledge, interactions_address, knowledge_address):
    """Stubs like `interactions` and `knowledge`, over channels that count every call."""
    calls = Calls()
    async with channel(interactions_address, TRAINER, interceptors=[calls]) as ichannel, \
            channel(knowledge_address, TRAINER, interceptors=[calls]) as kchannel:
        yield ipb_grpc.InteractionsServiceStub(ichannel), bpb_grpc.KnowledgeServiceStub(kchannel), calls


TENTS = ["Do you rent out tents?", "Can I rent a tent from you?", "Do you rent tents?", "Can I hire a tent?"]
OTHERS = ["Do you sell gift cards?", "Do you repair zips on jackets?", "Can I pay in instalments?",
          "Do you ship to Iceland?", "Do you have a student discount?", "Can I collect my order in a shop?",
          "Is the sleeping bag machine washable?", "Do you price match?"]


async def test_a_run_makes_a_few_calls_per_page_however_many_questions(counted, interactions, knowledge, monkeypatch):
    from trainer import loop

    monkeypatch.setattr(loop, "PAGE", 5)
    # The tents phrasings are spread over the three pages: the later ones join the fix an earlier page wrote.
    questions = [TENTS[0], *OTHERS[:4], TENTS[1], *OTHERS[4:], TENTS[2], TENTS[3]]
    ids = await dislike(interactions, *questions)
    counting_interactions, counting_knowledge, calls = counted
    teacher = Teacher()
    counts = await run_once(counting_interactions, counting_knowledge, teacher, REVIEW)
    assert (counts.read, counts.proposed, counts.failed) == (12, 12, 0)
    # One UpsertEntries per page holds its new fixes and the earlier fix that gained its questions
    # (proposed: with the status and answer on record for it, so a review made meanwhile stands;
    # a published one is read and updated on its own, test_approve_into.py).
    # One more ListInteractions reads the liked interactions (none here, so no evidence search),
    # and one ListEntries the published entries' phrasings for the regression set (none: no replay).
    # A page with new fixes searches their questions once more, for the entries nearby (the first
    # two pages; the third only grows the tents fix).
    assert calls.made == {"ListInteractions": 4, "ListEntries": 1, "BatchSearchKnowledge": 5, "UpsertEntries": 3,
                          "MarkProcessed": 3}
    assert sorted(teacher.asked) == sorted([TENTS[0], *OTHERS])  # one answer per fix
    tents = next(f for f in await fixes(knowledge) if TENTS[0] in f.questions)
    assert list(tents.questions) == TENTS
    assert list(tents.provenance.interaction_ids) == [ids[0], ids[5], ids[10], ids[11]]
    stored = await processed(interactions)
    assert {stored[i].knowledge_entry_id for i in (ids[0], ids[5], ids[10], ids[11])} == {tents.entry_id}


async def test_a_run_killed_after_a_page_grew_a_fix_adopts_it_when_run_again(interactions, knowledge, monkeypatch):
    from trainer import loop

    monkeypatch.setattr(loop, "PAGE", 2)
    ids = await dislike(interactions, TENTS[0], OTHERS[0], TENTS[1], TENTS[2])

    class KilledOnSecondPage:
        def __init__(self, stub) -> None:
            self.ListInteractions = stub.ListInteractions
            self.stub, self.marked = stub, 0

        async def MarkProcessed(self, request):
            self.marked += 1
            if self.marked == 2:
                raise RuntimeError("killed")
            return await self.stub.MarkProcessed(request)

    with pytest.raises(RuntimeError, match="killed"):
        await run_once(KilledOnSecondPage(interactions), knowledge, Teacher(), REVIEW)
    written = {f.entry_id: list(f.questions) for f in await fixes(knowledge)}
    assert len(written) == 2 and TENTS[:3] in written.values()  # the second page grew the tents fix, unmarked
    teacher = Teacher()
    counts = await run_once(interactions, knowledge, teacher, Policy(1, "review", 0.8, 0.7, BRAND))
    # Its questions are in a proposed fix, which no judge sees: without adoption they would get a second fix.
    assert (counts.read, counts.proposed, counts.failed) == (2, 2, 0) and teacher.asked == []
    assert {f.entry_id: list(f.questions) for f in await fixes(knowledge)} == written
    stored = await processed(interactions)
    assert all(stored[i].processed_for_training for i in ids)
    assert stored[ids[3]].knowledge_entry_id == stored[ids[0]].knowledge_entry_id


async def test_a_full_fix_takes_no_more_phrasings_and_the_next_one_starts_a_fix(interactions, knowledge, monkeypatch):
    from trainer import fold

    monkeypatch.setattr(fold, "MAX_QUESTIONS", 2)
    await dislike(interactions, *TENTS[:3])
    teacher = Teacher()
    counts = await run_once(interactions, knowledge, teacher, AUTO)
    assert (counts.fixed, counts.failed) == (3, 0)
    assert sorted(len(f.questions) for f in await fixes(knowledge)) == [1, 2] and len(teacher.asked) == 2


class LongWinded(Teacher):
    """Writes an answer longer than an entry may hold for questions containing `about`."""

    def __init__(self, about: str) -> None:
        super().__init__()
        self.about = about

    async def stream(self, messages, max_tokens):
        async for piece in super().stream(messages, max_tokens):
            yield piece
        if self.about in self.asked[-1]:
            yield "x" * 32_001


async def test_an_entry_the_bot_refuses_fails_only_its_questions(counted, interactions, monkeypatch):
    counting_interactions, counting_knowledge, calls = counted
    ids = await dislike(interactions, TENTS[0], OTHERS[0], OTHERS[1])
    counts = await run_once(counting_interactions, counting_knowledge, LongWinded("gift cards"), AUTO)
    assert (counts.fixed, counts.failed) == (2, 1)
    assert calls.made["UpsertEntries"] == 1 + 3  # the refused batch, then each entry alone
    stored = await processed(interactions)
    assert stored[ids[1]].training_outcome == ipb.TRAINING_OUTCOME_FAILED and not stored[ids[1]].processed_for_training
    assert all(stored[i].training_outcome == ipb.TRAINING_OUTCOME_FIXED for i in (ids[0], ids[2]))


class Overlapping(Teacher):
    """Records how many answers are being written at once."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = self.most = 0

    async def stream(self, messages, max_tokens):
        self.writing += 1
        self.most = max(self.most, self.writing)
        await asyncio.sleep(0.05)
        self.writing -= 1
        async for piece in super().stream(messages, max_tokens):
            yield piece


async def test_the_teacher_writes_a_few_answers_at_a_time(interactions, knowledge):
    from trainer.loop import MODEL_CONCURRENCY

    await dislike(interactions, TENTS[0], *OTHERS)
    teacher = Overlapping()
    counts = await run_once(interactions, knowledge, teacher, AUTO)
    assert counts.fixed == 9 and len(teacher.asked) == 9
    assert teacher.most == MODEL_CONCURRENCY == 4


async def test_the_teacher_writes_for_the_brand_the_settings_name(interactions, knowledge, monkeypatch):
    """MEND_BRAND_NAME reaches the teacher's prompt through the trainer's own
    settings (it once always named the default brand)."""
    from trainer.__main__ import policy
    from trainer.settings import Settings

    class Prompted(Teacher):
        def __init__(self) -> None:
            super().__init__()
            self.systems: list[str] = []

        async def stream(self, messages, max_tokens):
            self.systems.append(messages[0].content)
            async for piece in super().stream(messages, max_tokens):
                yield piece

    monkeypatch.setenv("MEND_BRAND_NAME", "Lumen Outdoor Co.")
    monkeypatch.setenv("FEEDBACK_THRESHOLD", "1")
    await dislike(interactions, "Do you sell gift cards for kayaks?")
    teacher = Prompted()
    counts = await run_once(interactions, knowledge, teacher, policy(Settings.from_env()))
    assert counts.proposed == 1 and teacher.systems, counts  # under review, the default policy
    assert all("Lumen Outdoor Co." in system and BRAND not in system for system in teacher.systems)


async def test_new_dislikes_on_a_topic_join_its_fix_still_waiting_for_review(interactions, knowledge):
    """Across runs: a proposed fix of an earlier run absorbs new near-duplicate
    questions instead of a second fix appearing for the same topic."""
    first, = await dislike(interactions, "Do you rent out tents?")
    counts = await run_once(interactions, knowledge, Teacher(), Policy(1, "review", 0.8, 0.7, BRAND))
    assert counts.proposed == 1
    (pending,) = await fixes(knowledge)
    later = await dislike(interactions, "Do you rent out tents for a weekend?", "Can I rent a tent from you?")
    teacher = Teacher()
    counts = await run_once(interactions, knowledge, teacher, Policy(1, "review", 0.8, 0.7, BRAND))
    assert (counts.read, counts.proposed, counts.failed) == (2, 2, 0), counts
    assert teacher.asked == []  # nothing new to write: the pending fix already answers the topic
    (grown,) = await fixes(knowledge)
    assert grown.entry_id == pending.entry_id and grown.status == bpb.ENTRY_STATUS_PROPOSED
    assert set(grown.questions) == {"Do you rent out tents?", "Do you rent out tents for a weekend?",
                                    "Can I rent a tent from you?"}
    assert set(grown.provenance.interaction_ids) == {first, *later}
    stored = await processed(interactions)
    assert {stored[i].knowledge_entry_id for i in later} == {pending.entry_id}
    assert {stored[i].training_outcome for i in later} == {ipb.TRAINING_OUTCOME_PROPOSED}

"""Healing benchmark: `python -m bench.heal_bench --dataset banking77 [--teacher instant|embedded] [--intents N]`.

The self-healing loop end to end, through the public RPCs of the real services
(bench/heal_mesh.py: interactions, the bot with its pgvector index and the
embedded MiniLM embedder, the trainer's TrainerService; a scratch PostgreSQL),
on real customer queries (`../shared/datasets`, banking77 or clinc150):

1. seed 2/3 of the intents (chosen deterministically from --seed) with one Q&A
   entry each: one phrasing (a train question), the intent's reference answer;
   a few of them (--wrong-fraction) with a stale answer instead;
2. ask each intent's unseen questions (test split) once, to know what was right
   before the run;
3. ask --questions seen questions per intent (train split, disjoint from the
   unseen ones) through Chat; the simulated customer dislikes every reply not
   from the right entry (NOT_RELEVANT), every reply from a stale entry
   (OUTDATED or INCORRECT, with a comment stating the right fact), a few right
   replies anyway (--noise-fraction; OTHER, disliking a policy), and likes the rest;
4. run the trainer (StartRun, force) and follow it with GetRun;
5. a reviewer approves every fix: a new entry with the reference answer of the
   topic most of its interactions ask about, added phrasings as proposed, an
   edit of a stale entry with the right answer (other edits as proposed);
6. ask the unseen questions again and report (see bench/results/heal.md).

Teachers: `instant` (a double that answers at once) or `embedded` (the trainer
as a newcomer gets it: the embedded GGUF model). The bot answers with the
model its settings choose once it has an answer-mode setting, until then with a
double that repeats the answering entry (--bot-model); what is measured is which
entry answers (the first of the Chat response's sources).
Results: bench/results/heal_<dataset>_<teacher>.json (--out to change).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import grpc

from bench.heal_mesh import Mesh, running_mesh
from bench.heal_score import (
    CLASSES,
    Reply,
    Topic,
    Vote,
    correction,
    fix_intent,
    fix_kind,
    pct,
    reference,
    spread,
    stale,
    triage,
    truth,
)
from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as tpb

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DATASETS = REPO.parent / "shared" / "datasets"
SOURCE = "heal-bench"
REVIEWER = "heal-bench-reviewer"
T = TypeVar("T")
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class Options:
    dataset: str = "banking77"
    teacher: str = "instant"  # "instant" | "embedded"
    intents: int = 0  # 0: every intent of the dataset
    questions: int = 20  # seen and unseen questions per intent
    seeded_fraction: float = 2 / 3
    wrong_fraction: float = 0.05  # of the intents: seeded with a stale answer
    noise_fraction: float = 0.02  # of the right replies to seen questions: disliked anyway
    seed: int = 77
    concurrency: int = 4  # Chat calls in flight
    # A fix the regression gate holds back (it would take right answers): "respect" rejects it,
    # as a careful reviewer would; "override" approves it anyway (what the gate prevents).
    gate: str = "respect"
    into: str = "nearby"  # "nearby" | "never": a reviewer who approves a duplicate into its topic's entry, or not
    bot_model: str = "auto"  # "auto" | "double" | "settings" (see heal_mesh.running_mesh)
    database_url: str = ""  # an empty scratch database; empty: a fresh embedded PostgreSQL
    datasets_dir: str = str(DATASETS)
    quiet: bool = False


# --- the data ------------------------------------------------------------------------------


def load(dataset: str, folder: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """train and test questions by intent, in file order."""
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    if dataset == "banking77":
        for split, into in (("train", train), ("test", test)):
            with open(folder / "banking77" / f"{split}.csv", newline="") as handle:
                for row in csv.DictReader(handle):
                    into.setdefault(row["category"], []).append(row["text"].strip())
    elif dataset == "clinc150":
        data = json.loads((folder / "clinc150" / "data_full.json").read_text())
        for split, into in (("train", train), ("test", test)):
            for text, intent in data[split]:
                into.setdefault(intent, []).append(text.strip())
    else:
        raise SystemExit(f"unknown dataset {dataset!r}: banking77 or clinc150")
    return train, test


def plan(options: Options) -> list[Topic]:
    """The topics of the run, all choices drawn from `options.seed`."""
    train, test = load(options.dataset, Path(options.datasets_dir))
    rng = random.Random(options.seed)
    intents = sorted(train)
    if options.intents:
        intents = sorted(rng.sample(intents, min(options.intents, len(intents))))
    seeded = set(rng.sample(intents, round(len(intents) * options.seeded_fraction)))
    wrong_count = min(len(seeded) - 1, max(1, round(len(intents) * options.wrong_fraction))) \
        if options.wrong_fraction > 0 and len(seeded) >= 2 else 0
    wrong = set(rng.sample(sorted(seeded), wrong_count))
    topics = []
    for intent in intents:
        mine = random.Random(f"{options.seed}:{intent}")
        asked = list(dict.fromkeys(train[intent]))
        mine.shuffle(asked)
        phrasing, seen = asked[0], asked[1:1 + options.questions]
        used = {q.lower() for q in asked[:1 + options.questions]}
        unseen = [q for q in dict.fromkeys(test[intent]) if q.lower() not in used]
        mine.shuffle(unseen)
        topics.append(Topic(intent, intent in seeded, intent in wrong, phrasing, tuple(seen),
                            tuple(unseen[:options.questions])))
    return topics


# --- calls ---------------------------------------------------------------------------------


class Progress:
    """A line now and then while a phase runs: it takes minutes."""

    def __init__(self, what: str, total: int, quiet: bool) -> None:
        self.what, self.total, self.quiet = what, total, quiet
        self.done = 0
        self.started = self.shown = time.perf_counter()

    def step(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if not self.quiet and (now - self.shown > 10 or self.done == self.total):
            self.shown = now
            rate = self.done / max(now - self.started, 1e-6)
            print(f"  {self.what}: {self.done}/{self.total} ({rate:.1f}/s)", flush=True)


async def _retrying(call: Callable[[], Awaitable[T]], also: Sequence[grpc.StatusCode] = ()) -> T:
    for attempt in range(6):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in (*RETRIED, *also) or attempt == 5:
                raise
            await asyncio.sleep(0.25 * 2 ** attempt)
    raise AssertionError("unreachable")


async def ask(mesh: Mesh, questions: Sequence[tuple[str, str]], concurrency: int, what: str,
              quiet: bool) -> list[Reply]:
    """Each (intent, question) through Chat, a new conversation each, in order
    with `concurrency` in flight; a retry keeps the request id (answered once)."""
    slots = asyncio.Semaphore(concurrency)
    progress = Progress(what, len(questions), quiet)

    async def one(intent: str, question: str) -> Reply:
        request = bpb.ChatRequest(query=question, request_id=str(uuid.uuid4()))
        async with slots:
            try:
                response = await _retrying(lambda: mesh.chat.Chat(request, timeout=300))
            except grpc.aio.AioRpcError as error:
                return Reply(intent, question, error=f"{error.code().name}: {error.details()}")
            finally:
                progress.step()
        top = response.sources[0] if response.grounded and response.sources else None
        return Reply(intent, question, response.interaction_id, top.entry_id if top else "",
                     top.source if top else "", top.snippet if top else "", response.answer)

    return list(await asyncio.gather(*(one(intent, question) for intent, question in questions)))


def judge_replies(topics: dict[str, Topic], replies: Sequence[Reply], options: Options) -> list[Vote]:
    """The simulated customer's vote on each seen reply."""
    votes = []
    for n, reply in enumerate(replies):
        if reply.error:
            votes.append(Vote(reply, liked=False, truth="", error="no answer"))
            continue
        topic = topics[reply.intent]
        kind = truth(topic, reply)
        if kind == "wrong":
            reason = ipb.FEEDBACK_REASON_OUTDATED if n % 2 else ipb.FEEDBACK_REASON_INCORRECT
            votes.append(Vote(reply, False, kind, reason, correction(reply.intent)))
        elif kind:
            comment = "That does not answer my question." if reply.entry_id else "You did not answer my question."
            votes.append(Vote(reply, False, kind, ipb.FEEDBACK_REASON_NOT_RELEVANT, comment))
        else:
            votes.append(Vote(reply, True, ""))
    liked = [v for v in votes if v.liked]
    count = max(1, round(len(liked) * options.noise_fraction)) if options.noise_fraction > 0 and liked else 0
    for vote in random.Random(options.seed + 1).sample(liked, count):
        vote.liked, vote.truth, vote.reason = False, "no_action", ipb.FEEDBACK_REASON_OTHER
        vote.comment = "I don't like this policy, it should be free for loyal customers."
    return votes


async def rate(mesh: Mesh, votes: Sequence[Vote], concurrency: int, quiet: bool) -> None:
    slots = asyncio.Semaphore(concurrency)
    rated = [v for v in votes if not v.error]
    progress = Progress("feedback", len(rated), quiet)

    async def one(vote: Vote) -> None:
        request = ipb.SubmitFeedbackRequest(
            interaction_id=vote.reply.interaction_id, rating=ipb.RATING_LIKE if vote.liked else ipb.RATING_DISLIKE,
            reason=vote.reason, comment=vote.comment)
        async with slots:
            try:  # NOT_FOUND: the bot's outbox has not delivered the exchange yet
                await _retrying(lambda: mesh.interactions.SubmitFeedback(request, timeout=30),
                                also=[grpc.StatusCode.NOT_FOUND])
            except grpc.aio.AioRpcError as error:
                vote.error = f"{error.code().name}: {error.details()}"
            finally:
                progress.step()

    await asyncio.gather(*(one(v) for v in rated))


async def seed(mesh: Mesh, topics: Sequence[Topic]) -> None:
    entries = [bpb.KnowledgeEntry(
        entry_id=t.entry_id, kind=bpb.ENTRY_KIND_QA, content=stale(t.intent) if t.wrong else reference(t.intent),
        questions=[t.phrasing], source=SOURCE, status=bpb.ENTRY_STATUS_PUBLISHED,
        provenance=bpb.Provenance(created_by=SOURCE)) for t in topics if t.seeded]
    for start in range(0, len(entries), 100):
        await mesh.knowledge.UpsertEntries(bpb.UpsertEntriesRequest(entries=entries[start:start + 100]), timeout=120)


async def train(mesh: Mesh, quiet: bool) -> tpb.Run:
    """One forced run, followed with GetRun until it ends."""
    run_id = str(uuid.uuid4())
    run = (await mesh.trainer.StartRun(tpb.StartRunRequest(request_id=run_id, force=True))).run
    started, shown, last = time.perf_counter(), 0.0, None
    while run.state == tpb.RUN_STATE_RUNNING:
        await asyncio.sleep(1.0)
        run = (await _retrying(lambda: mesh.trainer.GetRun(tpb.GetRunRequest(run_id=run_id), timeout=30))).run
        counts = {f.name: getattr(run.counts, f.name) for f in run.counts.DESCRIPTOR.fields}
        now = time.perf_counter()
        if not quiet and (counts != last or now - shown > 30):
            shown, last = now, counts
            done = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            print(f"  trainer, {now - started:.0f} s: {done or 'no page done yet'}", flush=True)
    return run


async def all_fixes(mesh: Mesh, run_id: str) -> list[tpb.Fix]:
    fixes: list[tpb.Fix] = []
    token = ""
    while True:
        page = await mesh.trainer.ListFixes(tpb.ListFixesRequest(run_id=run_id, page_size=1000, page_token=token))
        fixes += page.fixes
        token = page.next_page_token
        if not token:
            return fixes


async def marks_of(mesh: Mesh) -> dict[str, tuple[int, str]]:
    """Each disliked interaction's training outcome and entry, as the run left them."""
    marks: dict[str, tuple[int, str]] = {}
    token = ""
    while True:
        page = await mesh.interactions.ListInteractions(ipb.ListInteractionsRequest(
            feedback=ipb.FEEDBACK_FILTER_DISLIKED, page_size=1000, page_token=token))
        marks.update({i.interaction_id: (i.training_outcome, i.knowledge_entry_id) for i in page.interactions})
        token = page.next_page_token
        if not token:
            return marks


@dataclass
class Review:
    approved: int = 0
    with_reference: int = 0
    as_proposed: int = 0
    held_by_gate: int = 0  # approvals the regression gate refused (then rejected, or overridden)
    overridden: int = 0
    held: list[dict] = field(default_factory=list)  # the first few, with what they would take
    held_by_topic: Counter = field(default_factory=Counter)  # a seeded topic's (a duplicate) or a gap's
    merged: int = 0  # new-entry fixes approved into their topic's seeded entry (into_entry_id)
    published_new: set[str] = field(default_factory=set)  # new-entry fixes published as new entries
    failures: list[str] = field(default_factory=list)


async def review(mesh: Mesh, fixes: Sequence[tpb.Fix], intent_of: dict[str, str], topics: dict[str, Topic],
                 quiet: bool, gate: str = "respect", into: str = "nearby") -> Review:
    """Approves every proposed fix, as a reviewer who knows each topic's answer
    would; one the regression gate holds back is rejected (`gate` "respect")
    or approved with the override ("override"). A new-entry fix about a seeded
    topic whose entry is among the fix's `nearby_entries` is approved into that
    entry (`into` "nearby"): the reviewer sees the topic is covered already. One
    whose topic's entry is not listed is approved as a new entry (a person might
    still find the entry by searching; this reviewer does not)."""
    done = Review()
    entry_intent = {t.entry_id: t.intent for t in topics.values() if t.seeded}
    progress = Progress("review", len(fixes), quiet)
    # Added phrasings first (the liked questions the run adds to their entries among them):
    # the regression gate replays each approval against the index as it is then.
    for fix in sorted(fixes, key=lambda f: fix_kind(f) != "add_phrasings"):
        progress.step()
        if fix.state != tpb.FIX_STATE_PROPOSED:
            continue
        kind, answer, target = fix_kind(fix), "", ""
        if kind == "new_entry":
            topic = topics.get(fix_intent(fix, intent_of, entry_intent))
            if (into == "nearby" and topic is not None and topic.seeded
                    and topic.entry_id in {n.entry_id for n in fix.nearby_entries}):
                target = topic.entry_id
            else:
                answer = reference(fix_intent(fix, intent_of, entry_intent))
        elif kind == "edit_answer" and fix.entry_id in entry_intent and topics[entry_intent[fix.entry_id]].wrong:
            answer = reference(entry_intent[fix.entry_id])
        try:
            try:
                await mesh.trainer.ApproveFix(tpb.ApproveFixRequest(fix_id=fix.fix_id, answer=answer,
                                                                    reviewer=REVIEWER, into_entry_id=target),
                                              timeout=120)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION or "allow_regressions" not in error.details():
                    raise
                done.held_by_gate += 1
                topic = topics.get(fix_intent(fix, intent_of, entry_intent))
                done.held_by_topic["seeded topic" if topic is not None and topic.seeded else "gap topic"] += 1
                if len(done.held) < 5:
                    held = (await mesh.trainer.GetFix(tpb.GetFixRequest(fix_id=fix.fix_id), timeout=60)).fix
                    done.held.append({"fix": fix.fix_id, "kind": kind, "questions": list(held.questions)[:5],
                                      "regressions": [{"question": r.question, "entry": r.entry_id,
                                                       "score": round(r.entry_score, 3), "to": r.moved_to_entry_id,
                                                       "to_score": round(r.moved_to_score, 3)}
                                                      for r in held.regressions[:5]]})
                if gate != "override":
                    await mesh.trainer.RejectFix(tpb.RejectFixRequest(
                        fix_id=fix.fix_id, reviewer=REVIEWER, note="it would take right answers"), timeout=60)
                    continue
                await mesh.trainer.ApproveFix(tpb.ApproveFixRequest(fix_id=fix.fix_id, answer=answer,
                                                                    reviewer=REVIEWER, into_entry_id=target,
                                                                    allow_regressions=True),
                                              timeout=120)
                done.overridden += 1
        except grpc.aio.AioRpcError as error:
            done.failures.append(f"{kind} {fix.fix_id}: {error.code().name}: {error.details()}"[:300])
            continue
        done.approved += 1
        done.with_reference += bool(answer)
        done.as_proposed += not answer and not target
        done.merged += bool(target)
        if kind == "new_entry" and not target:
            done.published_new.add(fix.fix_id)
    return done


# --- the protocol --------------------------------------------------------------------------


async def bench(options: Options) -> dict:
    """The whole protocol; returns the report."""
    say = (lambda *_: None) if options.quiet else (lambda text: print(text, flush=True))
    topics = {t.intent: t for t in plan(options)}
    load_before = os.getloadavg()
    timing: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timing[name] = round(now - clock, 1)
        clock = now

    seeded = [t for t in topics.values() if t.seeded]
    say(f"heal-bench: {options.dataset}, {len(topics)} intents ({len(seeded)} seeded, "
        f"{sum(t.wrong for t in seeded)} of them stale), {options.questions} seen + {options.questions} unseen "
        f"questions each, teacher {options.teacher}")
    async with running_mesh(options.database_url, options.teacher, options.bot_model) as mesh:
        say(f"services up: bot answers with {mesh.bot_model}; trainer teacher {mesh.teacher_model}, "
            f"judge {mesh.judge}")
        lap("start_s")
        await seed(mesh, list(topics.values()))
        lap("seed_s")
        rng = random.Random(options.seed + 2)
        unseen = [(t.intent, q) for t in topics.values() for q in t.unseen]
        seen = [(t.intent, q) for t in topics.values() for q in t.seen]
        rng.shuffle(unseen)
        rng.shuffle(seen)
        before = await ask(mesh, unseen, options.concurrency, "unseen questions, before", options.quiet)
        lap("ask_unseen_before_s")
        replies = await ask(mesh, seen, options.concurrency, "seen questions", options.quiet)
        votes = judge_replies(topics, replies, options)
        await rate(mesh, votes, options.concurrency, options.quiet)
        lap("ask_and_rate_seen_s")
        disliked = [v for v in votes if not v.liked and not v.error]
        say(f"disliked {len(disliked)} of {len(votes)} seen replies: "
            + ", ".join(f"{name} {sum(v.truth == name for v in disliked)}" for name in CLASSES))
        run = await train(mesh, options.quiet)
        lap("trainer_run_s")
        fixes = await all_fixes(mesh, run.run_id)
        marks = await marks_of(mesh)
        intent_of = {v.reply.interaction_id: v.reply.intent for v in votes if v.reply.interaction_id}
        liked_ids = {v.reply.interaction_id for v in votes if v.liked and v.reply.interaction_id}
        say(f"run {tpb.RunState.Name(run.state)}: {len(fixes)} fixes "
            f"({', '.join(f'{k} {n}' for k, n in Counter(fix_kind(f) for f in fixes).most_common())})"
            + (f"; {run.error_message}" if run.error_message else ""))
        reviewed = await review(mesh, fixes, intent_of, topics, options.quiet, options.gate, options.into)
        lap("review_s")
        final = (await mesh.trainer.EvaluateKnowledge(tpb.EvaluateKnowledgeRequest(), timeout=300)).evaluation
        after = await ask(mesh, [(r.intent, r.question) for r in before], options.concurrency,
                          "unseen questions, after", options.quiet)
        lap("ask_unseen_after_s")
        stale_now = {t.intent: (await mesh.knowledge.GetEntry(bpb.GetEntryRequest(entry_id=t.entry_id))).entry.content
                     for t in seeded if t.wrong}
        services = {"bot_model": mesh.bot_model, "teacher_model": mesh.teacher_model, "judge": mesh.judge,
                    "teacher_calls": mesh.instant_teacher.calls if mesh.instant_teacher else None}
    # The liked questions the run adds to their own entries are not fixes of disliked
    # questions: reported apart, left out of the fix counts.
    reinforcing = [f for f in fixes if f.interaction_ids and set(f.interaction_ids) <= liked_ids]
    fixes = [f for f in fixes if f not in reinforcing]
    report = score(options, topics, before, votes, run, fixes, marks, reviewed, after, stale_now, evaluation(final))
    report["gate"]["liked_added"] = {"entries": len(reinforcing),
                                     "phrasings": sum(len(f.added_questions) for f in reinforcing)}
    report["services"] = services
    report["timing_s"] = timing
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "load_avg_1m_before": round(load_before[0], 2),
                         "load_avg_1m_after": round(os.getloadavg()[0], 2)}
    return report


def score(options: Options, topics: dict[str, Topic], before: Sequence[Reply], votes: Sequence[Vote], run: tpb.Run,
          fixes: Sequence[tpb.Fix], marks: dict[str, tuple[int, str]], reviewed: Review, after: Sequence[Reply],
          stale_now: dict[str, str], final_evaluation: dict | None = None) -> dict:
    intent_of = {v.reply.interaction_id: v.reply.intent for v in votes if v.reply.interaction_id}
    entry_intent = {t.entry_id: t.intent for t in topics.values() if t.seeded}
    pairs = list(zip(before, after, strict=True))
    gap_pairs = [(b, a) for b, a in pairs if not topics[b.intent].seeded]
    seeded_pairs = [(b, a) for b, a in pairs if topics[b.intent].seeded]
    # Misrouted before: a seeded topic's question answered from another entry or "don't know".
    wrong_before = [(b, a) for b, a in seeded_pairs if b.entry_id != topics[b.intent].entry_id]
    stale_pairs = [(b, a) for b, a in seeded_pairs if topics[b.intent].wrong]
    regressed = [(b, a) for b, a in pairs if b.right() and not a.right() and not a.error]
    new_entries = [f for f in fixes if fix_kind(f) == "new_entry"]
    about = {f.fix_id: fix_intent(f, intent_of, entry_intent) for f in fixes}
    duplicates = [f for f in new_entries if topics.get(about[f.fix_id]) and topics[about[f.fix_id]].seeded]
    published_new = [f for f in new_entries if f.fix_id in reviewed.published_new]
    published_duplicates = [f for f in duplicates if f.fix_id in reviewed.published_new]
    per_topic = Counter(about.values())
    new_per_gap = Counter(about[f.fix_id] for f in new_entries)
    gap_topics = [t.intent for t in topics.values() if not t.seeded]
    wrong_topics = [t for t in topics.values() if t.wrong]
    edits = [f for f in fixes if fix_kind(f) == "edit_answer"]
    table, judge = triage(topics, votes, fixes, marks)
    counts = {f.name: getattr(run.counts, f.name) for f in run.counts.DESCRIPTOR.fields}
    run_time = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds() \
        if run.HasField("end_time") else None
    disliked = [v for v in votes if not v.liked and not v.error]
    return {
        "dataset": options.dataset, "teacher": options.teacher,
        "options": {k: v for k, v in asdict(options).items() if k not in ("database_url", "datasets_dir", "quiet")},
        "topics": {"intents": len(topics), "seeded": sum(t.seeded for t in topics.values()),
                   "stale": len(wrong_topics), "gap": len(gap_topics)},
        "seen": {"asked": len(votes), "liked": sum(v.liked for v in votes), "disliked": len(disliked),
                 "disliked_by_class": {name: sum(v.truth == name for v in disliked) for name in CLASSES}},
        "run": {"state": tpb.RunState.Name(run.state), "counts": counts, "error_message": run.error_message,
                "run_time_s": round(run_time, 1) if run_time is not None else None,
                "fixes": len(fixes), "fixes_by_kind": dict(Counter(fix_kind(f) for f in fixes).most_common())},
        "review": {"approved": reviewed.approved, "with_reference_answer": reviewed.with_reference,
                   "as_proposed": reviewed.as_proposed, "held_by_gate": reviewed.held_by_gate,
                   "overridden": reviewed.overridden, "held_by_topic": dict(reviewed.held_by_topic),
                   "into_topic_entry": reviewed.merged,
                   "first_held": reviewed.held,
                   "failures": len(reviewed.failures),
                   "first_failures": reviewed.failures[:5]},
        "gate": {"fixes_with_regressions": sum(bool(f.regressions) for f in fixes),
                 "fixes_narrowed": sum(bool(f.withheld_questions) for f in fixes),
                 "phrasings_withheld": sum(len(f.withheld_questions) for f in fixes),
                 "evaluation_before": evaluation(run.evaluation_before) if run.HasField("evaluation_before") else None,
                 "evaluation_after_run": evaluation(run.evaluation_after) if run.HasField("evaluation_after") else None,
                 "evaluation_after_review": final_evaluation},
        "healed": {"gap_unseen": len(gap_pairs), "right_after": sum(a.right() for _, a in gap_pairs),
                   "pct": pct(sum(a.right() for _, a in gap_pairs), len(gap_pairs))},
        "misrouted_healed": {"seeded_unseen_misrouted_before": len(wrong_before),
                             "right_after": sum(a.right() for _, a in wrong_before),
                             "pct": pct(sum(a.right() for _, a in wrong_before), len(wrong_before))},
        "stale_entries": {"seeded": len(wrong_topics),
                          "edit_proposed": sum(1 for f in edits if f.entry_id in {t.entry_id for t in wrong_topics}),
                          "corrected": sum(stale_now.get(t.intent, "") == reference(t.intent) for t in wrong_topics),
                          "unseen": len(stale_pairs), "unseen_right_before": sum(b.right() for b, _ in stale_pairs),
                          "unseen_right_after": sum(a.right() for _, a in stale_pairs)},
        "regressions": {"right_before": sum(b.right() for b, _ in pairs), "wrong_after": len(regressed),
                        "pct_of_right_before": pct(len(regressed), sum(b.right() for b, _ in pairs)),
                        "now_answered_by": dict(Counter(
                            "don't know" if not a.entry_id else ("a fix" if a.source != SOURCE else "a seeded entry")
                            for _, a in regressed).most_common())},
        "accuracy": {"unseen": len(pairs), "right_before": sum(b.right() for b, _ in pairs),
                     "right_after": sum(a.right() for _, a in pairs),
                     "pct_before": pct(sum(b.right() for b, _ in pairs), len(pairs)),
                     "pct_after": pct(sum(a.right() for _, a in pairs), len(pairs)),
                     "answer_text_is_the_entry": pct(sum(a.snippet.strip() in a.answer  # whole, hedged or not
                                                         for a in after if a.entry_id),
                                                     sum(1 for a in after if a.entry_id))},
        "duplicate_fixes": {"new_entry_fixes": len(new_entries), "for_seeded_topics": len(duplicates),
                            "pct": pct(len(duplicates), len(new_entries)),
                            # What reaches the knowledge: new entries the reviewer published, and of
                            # those the duplicates (approved into their topic's entry: not counted).
                            "published_new_entries": len(published_new),
                            "published_for_seeded_topics": len(published_duplicates),
                            "published_pct": pct(len(published_duplicates), len(published_new))},
        "fixes_per_topic": {"topics_with_fixes": len(per_topic), **spread(list(per_topic.values())),
                            "new_entries_per_gap_topic": spread([new_per_gap[i] for i in gap_topics])},
        "triage": table,
        "judge": judge,
        "failed_interactions": {"chat": sum(bool(r.error) for r in (*before, *after))
                                + sum(v.error == "no answer" for v in votes),
                                "feedback": sum(bool(v.error) and v.error != "no answer" for v in votes),
                                "trainer": counts.get("failed", 0), "approvals": len(reviewed.failures)},
    }


def evaluation(message: tpb.Evaluation) -> dict:
    return {"questions": message.questions, "liked": message.liked, "right": message.right,
            "accuracy": round(message.accuracy, 4)}


def headline(report: dict) -> str:
    t = report["triage"]
    return "\n".join([
        f"healed {report['healed']['pct']}% of {report['healed']['gap_unseen']} unseen gap questions; "
        f"misrouted healed {report['misrouted_healed']['pct']}%; stale entries corrected "
        f"{report['stale_entries']['corrected']}/{report['stale_entries']['seeded']}",
        f"regressions {report['regressions']['wrong_after']} ({report['regressions']['pct_of_right_before']}% of "
        f"right before); gate: {report['gate']['fixes_with_regressions']} fixes held, "
        f"{report['gate']['fixes_narrowed']} narrowed ({report['gate']['phrasings_withheld']} phrasings withheld), "
        f"{report['review']['held_by_gate']} approvals refused; duplicate fixes {report['duplicate_fixes']['pct']}% "
        f"(published {report['duplicate_fixes']['published_pct']}%, {report['review']['into_topic_entry']} "
        "approved into their topic's entry); "
        f"fixes per topic mean "
        f"{report['fixes_per_topic']['mean']}, max {report['fixes_per_topic']['max']}",
        "triage right: " + ", ".join(f"{name} {t[name]['right']}/{t[name]['interactions']}" for name in CLASSES),
        f"judge precision {report['judge']['precision']}, recall {report['judge']['recall']}; trainer run "
        f"{report['run']['run_time_s']} s, {report['run']['state']}; failed {report['failed_interactions']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Options()
    parser.add_argument("--dataset", default=defaults.dataset, choices=["banking77", "clinc150"])
    parser.add_argument("--teacher", default=defaults.teacher, choices=["instant", "embedded"])
    parser.add_argument("--intents", type=int, default=defaults.intents, help="intents to use (0: all)")
    parser.add_argument("--questions", type=int, default=defaults.questions,
                        help="seen and unseen questions per intent")
    parser.add_argument("--wrong-fraction", type=float, default=defaults.wrong_fraction)
    parser.add_argument("--noise-fraction", type=float, default=defaults.noise_fraction)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--gate", default=defaults.gate, choices=["respect", "override"],
                        help="a fix the regression gate holds: rejected (respect) or approved anyway (override)")
    parser.add_argument("--into", default=defaults.into, choices=["nearby", "never"],
                        help="a new fix about a seeded topic whose entry it lists as nearby: approved into that "
                             "entry (nearby) or as a new entry (never)")
    parser.add_argument("--bot-model", default=defaults.bot_model, choices=["auto", "double", "settings"])
    parser.add_argument("--database-url", default="", help="an empty scratch database (default: embedded)")
    parser.add_argument("--datasets-dir", default=defaults.datasets_dir)
    parser.add_argument("--out", help="results file in bench/results (default: heal_<dataset>_<teacher>.json)")
    args = parser.parse_args(argv)
    options = replace(defaults, **{k: v for k, v in vars(args).items() if k != "out"})
    report = asyncio.run(bench(options))
    path = RESULTS / (args.out or f"heal_{options.dataset}_{options.teacher}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(headline(report))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

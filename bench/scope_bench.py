"""The answer-or-"don't know" decision on public data: `python -m bench.scope_bench`.

    .venv/bin/python -m bench.scope_bench --dataset clinc150 --phrasings 1 5 10 --choose val
    .venv/bin/python -m bench.scope_bench --dataset banking77 --phrasings 1 5 10
    .venv/bin/python -m bench.scope_bench --dataset clinc150 --phrasings 1 5 10 --from-json  # re-analyse, no embedding

Through the bot's public RPCs on the real knowledge index: the bot's
KnowledgeService on a grpc.aio server, pgvector in the embedded PostgreSQL, the
real MiniLM (int8 ONNX) embedder. For each P of `--phrasings`, one Q&A entry per
in-scope intent is seeded (UpsertEntries) with the intent's first P phrasings of
the train split (P=1 is how the healing benchmark seeds; P=10 is a knowledge base
that grew phrasings, e.g. liked questions), then held-out questions are searched
with k=10 (BatchSearchKnowledge: the same `Knowledge` search as SearchKnowledge,
one embedding call per batch; a sample is cross-checked against SearchKnowledge).

- clinc150: in scope are its 150 intents; "val" = its val split (3,000) plus
  oos_val and oos_train (200 out-of-scope; nothing here trains on oos_train), used
  to choose the rule; "test" = its test split (4,500) plus oos_test (1,000).
- banking77: every third intent of categories.json (26, from the first) is held
  out as out of scope, the other 51 are seeded; "test" = the whole test split;
  "val" = 10 train questions per intent that no seed uses (a second check).

Offline, for each family of decision rules and each of its constants: the share
of out-of-scope questions answered from an entry, and in-scope top-1 accuracy
(answered from the right entry / all in-scope questions). The families use only
what a search returns per entry: its `support` (the mean similarity of its two
best keys, by which hits are ranked; the rows' "scores"), its best key's
`score` ("key_scores") and that key (`matched_question`). "chosen" is
`bot.relevance.Relevance()` itself.

Results: bench/results/scope_<dataset>.json (per-query top-10 scores and the
curves) and the tables printed; see bench/results/scope.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import json
import os
import platform
import random
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from bench.scratch import scratch_database
from bot.__main__ import KNOWLEDGE_SERVICE
from bot.catalog import Entry
from bot.conversations import Turn
from bot.knowledge import Hit, Knowledge
from bot.knowledge_service import KnowledgeService
from bot.relevance import Relevance
from bot.support import STEM, content_words
from bot.vectorstores.pgvector_store import PgVectorStore
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, start_server
from mendmodels.embeddings.local_minilm import LocalMiniLM

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "bench" / "results"
K = 10
BATCH = 250
# Before this issue (bot.chat.Retrieval.threshold): a cosine cut on the entry with the best key.
TODAY = 0.45
CROSS_CHECK = 40  # queries per run also asked through SearchKnowledge, one by one


@dataclass(frozen=True)
class Question:
    text: str
    intent: str | None  # None: out of scope


@dataclass(frozen=True)
class Dataset:
    name: str
    intents: list[str]  # in scope: one entry each
    phrasings: dict[str, list[str]]  # train questions per in-scope intent, in file order
    splits: dict[str, list[Question]]
    notes: str


def load_clinc150(test_per_intent: int | None) -> Dataset:
    data = json.loads((DATASETS / "clinc150" / "data_full.json").read_text())
    phrasings: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        phrasings.setdefault(intent, []).append(text)
    test = data["test"]
    if test_per_intent is not None:
        taken: dict[str, int] = {}
        sampled = []
        for row in test:
            if taken.get(row[1], 0) < test_per_intent:
                taken[row[1]] = taken.get(row[1], 0) + 1
                sampled.append(row)
        test = sampled
    splits = {
        "val": [Question(t, i) for t, i in data["val"]]
        + [Question(t, None) for t, _ in data["oos_val"] + data["oos_train"]],
        "test": [Question(t, i) for t, i in test] + [Question(t, None) for t, _ in data["oos_test"]],
    }
    notes = ("val = val (3,000) + oos_val + oos_train (200 OOS); test = test "
             f"({len(test):,}) + oos_test (1,000)")
    return Dataset("clinc150", sorted(phrasings), phrasings, splits, notes)


def load_banking77(seed_count: int) -> Dataset:
    folder = DATASETS / "banking77"
    categories = json.loads((folder / "categories.json").read_text())
    held_out = set(categories[0::3])
    train: dict[str, list[str]] = {}
    with open(folder / "train.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            train.setdefault(row["category"], []).append(row["text"])
    with open(folder / "test.csv", newline="") as handle:
        test = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    in_scope = [c for c in categories if c not in held_out]
    rng = random.Random(77)
    val = []
    for category in categories:
        unused = train[category][seed_count:]
        for text in rng.sample(unused, min(10, len(unused))):
            val.append(Question(text, None if category in held_out else category))
    splits = {"val": val, "test": [Question(t, None if c in held_out else c) for t, c in test]}
    notes = (f"{len(held_out)} of 77 intents held out as out of scope (categories.json[0::3]); "
             "test = the whole test split; val = 10 unused train questions per intent")
    return Dataset("banking77", in_scope, {c: train[c] for c in in_scope}, splits, notes)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def entry_id(phrasings: int, intent: str) -> str:
    # Entry ids allow letters, digits and "._:-" (banking77 has "reverted_card_payment?").
    return f"p{phrasings}." + re.sub(r"[^A-Za-z0-9._:-]", "-", intent)


async def seed(stub: pb_grpc.KnowledgeServiceStub, dataset: Dataset, phrasings: int) -> None:
    entries = [pb.KnowledgeEntry(entry_id=entry_id(phrasings, intent), kind=pb.ENTRY_KIND_QA,
                                 content=f"Answer for {intent}", questions=dataset.phrasings[intent][:phrasings],
                                 source=f"scope-p{phrasings}")
               for intent in dataset.intents]
    started = time.perf_counter()
    for start in range(0, len(entries), 100):
        await stub.UpsertEntries(pb.UpsertEntriesRequest(entries=entries[start:start + 100]), timeout=600)
        print(f"  seeded {min(start + 100, len(entries))} / {len(entries)} entries (P={phrasings}, "
              f"{time.perf_counter() - started:.0f} s)", flush=True)


async def unseed(stub: pb_grpc.KnowledgeServiceStub, dataset: Dataset, phrasings: int) -> None:
    for intent in dataset.intents:
        await stub.DeleteEntry(pb.DeleteEntryRequest(entry_id=entry_id(phrasings, intent)), timeout=60)


def row_of(hits: Iterable[tuple[str, float, str, float]], intent_of: dict[str, str], keys: dict[str, int]) -> dict:
    """A question's hits (entry, support, best key, its score): the entries'
    intents, supports ("scores": what the rules judge), how many phrasings (keys)
    each entry has, the phrasing that matched (for the lexical coverage rules)
    and its score."""
    listed = list(hits)
    return {"intents": [intent_of[e] for e, _, _, _ in listed], "scores": [round(s, 5) for _, s, _, _ in listed],
            "keys": [keys[e] for e, _, _, _ in listed], "matched": [m for _, _, m, _ in listed],
            "key_scores": [round(b, 5) for _, _, _, b in listed]}


async def search(stub: pb_grpc.KnowledgeServiceStub, dataset: Dataset, questions: list[Question], phrasings: int,
                 label: str) -> tuple[list[dict], int]:
    """Top-K (intent, score) per question; and how many of a sample asked one by
    one through SearchKnowledge returned other hits than the batch."""
    rows: list[dict] = []
    started = time.perf_counter()
    source = f"scope-p{phrasings}"
    intent_of = {entry_id(phrasings, intent): intent for intent in dataset.intents}
    for start in range(0, len(questions), BATCH):
        chunk = questions[start:start + BATCH]
        response = await stub.BatchSearchKnowledge(pb.BatchSearchKnowledgeRequest(queries=[
            pb.SearchKnowledgeRequest(query=q.text, k=K, source=source) for q in chunk]), timeout=600)
        keys = {entry.entry_id: len(entry.questions) for entry in response.entries}
        rows += [row_of(((h.entry_id, h.support, h.matched_question, h.score) for h in result.hits), intent_of, keys)
                 for result in response.results]
        done = start + len(chunk)
        rate = done / max(time.perf_counter() - started, 1e-6)
        print(f"  {label}: searched {done:,} / {len(questions):,} ({rate:.0f}/s)", flush=True)
    differing = 0
    for n in range(0, len(questions), max(1, len(questions) // CROSS_CHECK)):
        single = await stub.SearchKnowledge(pb.SearchKnowledgeRequest(query=questions[n].text, k=K, source=source),
                                            timeout=60)
        one = row_of(((h.entry.entry_id, h.support, h.matched_question, h.score) for h in single.hits), intent_of,
                     {h.entry.entry_id: len(h.entry.questions) for h in single.hits})
        same = one["intents"] == rows[n]["intents"] and np.allclose(one["scores"], rows[n]["scores"], atol=1e-4)
        differing += not same
    return rows, differing


async def collect(dataset: Dataset, phrasings_list: list[int], pg_port: int) -> dict:
    runs: dict[str, dict] = {}
    async with contextlib.AsyncExitStack() as stack:
        pool = await scratch_database(stack, "mend-scope-bench-", pg_port, 5, interactions=False)
        embedder = LocalMiniLM()
        store = PgVectorStore(pool, embedder.model_id, embedder.dimension)
        await store.prepare()
        servicer = KnowledgeService(Knowledge(pool, store, embedder), PageTokens(b"scope-bench-page-token-secret"))
        running = await start_server(
            [Registration(servicer, pb_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE)],
            "127.0.0.1:0")
        stack.push_async_callback(running.stop, 1)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}",
                                            options=[("grpc.max_receive_message_length", 64 << 20)])
        stack.push_async_callback(channel.close)
        stub = pb_grpc.KnowledgeServiceStub(channel)
        for phrasings in phrasings_list:
            print(f"P={phrasings}:", flush=True)
            await seed(stub, dataset, phrasings)
            await pool.execute("ANALYZE knowledge_vectors")
            run: dict[str, dict] = {}
            for split, questions in dataset.splits.items():
                started = time.perf_counter()
                rows, differing = await search(stub, dataset, questions, phrasings, f"P={phrasings} {split}")
                run[split] = {"rows": rows, "search_s": round(time.perf_counter() - started, 1),
                              "cross_checked": min(CROSS_CHECK, len(questions)), "cross_check_differing": differing}
            runs[str(phrasings)] = run
            await unseed(stub, dataset, phrasings)
    return runs


# --- offline analysis ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """One split of one run as arrays: top-K supports (-inf padded), the top entry's
    phrasing count, whether the top entry is right, whether the question is in scope;
    and the search as it was before entries were ranked by support (the entry with
    the best key among the hits: its key's score, whether it is right)."""

    top: np.ndarray
    keys: np.ndarray
    right: np.ndarray
    in_scope: np.ndarray
    best_key: np.ndarray
    best_key_right: np.ndarray
    # The top entry's best key over the runner-up's (the runner-up by support): the
    # margin of `Relevance.sure`; +inf when there is no runner-up.
    key_margin: np.ndarray

    @property
    def margin(self) -> np.ndarray:
        return self.top[:, 0] - self.top[:, 1]  # +inf when there is no runner-up

    @property
    def gap(self) -> np.ndarray:
        """The top score over the mean of the other hits' scores."""
        rest = self.top[:, 1:]
        finite = np.isfinite(rest)
        count = finite.sum(axis=1)
        total = np.where(finite, rest, 0.0).sum(axis=1)
        return np.where(count > 0, self.top[:, 0] - total / np.maximum(count, 1), np.inf)


def scores_of(rows: list[dict], questions: list[Question]) -> Scores:
    top = np.full((len(rows), K), -np.inf)
    keys = np.ones(len(rows))
    right = np.zeros(len(rows), bool)
    best_key = np.full(len(rows), -np.inf)
    best_key_right = np.zeros(len(rows), bool)
    key_margin = np.full(len(rows), np.inf)
    for n, (row, question) in enumerate(zip(rows, questions, strict=True)):
        top[n, :len(row["scores"])] = row["scores"]
        if row["intents"]:
            keys[n] = row["keys"][0]
            right[n] = row["intents"][0] == question.intent
            first = int(np.argmax(row["key_scores"]))
            best_key[n], best_key_right[n] = row["key_scores"][first], row["intents"][first] == question.intent
            if len(row["key_scores"]) > 1:
                key_margin[n] = row["key_scores"][0] - row["key_scores"][1]
    return Scores(top, keys, right, np.array([q.intent is not None for q in questions]), best_key, best_key_right,
                  key_margin)


def today_point(scores: Scores) -> dict:
    """What the bot did before this issue: the best key's entry, at a 0.45 cut."""
    return point(dataclasses.replace(scores, right=scores.best_key_right), scores.best_key >= TODAY)


def point(scores: Scores, answered: np.ndarray) -> dict:
    oos, inn = ~scores.in_scope, scores.in_scope
    return {"oos_answered": round(float(answered[oos].mean()), 4),
            "accuracy": round(float((answered & scores.right)[inn].mean()), 4),
            "in_scope_wrong": round(float((answered & ~scores.right)[inn].mean()), 4),
            "in_scope_answered": round(float(answered[inn].mean()), 4)}


GRID_T = [round(0.30 + 0.01 * n, 2) for n in range(61)]  # 0.30 .. 0.90
GRID_M = [round(0.005 * n, 3) for n in range(41)]  # 0 .. 0.20
GRID_C = [0.0, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04]  # cut raised per ln(phrasings)
WEIGHTS = [0.5, 1.0, 2.0, 4.0]
Rule = tuple[str, dict, Callable[[Scores], np.ndarray]]


def rules() -> list[Rule]:
    """(family, constants, answered-mask) for every rule on the grids. Every rule
    answers from the top entry or not at all; they differ in when they answer."""
    found: list[Rule] = []
    for t in GRID_T:
        found.append(("score", {"min_score": t}, lambda s, t=t: s.top[:, 0] >= t))
    for m in GRID_M:
        found.append(("margin", {"min_margin": m}, lambda s, m=m: s.margin >= m))
    for g in GRID_M + [round(0.2 + 0.01 * n, 2) for n in range(1, 21)]:
        found.append(("gap", {"min_gap": g}, lambda s, g=g: s.gap >= g))
    for t in GRID_T:
        for m in GRID_M:
            found.append(("score+margin", {"min_score": t, "min_margin": m},
                          lambda s, t=t, m=m: (s.top[:, 0] >= t) & (s.margin >= m)))
    for w in WEIGHTS:
        for t in [round(0.30 + 0.01 * n, 2) for n in range(91)]:
            found.append(("score+w*margin", {"w": w, "min": t},
                          lambda s, w=w, t=t: s.top[:, 0] + w * np.minimum(s.margin, 1.0) >= t))
    for c in GRID_C:
        for t in GRID_T:
            found.append(("score-c*ln(phrasings)", {"min_score": t, "per_ln_phrasing": c},
                          lambda s, c=c, t=t: s.top[:, 0] - c * np.log(s.keys) >= t))
            for m in (0.005, 0.01, 0.02):
                found.append(("score-c*ln(phrasings)+margin", {"min_score": t, "per_ln_phrasing": c, "min_margin": m},
                              lambda s, c=c, t=t, m=m: (s.top[:, 0] - c * np.log(s.keys) >= t) & (s.margin >= m)))
    return found


def frontier(points: list[dict]) -> list[dict]:
    """The points no other point beats on both axes (less OOS answered, more accuracy)."""
    ordered = sorted(points, key=lambda p: (p["oos_answered"], -p["accuracy"]))
    kept: list[dict] = []
    for p in ordered:
        if not kept or p["accuracy"] > kept[-1]["accuracy"]:
            kept.append(p)
    # One point per point of OOS answered (the most accurate): the curve, not every grid cell.
    thinned: dict[int, dict] = {}
    for p in kept:
        thinned[int(p["oos_answered"] * 100)] = p
    return list(thinned.values())


def hits_of(dataset: Dataset, phrasings: int, row: dict) -> list[Hit]:
    """A saved search row as the bot's hits: the entries with their seeded
    phrasings, the phrasing that matched, its score and the entry's support."""
    return [Hit(Entry(intent, "qa", "", "", tuple(dataset.phrasings[intent][:phrasings]), "bench", "published"),
                key_score, matched, support)
            for intent, support, matched, key_score in zip(
                row["intents"], row["scores"], row["matched"], row["key_scores"], strict=True)]


def chosen_mask(dataset: Dataset, phrasings: int, rows: list[dict], questions: list[Question],
                relevance: Relevance) -> np.ndarray:
    """`bot.relevance` itself, over the hits of the search rows."""
    return np.array([bool(relevance.relevant(hits_of(dataset, phrasings, row))) for row in rows], bool)


def evaluate(dataset: Dataset, runs: dict, found: list[Rule]) -> dict[str, dict]:
    """Per run and split: the figures of every rule of `found`, keyed by family and constants."""
    table: dict[str, dict] = {}
    for phrasings, run in runs.items():
        for split, questions in dataset.splits.items():
            scores = scores_of(run[split]["rows"], questions)
            table[f"P={phrasings} {split}"] = {
                "scores": scores, "rows": run[split]["rows"], "questions": questions, "phrasings": int(phrasings),
                "points": [(family, constants, point(scores, answered(scores)))
                           for family, constants, answered in found],
            }
    return table


def analyse(dataset: Dataset, runs: dict) -> dict:
    relevance = Relevance()
    analysis: dict = {}
    for label, result in evaluate(dataset, runs, rules()).items():
        scores = result["scores"]
        grid: dict[str, list[dict]] = {}
        for family, constants, figures in result["points"]:
            grid.setdefault(family, []).append({**constants, **figures})
        analysis[label] = {
            "questions": int(len(scores.right)), "in_scope": int(scores.in_scope.sum()),
            "out_of_scope": int((~scores.in_scope).sum()),
            "retrieval_top1": round(float(scores.right[scores.in_scope].mean()), 4),
            "fewer_than_2_hits": int((~np.isfinite(scores.top[:, 1])).sum()),
            "today": {"min_score": TODAY, **today_point(scores)},
            "chosen": {**relevance.describe(), **point(scores, chosen_mask(
                dataset, result["phrasings"], result["rows"], result["questions"], relevance))},
            "frontier": {family: frontier(points) for family, points in grid.items()},
            "curve_score": grid["score"],
        }
    return analysis


def choose(dataset: Dataset, runs: dict,
           splits: tuple[str, ...] = ("val",)) -> list[tuple[float, float, str, dict, dict]]:
    """Every rule ranked on `splits` of every run at once by the aim, read as a
    constraint and an objective: first how far accuracy falls short of today's - 2
    points (summed over runs), then the most out-of-scope questions answered in any
    run (the first column), then more accuracy."""
    table = evaluate(dataset, runs, rules())
    today = {label: today_point(r["scores"]) for label, r in table.items()}
    labels = [label for label in table if label.split()[1] in splits]
    ranked = []
    for n, (family, constants, _) in enumerate(rules()):
        figures = {label: table[label]["points"][n][2] for label in labels}
        short = sum(max(today[lb]["accuracy"] - 0.02 - figures[lb]["accuracy"], 0) for lb in labels)
        worst = max(figures[lb]["oos_answered"] for lb in labels)
        ranked.append((round(short, 4), round(worst, 4), family, constants, figures))
    ranked.sort(key=lambda r: (r[0], r[1], -sum(f["accuracy"] for f in r[4].values())))
    return ranked


def best_at(points: list[dict], max_oos: float) -> dict | None:
    fitting = [p for p in points if p["oos_answered"] <= max_oos]
    return max(fitting, key=lambda p: p["accuracy"]) if fitting else None


def constants_text(p: dict) -> str:
    skip = {"oos_answered", "accuracy", "in_scope_wrong", "in_scope_answered"}
    return ", ".join(f"{k}={v}" for k, v in p.items() if k not in skip)


def row(name: str, p: dict) -> str:
    return (f"| {name} | {constants_text(p)} | {p['oos_answered']:.1%} | {p['accuracy']:.1%} | "
            f"{p['in_scope_wrong']:.1%} |")


def report(dataset: Dataset, analysis: dict) -> str:
    lines = [f"## {dataset.name}", "", dataset.notes, ""]
    for label, result in analysis.items():
        today = result["today"]
        lines += [f"### {dataset.name}, {label}: {result['in_scope']:,} in scope, {result['out_of_scope']:,} out of "
                  f"scope; retrieval top-1 {result['retrieval_top1']:.1%}", "",
                  "| rule | constants | OOS answered | in-scope top-1 accuracy | in-scope answered wrong |",
                  "|---|---|---:|---:|---:|", row("today", today), row("**chosen**", result["chosen"])]
        for max_oos in (0.05, 0.10, 0.20):
            for family, points in result["frontier"].items():
                best = best_at(points, max_oos)
                if best:
                    lines.append(row(f"{family}: best at OOS <= {max_oos:.0%}", best))
        for family, points in result["frontier"].items():
            within = [p for p in points if p["accuracy"] >= today["accuracy"] - 0.02]
            if within:
                lines.append(row(f"{family}: least OOS at accuracy >= today - 2 pts",
                                 min(within, key=lambda p: p["oos_answered"])))
        lines += ["", "Score-cut curve (min_score: OOS answered / accuracy): " + "; ".join(
            f"{p['min_score']:.2f}: {p['oos_answered']:.1%} / {p['accuracy']:.1%}"
            for p in result["curve_score"] if round(p["min_score"] * 100) % 5 == 0 and p["min_score"] <= 0.7), ""]
    return "\n".join(lines)


# --- lexical coverage: does the entry contain the question's words? ----------------------


@dataclass(frozen=True)
class Coverage:
    """Per question, the share of its content words (bot/support.py's stems) that
    the top entry contains: in the phrasing that matched, in any of its phrasings,
    or in its phrasings and its intent's name (a stand-in for an entry's title;
    the seeded answers are placeholders, so an entry's answer is not measured here)."""

    matched: np.ndarray
    entry: np.ndarray
    titled: np.ndarray


KINDS = ("matched", "entry", "titled")


def stems(texts: Iterable[str]) -> set[str]:
    """Content words as bot/support.py stems them ("returns", "returned" -> "retur")."""
    return {word[:STEM] for text in texts for word in content_words(text)}


def coverage(query: str, texts: Iterable[str]) -> float:
    """The share of the question's content words that `texts` contain; 1.0 when
    the question has none ("hi?"): nothing to check, the score decides."""
    asked = stems([query])
    return len(asked & stems(texts)) / len(asked) if asked else 1.0


def entry_texts(hit: Hit) -> list[str]:
    """What an entry says: its title, its answer or text, every phrasing."""
    return [hit.entry.title, hit.entry.content, *hit.entry.questions]


@dataclass(frozen=True)
class Covered:
    """The measured candidate as a drop-in for `Relevance.relevant`, with the
    question: a hit answers when it passes the phrasing-adjusted cut and either
    scores `sure_score` or its entry covers `min_coverage` of the question's words."""

    min_score: float
    per_ln_phrasing: float
    sure_score: float
    min_coverage: float

    def passes(self, query: str, hit: Hit) -> bool:
        rule = Relevance(self.min_score, self.per_ln_phrasing)
        return hit.support >= rule.cut(hit) and (hit.support >= self.sure_score
                                                 or coverage(query, entry_texts(hit)) >= self.min_coverage)

    def relevant(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        ordered = sorted(hits, key=lambda hit: -hit.support)
        if not ordered or not self.passes(query, ordered[0]):
            return []
        return [ordered[0], *(hit for hit in ordered[1:] if self.passes(query, hit))]


def coverage_of(dataset: Dataset, phrasings: int, rows: list[dict], questions: list[Question]) -> Coverage:
    shares = {kind: np.ones(len(rows)) for kind in KINDS}
    for n, (row, question) in enumerate(zip(rows, questions, strict=True)):
        if not row["intents"]:
            continue
        intent = row["intents"][0]
        seeded = dataset.phrasings[intent][:phrasings]
        shares["matched"][n] = coverage(question.text, [row["matched"][0]])
        shares["entry"][n] = coverage(question.text, seeded)
        shares["titled"][n] = coverage(question.text, [*seeded, intent.replace("_", " ")])
    return Coverage(**shares)


GRID_SHARE = [0.01, 0.2, 0.25, 0.34, 0.4, 0.5, 0.6, 0.67, 0.75, 1.0]  # 0.01: at least one word
GRID_SURE = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 2.0]  # 2.0: no score is sure
GRID_W = [0.05, 0.1, 0.15, 0.2, 0.3]
LexicalRule = tuple[str, dict, Callable[[Scores, Coverage], np.ndarray]]


def lexical_rules() -> list[LexicalRule]:
    """The phrasing-adjusted cut (per_ln_phrasing 0 is a plain cut) with a
    coverage term: a hard one (answer when the cut passes and either the score is
    sure or the entry covers a share of the question's words) and a soft one (the
    share adds to the score)."""
    found: list[LexicalRule] = []
    for c in (0.0, 0.015, 0.03):
        for t in GRID_T[:31]:  # 0.30 .. 0.60
            found.append(("score-c*ln(phrasings)", {"min_score": t, "per_ln_phrasing": c},
                          lambda s, v, c=c, t=t: s.top[:, 0] - c * np.log(s.keys) >= t))
            for kind in KINDS:
                for sure in GRID_SURE:
                    for share in GRID_SHARE:
                        found.append((f"cut+coverage({kind})", {"min_score": t, "per_ln_phrasing": c,
                                                                 "sure_score": sure, "min_coverage": share},
                                      lambda s, v, c=c, t=t, kind=kind, sure=sure, share=share:
                                      (s.top[:, 0] - c * np.log(s.keys) >= t)
                                      & ((s.top[:, 0] >= sure) | (getattr(v, kind) >= share))))
                for w in GRID_W:
                    found.append((f"score+w*coverage({kind})", {"min_score": t, "per_ln_phrasing": c, "w": w},
                                  lambda s, v, c=c, t=t, kind=kind, w=w:
                                  s.top[:, 0] - c * np.log(s.keys) + w * (getattr(v, kind) - 0.5) >= t))
    return found


# The brief's form, chosen on clinc150 val (--lexical --choose val: the first of its family; every family
# ties the rule without coverage at miss 0 there), applied to every dataset.
CANDIDATE_FAMILY = "cut+coverage(entry)"
CANDIDATE: dict[str, float] = {"min_score": 0.39, "per_ln_phrasing": 0.03, "sure_score": 0.55, "min_coverage": 0.01}
# Fit by hand on the sample knowledge base (--sample): what it costs on the datasets.
SAMPLE_FIT: dict[str, float] = {"min_score": 0.44, "per_ln_phrasing": 0.015, "sure_score": 0.6, "min_coverage": 0.34}


def lexical(dataset: Dataset, runs: dict) -> dict:
    """Per run: today, the rule in bot/relevance.py, the candidate, each family's
    frontier (fit on the run itself) and the curve of the candidate's family."""
    found = lexical_rules()
    relevance = Relevance()
    out: dict = {}
    table: dict[str, dict] = {}
    for phrasings, run in runs.items():
        for split, questions in dataset.splits.items():
            rows = run[split]["rows"]
            scores, cover = scores_of(rows, questions), coverage_of(dataset, int(phrasings), rows, questions)
            label = f"P={phrasings} {split}"
            points = [(family, constants, point(scores, answered(scores, cover))) for family, constants, answered
                      in found]
            table[label] = {"points": points}
            grid: dict[str, list[dict]] = {}
            for family, constants, figures in points:
                grid.setdefault(family, []).append({**constants, **figures})
            candidate, sample_fit = (next(figures for family, constants, figures in points
                                          if family == CANDIDATE_FAMILY
                                          and all(constants[k] == v for k, v in wanted.items()))
                                     for wanted in (CANDIDATE, SAMPLE_FIT))
            curve_of = {k: v for k, v in CANDIDATE.items() if k != "min_score"}
            out[label] = {
                "today": {"min_score": TODAY, **today_point(scores)},
                "relevance_py": {**relevance.describe(), **point(scores, chosen_mask(
                    dataset, int(phrasings), rows, questions, relevance))},
                "candidate": {"family": CANDIDATE_FAMILY, **CANDIDATE, **candidate},
                "sample_fit": {"family": CANDIDATE_FAMILY, **SAMPLE_FIT, **sample_fit},
                "frontier": {family: frontier(p) for family, p in grid.items()},
                "curve_candidate": [p for p in grid[CANDIDATE_FAMILY]
                                    if all(p[k] == v for k, v in curve_of.items())],
                "curve_sample_fit": [p for p in grid[CANDIDATE_FAMILY]
                                     if all(p[k] == v for k, v in SAMPLE_FIT.items() if k != "min_score")],
                "curve_without": [p for p in grid["score-c*ln(phrasings)"]
                                  if p["per_ln_phrasing"] == CANDIDATE["per_ln_phrasing"]],
            }
    return {"analysis": out, "table": table, "rules": found}


def lexical_choose(dataset: Dataset, runs: dict, result: dict, splits: tuple[str, ...]) -> list:
    """The lexical rules ranked as `choose` ranks (summed miss of both aims on `splits`)."""
    table, found = result["table"], result["rules"]
    today = {label: result["analysis"][label]["today"] for label in table}
    labels = [label for label in table if label.split()[1] in splits]
    ranked = []
    for n, (family, constants, _) in enumerate(found):
        figures = {label: table[label]["points"][n][2] for label in labels}
        miss = sum(max(figures[lb]["oos_answered"] - 0.10, 0) + max(today[lb]["accuracy"] - 0.02
                   - figures[lb]["accuracy"], 0) for lb in labels)
        ranked.append((round(miss, 4), family, constants, figures))
    ranked.sort(key=lambda r: (r[0], -sum(f["accuracy"] for f in r[3].values())))
    return ranked


def lexical_report(dataset: Dataset, analysis: dict) -> str:
    lines = [f"## {dataset.name}: lexical coverage", "",
             "| run | today (0.45) | relevance.py | candidate | sample fit | frontier: best accuracy at OOS <= 10%, "
             "without / with coverage | least OOS at accuracy >= today - 2, without / with |",
             "|---|---|---|---|---|---|---|"]
    for label, r in analysis.items():
        def fig(p: dict | None) -> str:
            return f"{p['oos_answered']:.1%} / {p['accuracy']:.1%}" if p else "-"
        without = r["frontier"]["score-c*ln(phrasings)"]
        with_ = [p for family, pts in r["frontier"].items() for p in pts]
        today = r["today"]["accuracy"]
        least = [min((p for p in pts if p["accuracy"] >= today - 0.02), key=lambda p: p["oos_answered"], default=None)
                 for pts in (without, with_)]
        lines.append(f"| {label} | {fig(r['today'])} | {fig(r['relevance_py'])} | {fig(r['candidate'])} | "
                     f"{fig(r['sample_fit'])} | "
                     f"{fig(best_at(without, 0.10))} ; {fig(best_at(with_, 0.10))} | {fig(least[0])} ; "
                     f"{fig(least[1])} |")
    return "\n".join(lines)


# --- the sample knowledge base, by hand ---------------------------------------------------

SAMPLE = REPO / "knowledge" / "sample"
SAMPLE_EVAL = REPO / "tests" / "data" / "retrieval_eval.jsonl"
# The answer-quality set (issue 13 section 2), when present: answerable, follow-up and out-of-scope questions.
ANSWER_SET = REPO / "bench" / "data" / "answer_quality.jsonl"
SAMPLE_OOS = ["Do you rent out tents?", "Can I hire a kayak?", "Can I use a gift card from another shop?"]


@dataclass(frozen=True)
class Asked:
    group: str  # "paraphrase" | "answerable" | "follow_up" | "out_of_scope"
    question: str
    history: tuple[str, ...]
    right: tuple[str, ...]  # entry ids (or "article: section title") a right answer comes from; () out of scope


def sample_questions() -> list[Asked]:
    asked = [Asked("paraphrase", c["question"], (), (c["expected_id"],))
             for c in map(json.loads, SAMPLE_EVAL.read_text().splitlines()) if c]
    asked += [Asked("out_of_scope", q, (), ()) for q in SAMPLE_OOS]
    if ANSWER_SET.exists():
        for case in map(json.loads, ANSWER_SET.read_text().splitlines()):
            right = tuple(part.strip() for part in case.get("about", "").split(" / ")) if case["category"] != \
                "out_of_scope" else ()
            asked.append(Asked(case["category"], case["question"], tuple(case.get("turns", ())), right))
    return asked


def is_right(hit: Hit, right: tuple[str, ...]) -> bool:
    return any(hit.entry.entry_id == r or (":" in r and hit.entry.entry_id.startswith(r.split(":")[0] + ":")
                                            and hit.entry.title.endswith(r.split(":", 1)[1].strip())) for r in right)


async def sample_hits(pg_port: int, k: int) -> list[tuple[Asked, list[Hit], list[Hit], list[Hit]]]:
    """Per question: what bot/chat.py's `retrieve` searches (alone; for a follow-up also
    with its earlier questions), on the ingested sample knowledge base."""
    from bot import ingest
    from bot.chat import CONVERSATION_K, combined, context_query
    from bot.knowledge import Query

    found = []
    async with contextlib.AsyncExitStack() as stack:
        pool = await scratch_database(stack, "mend-scope-sample-", pg_port, 5, interactions=False)
        embedder = LocalMiniLM()
        store = PgVectorStore(pool, embedder.model_id, embedder.dimension)
        await store.prepare()
        knowledge = Knowledge(pool, store, embedder)
        await ingest.ingest(knowledge, [SAMPLE])
        for asked in sample_questions():
            if not asked.history:
                hits = await knowledge.search(asked.question, k, ["published"], None)
                found.append((asked, hits, hits, []))
                continue
            wide = max(k, CONVERSATION_K)
            (alone, in_context), _ = await knowledge.search_many([
                Query(asked.question, wide, ["published"], None),
                Query(context_query(asked.question, [Turn(q, "") for q in asked.history], 600), wide,
                      ["published"], None)])
            found.append((asked, combined(alone, in_context)[:k], alone, in_context))
    return found


Decide = Callable[[str, Sequence[Hit]], list[Hit]]


def decided(relevant_of: Decide, asked: Asked, ranked: list[Hit], alone: list[Hit]) -> list[Hit]:
    """bot/chat.py's `retrieve` decision with `relevant_of(query, hits)`: a follow-up
    answers from an entry only if the question's own hit for it passes too."""
    relevant = relevant_of(asked.question, ranked)
    if not asked.history:
        return relevant
    own = {hit.entry.entry_id: hit for hit in alone}

    def covered_alone(hit: Hit) -> bool:
        return hit.entry.entry_id in own and bool(relevant_of(asked.question, [own[hit.entry.entry_id]]))

    if not relevant or not covered_alone(relevant[0]):
        return []
    return [hit for hit in relevant if covered_alone(hit)]


def sample_check(pg_port: int) -> dict:
    today = Relevance()
    rules: dict[str, Decide] = {
        "relevance.py (no coverage)": lambda query, hits: today.relevant(hits),
        "candidate (clinc150 val)": Covered(**CANDIDATE).relevant,
        "sample fit": Covered(**SAMPLE_FIT).relevant}
    found = asyncio.run(sample_hits(pg_port, 3))
    result: dict = {}
    for name, relevant_of in rules.items():
        groups: dict[str, dict] = {}
        for asked, ranked, alone, _ in found:
            answer = decided(relevant_of, asked, ranked, alone)
            group = groups.setdefault(asked.group, {"questions": 0, "answered": 0, "answered_right": 0, "cases": []})
            group["questions"] += 1
            group["answered"] += bool(answer)
            group["answered_right"] += bool(answer) and is_right(answer[0], asked.right)
            top = ranked[0] if ranked else None
            group["cases"].append({"question": asked.question, "answered_from": answer[0].entry.entry_id if answer
                                   else "", "top": top.entry.entry_id if top else "",
                                   "score": round(top.score, 3) if top else None,
                                   "coverage": round(coverage(asked.question, entry_texts(top)), 2)
                                   if top else None, "right": list(asked.right)})
        result[name] = groups
    return result


def sample_main(args: argparse.Namespace) -> int:
    result = sample_check(args.pg_port or free_port())
    for name, groups in result.items():
        print(f"{name}:")
        for group, g in groups.items():
            print(f"  {group}: {g['questions']} questions, answered {g['answered']}, answered right "
                  f"{g['answered_right']}")
            for case in g["cases"]:
                if group == "out_of_scope" and case["answered_from"] or group != "out_of_scope" and \
                        case["answered_from"] not in case["right"]:
                    print(f"    {case['question']!r}: answered from {case['answered_from'] or '-'} (top "
                          f"{case['top']} {case['score']}, coverage {case['coverage']}; right {case['right']})")
    path = RESULTS / "scope_lexical_sample.json"
    named = {"family": CANDIDATE_FAMILY, "candidate": CANDIDATE, "sample_fit": SAMPLE_FIT}
    path.write_text(json.dumps({"rules": named, "sample": result}, indent=1) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.sample:
        return sample_main(args)
    dataset = (load_clinc150(args.test_per_intent) if args.dataset == "clinc150"
               else load_banking77(max(args.phrasings)))
    path = RESULTS / f"scope_{dataset.name}.json"
    # The per-question hits (MBs) stay out of the repository: local state, for --from-json.
    rows_path = REPO / ".mend" / "scope_bench" / f"rows_{dataset.name}.json"
    load_before = os.getloadavg()
    started = time.perf_counter()
    if args.from_json:
        saved = json.loads(rows_path.read_text())
        runs, meta = saved["runs"], saved["meta"]
    else:
        print(f"{dataset.name}: {len(dataset.intents)} in-scope intents; "
              + ", ".join(f"{s} {len(q):,} questions" for s, q in dataset.splits.items()), flush=True)
        runs = asyncio.run(collect(dataset, args.phrasings, args.pg_port or free_port()))
        meta = {"dataset": dataset.name, "notes": dataset.notes, "k": K, "phrasings": args.phrasings,
                "test_per_intent": args.test_per_intent, "wall_s": round(time.perf_counter() - started, 1),
                "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "loadavg_start": [round(x, 2) for x in load_before],
                            "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
                "embedder": "minilm-l6-v2-int8", "store": "pgvector (embedded PostgreSQL)",
                "cross_check": {f"P={p} {s}": {"asked_one_by_one": r["cross_checked"],
                                               "differing_from_batch": r["cross_check_differing"]}
                                for p, run in runs.items() for s, r in run.items()}}
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        rows_path.write_text(json.dumps({"meta": meta, "runs": runs}, separators=(",", ":")))
    analysis = analyse(dataset, runs)
    if args.choose:
        print(f"rules ranked on {dataset.name} {'+'.join(args.choose)} "
              "(accuracy short of today's - 2 points, most OOS answered, family, constants):")
        for short, worst, family, constants, figures in choose(dataset, runs, tuple(args.choose))[:args.top]:
            print(f"  {short:.4f} {worst:.1%} {family} {constants} " + " ".join(
                f"[{lb}: {f['oos_answered']:.1%} / {f['accuracy']:.1%}]" for lb, f in figures.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.lexical:
        if not all("matched" in row for run in runs.values() for split in run.values() for row in split["rows"]):
            raise SystemExit("the saved hits have no matched phrasing: search again (without --from-json)")
        result = lexical(dataset, runs)
        if args.choose:
            print(f"lexical rules ranked on {dataset.name} {'+'.join(args.choose)} (miss, family, constants):")
            ranked = lexical_choose(dataset, runs, result, tuple(args.choose))
            for miss, family, constants, figures in ranked[:args.top]:
                print(f"  {miss:.4f} {family} {constants} " + " ".join(
                    f"[{lb}: {f['oos_answered']:.1%} / {f['accuracy']:.1%}]" for lb, f in figures.items()))
        lexical_path = RESULTS / f"scope_lexical_{dataset.name}.json"
        named = {"family": CANDIDATE_FAMILY, "candidate": CANDIDATE, "sample_fit": SAMPLE_FIT}
        lexical_path.write_text(json.dumps({"meta": meta, "rules": named, "analysis": result["analysis"]},
                                           separators=(",", ":")) + "\n")
        print(lexical_report(dataset, result["analysis"]))
        print(f"wrote {lexical_path.relative_to(REPO)}")
        return 0
    path.write_text(json.dumps({"meta": meta, "analysis": analysis}, separators=(",", ":")) + "\n")
    print(report(dataset, analysis))
    print(f"wrote {path.relative_to(REPO)}; machine {meta['machine']}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["clinc150", "banking77"])
    parser.add_argument("--sample", action="store_true",
                        help="check the sample knowledge base by hand (knowledge/sample) instead of a dataset")
    parser.add_argument("--phrasings", type=int, nargs="+", default=[1, 10],
                        help="phrasings seeded per entry; one run each")
    parser.add_argument("--test-per-intent", type=int, default=None,
                        help="clinc150: at most this many test questions per intent (default: all 30)")
    parser.add_argument("--from-json", action="store_true",
                        help="re-analyse the saved search results (.mend/scope_bench/) instead of searching again")
    parser.add_argument("--choose", nargs="*", choices=["val", "test"],
                        help="also rank every rule by its miss of the aim on these splits (all runs at once)")
    parser.add_argument("--lexical", action="store_true",
                        help="analyse the lexical coverage rules instead (bench/results/scope_lexical_<dataset>.json)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--pg-port", type=int, default=0)
    parsed = parser.parse_args()
    if not parsed.sample and not parsed.dataset:
        parser.error("--dataset is required (or --sample)")
    sys.exit(main(parsed))

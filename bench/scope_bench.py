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
what a search returns per entry (`KnowledgeHit.score` is the entry's best key;
`matched_question` names that one key, so how many of an entry's keys agree is
not observable through the RPC). "chosen" is `bot.relevance.Relevance()` itself.

Results: bench/results/scope_<dataset>.json (per-query top-10 scores and the
curves) and the tables printed; see bench/results/scope.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import random
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
from pgvector.asyncpg import register_vector

from bot.__main__ import KNOWLEDGE_SERVICE
from bot.__main__ import migrate as migrate_bot
from bot.catalog import Entry
from bot.knowledge import Hit, Knowledge
from bot.knowledge_service import KnowledgeService
from bot.relevance import Relevance
from bot.vectorstores.pgvector_store import PgVectorStore
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import database
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, start_server
from mendmodels.embeddings.local_minilm import LocalMiniLM

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "bench" / "results"
K = 10
BATCH = 250
TODAY = 0.45  # bot.chat.Retrieval.threshold: a cosine cut on the top hit
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


def row_of(hits: Iterable[tuple[str, float]], intent_of: dict[str, str], keys: dict[str, int]) -> dict:
    """A question's hits: the entries' intents, scores, and how many phrasings (keys) each entry has."""
    listed = list(hits)
    return {"intents": [intent_of[e] for e, _ in listed], "scores": [round(s, 5) for _, s in listed],
            "keys": [keys[e] for e, _ in listed]}


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
        rows += [row_of(((h.entry_id, h.score) for h in result.hits), intent_of, keys) for result in response.results]
        done = start + len(chunk)
        rate = done / max(time.perf_counter() - started, 1e-6)
        print(f"  {label}: searched {done:,} / {len(questions):,} ({rate:.0f}/s)", flush=True)
    differing = 0
    for n in range(0, len(questions), max(1, len(questions) // CROSS_CHECK)):
        single = await stub.SearchKnowledge(pb.SearchKnowledgeRequest(query=questions[n].text, k=K, source=source),
                                            timeout=60)
        one = row_of(((h.entry.entry_id, h.score) for h in single.hits), intent_of,
                     {h.entry.entry_id: len(h.entry.questions) for h in single.hits})
        same = one["intents"] == rows[n]["intents"] and np.allclose(one["scores"], rows[n]["scores"], atol=1e-4)
        differing += not same
    return rows, differing


async def collect(dataset: Dataset, phrasings_list: list[int], pg_port: int) -> dict:
    runs: dict[str, dict] = {}
    async with contextlib.AsyncExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mend-scope-bench-")))
        server = EmbeddedPostgres(home=home, port=pg_port)
        url = await asyncio.to_thread(server.start)
        stack.callback(server.stop)
        await ensure_database(url)
        await migrate_bot(url)
        pool = await database.create_pool(url, 5, init=register_vector)
        stack.push_async_callback(pool.close)
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
    """One split of one run as arrays: top-K scores (-inf padded), the top entry's
    phrasing count, whether the top entry is right, whether the question is in scope."""

    top: np.ndarray
    keys: np.ndarray
    right: np.ndarray
    in_scope: np.ndarray

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
    for n, (row, question) in enumerate(zip(rows, questions, strict=True)):
        top[n, :len(row["scores"])] = row["scores"]
        if row["intents"]:
            keys[n] = row["keys"][0]
            right[n] = row["intents"][0] == question.intent
    return Scores(top, keys, right, np.array([q.intent is not None for q in questions]))


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


def chosen_mask(scores: Scores, relevance: Relevance) -> np.ndarray:
    """`bot.relevance` itself, over Hit objects built from the search rows (the
    runner-ups' phrasing counts do not matter to the rule's decision)."""
    answered = np.zeros(len(scores.right), bool)
    for n, row in enumerate(scores.top):
        hits = [Hit(Entry(f"e{k}", "qa", "", "", ("q",) * int(scores.keys[n] if k == 0 else 1), "bench",
                          "published"), float(s), "q")
                for k, s in enumerate(row) if np.isfinite(s)]
        answered[n] = bool(relevance.relevant(hits))
    return answered


def evaluate(dataset: Dataset, runs: dict, found: list[Rule]) -> dict[str, dict]:
    """Per run and split: the figures of every rule of `found`, keyed by family and constants."""
    table: dict[str, dict] = {}
    for phrasings, run in runs.items():
        for split, questions in dataset.splits.items():
            scores = scores_of(run[split]["rows"], questions)
            table[f"P={phrasings} {split}"] = {
                "scores": scores,
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
            "today": {"min_score": TODAY, **point(scores, scores.top[:, 0] >= TODAY)},
            "chosen": {**relevance.describe(), **point(scores, chosen_mask(scores, relevance))},
            "frontier": {family: frontier(points) for family, points in grid.items()},
            "curve_score": grid["score"],
        }
    return analysis


def choose(dataset: Dataset, runs: dict, splits: tuple[str, ...] = ("val",)) -> list[tuple[float, str, dict, dict]]:
    """Every rule ranked by how far it misses the aim on `splits` of every run at
    once (OOS answered <= 10%, accuracy >= today's - 2 points): the sum, over runs,
    of the OOS excess plus the accuracy shortfall; ties go to more accuracy."""
    table = evaluate(dataset, runs, rules())
    today = {label: point(r["scores"], r["scores"].top[:, 0] >= TODAY) for label, r in table.items()}
    labels = [label for label in table if label.split()[1] in splits]
    ranked = []
    for n, (family, constants, _) in enumerate(rules()):
        figures = {label: table[label]["points"][n][2] for label in labels}
        miss = sum(max(figures[lb]["oos_answered"] - 0.10, 0) + max(today[lb]["accuracy"] - 0.02
                   - figures[lb]["accuracy"], 0) for lb in labels)
        ranked.append((round(miss, 4), family, constants, figures))
    ranked.sort(key=lambda r: (r[0], -sum(f["accuracy"] for f in r[3].values())))
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


def main(args: argparse.Namespace) -> int:
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
        print(f"rules ranked on {dataset.name} {'+'.join(args.choose)} (miss, family, constants):")
        for miss, family, constants, figures in choose(dataset, runs, tuple(args.choose))[:args.top]:
            print(f"  {miss:.4f} {family} {constants} " + " ".join(
                f"[{lb}: {f['oos_answered']:.1%} / {f['accuracy']:.1%}]" for lb, f in figures.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "analysis": analysis}, separators=(",", ":")) + "\n")
    print(report(dataset, analysis))
    print(f"wrote {path.relative_to(REPO)}; machine {meta['machine']}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["clinc150", "banking77"], required=True)
    parser.add_argument("--phrasings", type=int, nargs="+", default=[1, 10],
                        help="phrasings seeded per entry; one run each")
    parser.add_argument("--test-per-intent", type=int, default=None,
                        help="clinc150: at most this many test questions per intent (default: all 30)")
    parser.add_argument("--from-json", action="store_true",
                        help="re-analyse the saved search results (.mend/scope_bench/) instead of searching again")
    parser.add_argument("--choose", nargs="*", choices=["val", "test"],
                        help="also rank every rule by its miss of the aim on these splits (all runs at once)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--pg-port", type=int, default=0)
    sys.exit(main(parser.parse_args()))

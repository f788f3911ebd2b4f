"""When an answer should say it may not be what was asked: `python -m bench.sure_bench`.

    .venv/bin/python -m bench.scope_bench --dataset clinc150 --phrasings 1 5 10   # the searches, once
    .venv/bin/python -m bench.sure_bench --dataset clinc150 --choose               # choose Relevance.sure_score
    .venv/bin/python -m bench.sure_bench --dataset banking77                       # report with it

Reads the hits bench/scope_bench.py saved (.mend/scope_bench/rows_<dataset>.json:
the real index and embedder, through the bot's RPCs) and applies bot/relevance.py
to them: a question is *answered* when `Relevance.relevant` keeps a hit, and
answered *sure* when its best hit also passes `Relevance.sure`; the others it
answers are hedged (bot/chat.py: "I'm not sure I understood ..." and the way to
a person). Per run (phrasings per entry P, split):

- precision by score: of the answers with a top score in each 0.05 band, the
  share from the question's own entry (out-of-scope questions count as wrong);
- per candidate sure_score (0.01 steps, the rule's own rise per phrasing): the
  precision of the sure answers, the share of right answers hedged, and the
  share of out-of-scope questions answered sure / answered at all.

`--choose` picks the lowest candidate whose sure answers are from the right
entry at least `PRECISION` of the time on every val run at once (clinc150:
val + oos_val + oos_train), the way `Relevance.min_score` was chosen; test and
banking77 only report. Results: bench/results/scope_sure_<dataset>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from bench.scope_bench import REPO, RESULTS, Dataset, load_banking77, load_clinc150, scores_of
from bot.catalog import Entry
from bot.knowledge import Hit
from bot.relevance import Relevance

# Sure answers must be right this often: 9 times in 10, as trainer/triage.py's SURE.
PRECISION = 0.90
CANDIDATES = [round(0.55 + 0.01 * n, 2) for n in range(31)]  # 0.55 .. 0.85
BANDS = [round(0.40 + 0.05 * n, 2) for n in range(12)]  # 0.40 .. 0.95


def masks(dataset: Dataset, phrasings: int, rows: list[dict], relevance: Relevance) -> tuple[np.ndarray, np.ndarray]:
    """Which questions bot/relevance.py answers, and which of those it answers sure."""
    answered = np.zeros(len(rows), bool)
    sure = np.zeros(len(rows), bool)
    for n, row in enumerate(rows):
        hits = [Hit(Entry(intent, "qa", "", "", tuple(dataset.phrasings[intent][:phrasings]), "bench", "published"),
                    score, "")
                for intent, score in zip(row["intents"], row["scores"], strict=True)]
        relevant = relevance.relevant(hits)
        answered[n] = bool(relevant)
        sure[n] = bool(relevant) and relevance.sure(relevant[0])
    return answered, sure


def share(part: np.ndarray, whole: np.ndarray) -> float:
    return round(float(part.sum() / whole.sum()), 4) if whole.sum() else 0.0


def analyse(dataset: Dataset, runs: dict) -> dict:
    base = Relevance()
    result: dict[str, dict] = {}
    for p, run in runs.items():
        for split, data in run.items():
            questions = dataset.splits[split]
            scores = scores_of(data["rows"], questions)
            top, right, oos = scores.top[:, 0], scores.right, ~scores.in_scope
            answered, _ = masks(dataset, int(p), data["rows"], base)
            bands = []
            for low in BANDS:
                band = answered & (top >= low) & (top < low + 0.05)
                if band.any():
                    bands.append({"from": low, "answers": int(band.sum()), "right": share(band & right, band)})
            candidates = []
            for value in CANDIDATES:
                _, sure = masks(dataset, int(p), data["rows"], dataclasses.replace(base, sure_score=value))
                candidates.append({"sure_score": value, "sure_precision": share(sure & right, sure),
                                   "right_hedged": share(answered & ~sure & right, answered & right),
                                   "oos_answered_sure": share(sure & oos, oos),
                                   "oos_answered": share(answered & oos, oos),
                                   "wrong_hedged": share(answered & ~sure & ~right, answered & ~right)})
            result[f"P={p} {split}"] = {"bands": bands, "candidates": candidates}
    return result


def choose(analysis: dict) -> float | None:
    val = [run for label, run in analysis.items() if label.endswith(" val")]
    for n, value in enumerate(CANDIDATES):
        if all(run["candidates"][n]["sure_precision"] >= PRECISION for run in val):
            return value
    return None


def report(analysis: dict, value: float) -> str:
    n = CANDIDATES.index(value)
    lines = [f"sure_score {value}: | run | sure answers right | right answers hedged | wrong answers hedged "
             "| OOS answered sure | OOS answered (hedged too) |"]
    for label, run in analysis.items():
        c = run["candidates"][n]
        lines.append(f"| {label} | {c['sure_precision']:.1%} | {c['right_hedged']:.1%} | {c['wrong_hedged']:.1%} "
                     f"| {c['oos_answered_sure']:.1%} | {c['oos_answered']:.1%} |")
    lines.append("precision of the answers by top score (from: right share of answers):")
    for label, run in analysis.items():
        lines.append(f"  {label}: " + ", ".join(f"{b['from']:.2f}: {b['right']:.0%} of {b['answers']}"
                                             for b in run["bands"]))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    dataset = load_clinc150(None) if args.dataset == "clinc150" else load_banking77(10)
    rows_path = REPO / ".mend" / "scope_bench" / f"rows_{dataset.name}.json"
    if not rows_path.exists():
        raise SystemExit(f"no saved searches at {rows_path}: run "
                         f"`python -m bench.scope_bench --dataset {dataset.name} --phrasings 1 5 10` first")
    analysis = analyse(dataset, json.loads(rows_path.read_text())["runs"])
    chosen = choose(analysis) if args.choose else None
    if args.choose:
        print(f"lowest sure_score with sure answers >= {PRECISION:.0%} right on every val run: {chosen}")
    value = chosen if chosen is not None else Relevance().sure_score
    print(report(analysis, value))
    path = RESULTS / f"scope_sure_{dataset.name}.json"
    path.write_text(json.dumps({"precision_aim": PRECISION, "chosen_on_val": chosen, "reported": value,
                                "relevance": Relevance().describe(), "runs": analysis}, indent=1) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["clinc150", "banking77"], required=True)
    parser.add_argument("--choose", action="store_true", help="choose the sure score on the val runs")
    sys.exit(main(parser.parse_args()))

"""When an answer should say it may not be what was asked: `python -m bench.sure_bench`.

    .venv/bin/python -m bench.scope_bench --dataset clinc150 --phrasings 1 5 10   # the searches, once
    .venv/bin/python -m bench.sure_bench --dataset clinc150 --choose               # choose Relevance's sure rule
    .venv/bin/python -m bench.sure_bench --dataset banking77                       # report with it

Reads the hits bench/scope_bench.py saved (.mend/scope_bench/rows_<dataset>.json:
the real index and embedder, through the bot's RPCs). A question is *answered*
when bot/relevance.py's `Relevance.relevant` keeps a hit, and answered *sure*
when `Relevance.sure` holds for its hits too; the others it answers are hedged
(bot/chat.py: "I'm not sure I understood ..." and the way to a person). Per run
(phrasings per entry P, split):

- precision by score: of the answers with a top score in each 0.05 band, the
  share from the question's own entry (out-of-scope questions count as wrong);
- per candidate rule, sure when the top support reaches `sure_score`, or
  `sure_score_apart` with the runner-up entry's best phrasing `sure_margin`
  behind the top entry's (each with the cut's rise per ln(phrasings); the grid
  includes the margin switched off):
  the precision of the sure answers, the share of right answers hedged, and the
  share of out-of-scope questions answered sure / answered at all.

`--choose` picks, among the candidates whose sure answers are from the right
entry at least `PRECISION` of the time on every val run at once (clinc150: val +
oos_val + oos_train), the one that hedges the fewest right answers on val (mean
over the runs), the way `Relevance.min_score` was chosen; test and banking77
only report. The grid is scored with array arithmetic; the reported rule is
then checked against `Relevance.sure` itself, question by question.
Results: bench/results/scope_sure_<dataset>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys

import numpy as np

from bench.scope_bench import (
    REPO,
    RESULTS,
    Dataset,
    Scores,
    chosen_mask,
    hits_of,
    load_banking77,
    load_clinc150,
    scores_of,
)
from bot.relevance import Relevance

# Sure answers must be right this often: 9 times in 10, as trainer/triage.py's SURE.
PRECISION = 0.90
SCORES = [round(0.60 + 0.02 * n, 2) for n in range(11)]  # sure_score 0.60 .. 0.80
APART = [round(0.50 + 0.02 * n, 2) for n in range(9)]  # sure_score_apart 0.50 .. 0.66
MARGINS = [round(0.04 + 0.02 * n, 2) for n in range(11)]  # 0.04 .. 0.24
# (sure_score, sure_score_apart, sure_margin); apart = sure_score with no margin: the score alone.
CANDIDATES = sorted({(a, b, m) for a, b, m in itertools.product(SCORES, APART, MARGINS) if b < a}
                    | {(a, a, 0.0) for a in SCORES})
BANDS = [round(0.40 + 0.05 * n, 2) for n in range(12)]  # 0.40 .. 0.95


def sure_mask(scores: Scores, relevance: Relevance) -> np.ndarray:
    """`Relevance.sure` over a whole split at once (checked against it in `check`)."""
    rise = relevance.per_ln_phrasing * np.log(np.maximum(1, scores.keys))
    top = scores.top[:, 0]
    return (top >= relevance.sure_score + rise) | (
        (top >= relevance.sure_score_apart + rise) & (scores.key_margin >= relevance.sure_margin))


def check(dataset: Dataset, runs: dict, relevance: Relevance) -> int:
    """Questions where `sure_mask` and `Relevance.sure` itself disagree (0 expected)."""
    differing = 0
    for p, run in runs.items():
        for split, data in run.items():
            fast = sure_mask(scores_of(data["rows"], dataset.splits[split]), relevance)
            exact = [relevance.sure(hits_of(dataset, int(p), row)) for row in data["rows"]]
            differing += int(np.sum(fast != np.array(exact, bool)))
    return differing


def share(part: np.ndarray, whole: np.ndarray) -> float:
    return round(float(part.sum() / whole.sum()), 4) if whole.sum() else 0.0


def analyse(dataset: Dataset, runs: dict) -> dict:
    base = Relevance()
    result: dict[str, dict] = {}
    for p, run in runs.items():
        for split, data in run.items():
            scores = scores_of(data["rows"], dataset.splits[split])
            top, right, oos = scores.top[:, 0], scores.right, ~scores.in_scope
            answered = chosen_mask(dataset, int(p), data["rows"], dataset.splits[split], base)
            bands = []
            for low in BANDS:
                band = answered & (top >= low) & (top < low + 0.05)
                if band.any():
                    bands.append({"from": low, "answers": int(band.sum()), "right": share(band & right, band)})
            candidates = []
            for a, b, m in CANDIDATES:
                rule = dataclasses.replace(base, sure_score=a, sure_score_apart=b, sure_margin=m)
                sure = answered & sure_mask(scores, rule)
                candidates.append({"sure_score": a, "sure_score_apart": b, "sure_margin": m,
                                   "sure_precision": share(sure & right, sure),
                                   "right_hedged": share(answered & ~sure & right, answered & right),
                                   "oos_answered_sure": share(sure & oos, oos),
                                   "oos_answered": share(answered & oos, oos),
                                   "wrong_hedged": share(answered & ~sure & ~right, answered & ~right)})
            result[f"P={p} {split}"] = {"bands": bands, "candidates": candidates}
    return result


Rule = tuple[float, float, float]  # sure_score, sure_score_apart, sure_margin


def choose(analysis: dict) -> Rule | None:
    """The candidate that hedges the fewest right answers on val (mean over the
    val runs) among those whose sure answers are right often enough on each."""
    val = [run for label, run in analysis.items() if label.endswith(" val")]
    fitting = [(float(np.mean([run["candidates"][n]["right_hedged"] for run in val])), rule)
               for n, rule in enumerate(CANDIDATES)
               if all(run["candidates"][n]["sure_precision"] >= PRECISION for run in val)]
    return min(fitting)[1] if fitting else None


def rule_of(relevance: Relevance) -> Rule:
    return (relevance.sure_score, relevance.sure_score_apart, relevance.sure_margin)


def report(analysis: dict, rule: Rule) -> str:
    n = CANDIDATES.index(rule)
    lines = [f"sure_score, sure_score_apart, sure_margin = {rule}:",
             "| run | sure answers right | right answers hedged | wrong answers hedged | OOS answered sure "
             "| OOS answered (hedged too) |"]
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
    runs = json.loads(rows_path.read_text())["runs"]
    analysis = analyse(dataset, runs)
    chosen = choose(analysis) if args.choose else None
    if args.choose:
        print(f"fewest right answers hedged on val with sure answers >= {PRECISION:.0%} right on every val run: "
              f"{chosen}")
        score_only = [rule for rule in CANDIDATES if rule[2] == 0.0]
        for rule in score_only:
            n = CANDIDATES.index(rule)
            if all(analysis[label]["candidates"][n]["sure_precision"] >= PRECISION
                   for label in analysis if label.endswith(" val")):
                print(f"  the score alone: {rule[0]} at the least")
                break
    rule = chosen or rule_of(Relevance())
    print(report(analysis, rule))
    relevance = dataclasses.replace(Relevance(), sure_score=rule[0], sure_score_apart=rule[1], sure_margin=rule[2])
    differing = check(dataset, runs, relevance)
    print(f"questions where the arrays and Relevance.sure disagree: {differing}")
    path = RESULTS / f"scope_sure_{dataset.name}.json"
    n = CANDIDATES.index(rule)
    path.write_text(json.dumps({
        "precision_aim": PRECISION, "chosen_on_val": chosen, "reported": rule, "relevance": Relevance().describe(),
        "checked_against_relevance_sure": {"differing": differing},
        "runs": {label: {"bands": run["bands"], "reported": run["candidates"][n],
                         "score_alone": [c for c in run["candidates"] if c["sure_margin"] == 0.0]}
                 for label, run in analysis.items()}}, indent=1) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return 1 if differing else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["clinc150", "banking77"], required=True)
    parser.add_argument("--choose", action="store_true", help="choose the sure rule on the val runs")
    sys.exit(main(parser.parse_args()))

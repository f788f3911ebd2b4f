"""How a search should score an entry from its keys: `python -m bench.key_support`.

    .venv/bin/python -m bench.key_support   # ~2 min the first time (embeds clinc150 and banking77), then seconds

Offline, in numpy, with the bot's own int8 MiniLM: for knowledge bases of one,
five and ten phrasings per intent (the first P train questions, as
bench/scope_bench.py seeds them), each entry is scored for a question by
- `best`: its best key's cosine (the search before issue 13's support);
- `meanM`: the mean of its M best keys (M = 2, 3, 5; fewer when it has fewer);
- `best+w*2nd`: (1 - w) * best + w * second best, w = 0.25 (w = 0.5 is mean2);
and either only decides with it (the entry is still the best key's) or also
ranks by it. For each, on clinc150 val and test (with their out-of-scope
questions) and banking77 test (a third of its intents held out), the cut
sweeps 0.20-0.95 and the table shows the two ends of the aim of issue 13:
the best in-scope accuracy with at most 10% of out-of-scope questions
answered, and the fewest out-of-scope answered with accuracy at most 2 points
below `best` at 0.45. Both are upper bounds (each cut fit on the split it is
scored on): they compare the scores, they choose no constant. The constants
are chosen on val through the bot's RPCs by bench/scope_bench.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.learned_relevance import DATASETS, banking77, embedded

CUTS = np.arange(0.20, 0.95, 0.0025)
TODAY = 0.45


def scored(similarity: np.ndarray, entries: int, phrasings: int) -> dict[str, np.ndarray]:
    """(questions, entries) scores per rule; keys are grouped `phrasings` per entry."""
    ranked = -np.sort(-similarity.reshape(len(similarity), entries, phrasings), axis=2)
    found = {"best": ranked[:, :, 0]}
    for m in (2, 3, 5):
        if phrasings >= m:
            found[f"mean{m}"] = ranked[:, :, :m].mean(axis=2)
    if phrasings >= 2:
        found["best+0.25*2nd"] = 0.75 * ranked[:, :, 0] + 0.25 * ranked[:, :, 1]
    return found


def sweep(score: np.ndarray, rank: np.ndarray, truth: np.ndarray) -> list[tuple[float, float, float]]:
    rows = np.arange(len(truth))
    top = rank.argmax(axis=1)
    decided, right, outside = score[rows, top], top == truth, truth < 0
    return [(cut, float(((decided >= cut) & outside).sum() / outside.sum()),
             float(((decided >= cut) & right).sum() / (~outside).sum())) for cut in CUTS]


def report(name: str, similarity: np.ndarray, truth: np.ndarray, entries: int, phrasings: int) -> None:
    rules = scored(similarity, entries, phrasings)
    today = next(a for c, _, a in sweep(rules["best"], rules["best"], truth) if c >= TODAY)
    for rule, score in rules.items():
        for ranks in ("best", rule) if rule != "best" else ("best",):
            curve = sweep(score, rules[ranks], truth)
            best = max((p for p in curve if p[1] <= 0.10), key=lambda p: p[2])
            least = min((p for p in curve if p[2] >= today - 0.02), key=lambda p: p[1], default=None)
            top1 = float((rules[ranks].argmax(axis=1) == truth)[truth >= 0].mean())
            fewest = f"{least[1]:.1%} ({least[2]:.1%} at {least[0]:.3f})" if least else "none reaches it"
            print(f"| {name} | {rule} | {'itself' if ranks == rule else 'best key'} | {top1:.1%} "
                  f"| {best[2]:.1%} ({best[1]:.1%} at {best[0]:.3f}) | {fewest} |", flush=True)


def main() -> None:
    cache = Path("/tmp/mend-learned-relevance")
    cache.mkdir(parents=True, exist_ok=True)
    clinc = json.loads((DATASETS / "clinc150" / "data_full.json").read_text())
    vectors = {split: embedded(cache, f"clinc_{split}", [text for text, _ in clinc[split]])
               for split in ("train", "val", "test", "oos_train", "oos_val", "oos_test")}
    intents = sorted({intent for _, intent in clinc["train"]})
    index = {intent: n for n, intent in enumerate(intents)}
    rows_of: dict[str, list[int]] = {}
    for row, (_, intent) in enumerate(clinc["train"]):
        rows_of.setdefault(intent, []).append(row)
    in_scope, test, bank_train, bank_test, where = banking77(cache)
    bank_truth = np.array([in_scope.index(c) if c in in_scope else -1 for _, c in test])
    print("| run | entry score | ranked by | top-1 | best accuracy at OOS <= 10% (OOS at cut) "
          "| least OOS at accuracy >= best-key 0.45 - 2 pts (accuracy at cut) |")
    print("|---|---|---|---:|---:|---:|")
    for phrasings in (1, 5, 10):
        keys = vectors["train"][[row for intent in intents for row in rows_of[intent][:phrasings]]]
        for split, oos in (("val", ("oos_val", "oos_train")), ("test", ("oos_test",))):
            questions = np.vstack([vectors[split]] + [vectors[o] for o in oos])
            truth = np.array([index[i] for _, i in clinc[split]] + [-1] * sum(len(clinc[o]) for o in oos))
            report(f"clinc150 P={phrasings} {split}", questions @ keys.T, truth, len(intents), phrasings)
        keys = bank_train[[row for category in in_scope for row in where[category][:phrasings]]]
        report(f"banking77 P={phrasings} test", bank_test @ keys.T, bank_truth, len(in_scope), phrasings)


if __name__ == "__main__":
    main()

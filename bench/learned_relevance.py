"""Tried for issue 13 and not adopted: a learned answer-or-"don't know" rule over
the embedder's own features. `python -m bench.learned_relevance [--features scalar|prod] [--label right|in_scope]`
(defaults: prod, in_scope).

    .venv/bin/python -m bench.learned_relevance --features scalar --label right
    .venv/bin/python -m bench.learned_relevance --features prod --label in_scope

No cross-encoder ships in a registry package (docs/benchmarks.md), so this asks
whether the int8 MiniLM the bot already runs can decide better than a cut on its
cosine if a small logistic head is trained over its features: the top entry's
best-key score, the margin over the runner-up, ln(phrasings of the top entry),
and (`--features prod`) the elementwise product of the question's and the
matched key's embeddings (384 weights: a learned weighted cosine).

Trained on clinc150's train split only: knowledge bases of one, five and ten
phrasings per intent with a third of the intents left out in turn (their
questions are out of scope there, as banking77's held-out siblings are in
bench/scope_bench.py), plus oos_train. `--label right`: the top entry is the
question's own; `--label in_scope`: the question's intent is in the knowledge
base. Reported like bench/scope_bench.py (whose numbers the `cut` and `chosen`
columns reproduce, computed here in numpy from the same embeddings): the best
in-scope top-1 accuracy at <= 10% of out-of-scope questions answered, for the
plain cut and for the head, on clinc150 val and test and on banking77 test (a
domain the head never saw). Both are best cases: each threshold is picked on the
split it is scored on. Embeddings are cached in --cache.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CUTS = np.arange(0.2, 0.95, 0.005)


def embedded(cache: Path, name: str, texts: list[str]) -> np.ndarray:
    path = cache / f"{name}.npy"
    if path.exists():
        return np.load(path)
    from mendmodels.embeddings.local_minilm import LocalMiniLM

    started = time.monotonic()
    vectors = LocalMiniLM(threads=1, workers=2).embed_sync(texts)
    np.save(path, vectors)
    print(f"embedded {name}: {len(texts):,} texts in {time.monotonic() - started:.0f} s", flush=True)
    return vectors


def banking77(cache: Path) -> tuple[list[str], list[tuple[str, str]], np.ndarray, np.ndarray, dict[str, list[int]]]:
    """banking77 as bench/scope_bench.py splits it (every third intent of
    categories.json held out as out of scope): the intents in scope, the test
    rows, the train and test embeddings, and each intent's train rows."""
    folder = DATASETS / "banking77"
    categories = json.loads((folder / "categories.json").read_text())
    held_out = set(categories[0::3])
    in_scope = [category for category in categories if category not in held_out]
    with open(folder / "train.csv", newline="") as handle:
        train = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    with open(folder / "test.csv", newline="") as handle:
        test = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    train_vectors = embedded(cache, "banking77_train", [text for text, _ in train])
    test_vectors = embedded(cache, "banking77_test", [text for text, _ in test])
    where: dict[str, list[int]] = {}
    for row, (_, category) in enumerate(train):
        where.setdefault(category, []).append(row)
    return in_scope, test, train_vectors, test_vectors, where


class Knowledge:
    """Entries as sets of key embeddings; a question's top entry is its best key's."""

    def __init__(self, keys: np.ndarray, entry_of_key: list[int], entries: int) -> None:
        self.keys, self.entry_of_key, self.entries = keys, np.asarray(entry_of_key), entries
        self.phrasings = np.bincount(self.entry_of_key, minlength=entries)

    def features(self, questions: np.ndarray) -> dict[str, np.ndarray]:
        similarity = questions @ self.keys.T
        best = np.full((len(questions), self.entries), -1.0, dtype=np.float32)
        best_key = np.zeros((len(questions), self.entries), dtype=np.int64)
        for entry in range(self.entries):
            columns = np.where(self.entry_of_key == entry)[0]
            part = similarity[:, columns]
            best[:, entry] = part.max(axis=1)
            best_key[:, entry] = columns[part.argmax(axis=1)]
        order = np.argsort(-best, axis=1)
        rows = np.arange(len(questions))
        top = order[:, 0]
        return {"top": top, "score": best[rows, top], "runner_up": best[rows, order[:, 1]],
                "ln_phrasings": np.log(self.phrasings[top]),
                "product": questions * self.keys[best_key[rows, top]]}


def design(found: dict[str, np.ndarray], features: str) -> np.ndarray:
    columns = [found["score"][:, None], (found["score"] - found["runner_up"])[:, None], found["ln_phrasings"][:, None]]
    if features == "prod":
        columns.append(found["product"])
    return np.hstack(columns).astype(np.float64)


def fit(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 600,
        rate: float = 0.5) -> Callable[[np.ndarray], np.ndarray]:
    """Class-balanced logistic regression by gradient descent on standardised features."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    weights, bias = np.zeros(z.shape[1]), 0.0
    balance = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    for _ in range(steps):
        error = (1 / (1 + np.exp(-(z @ weights + bias))) - y) * balance
        weights -= rate * (z.T @ error / len(y) + l2 * weights)
        bias -= rate * error.mean()
    return lambda other: ((other - mean) / scale) @ weights + bias


def best_accuracy(score: np.ndarray, right: np.ndarray, out_of_scope: np.ndarray, cuts) -> tuple[float, float]:
    """The best (accuracy, OOS answered) over the cuts with <= 10% of OOS answered."""
    best = (0.0, 0.0)
    for cut in cuts:
        answered = score >= cut
        oos = (answered & out_of_scope).sum() / out_of_scope.sum()
        accuracy = (answered & right).sum() / (~out_of_scope).sum()
        if oos <= 0.10 and accuracy > best[0]:
            best = (accuracy, oos)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", choices=("scalar", "prod"), default="prod")
    parser.add_argument("--label", choices=("in_scope", "right"), default="in_scope")
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mend-learned-relevance"))
    arguments = parser.parse_args()
    arguments.cache.mkdir(parents=True, exist_ok=True)
    clinc = json.loads((DATASETS / "clinc150" / "data_full.json").read_text())
    vectors = {split: embedded(arguments.cache, f"clinc_{split}", [text for text, _ in clinc[split]])
               for split in ("train", "val", "test", "oos_train", "oos_val", "oos_test")}
    intents = sorted({intent for _, intent in clinc["train"]})
    rows_of: dict[str, list[int]] = {}
    for row, (_, intent) in enumerate(clinc["train"]):
        rows_of.setdefault(intent, []).append(row)
    train_intent = [intent for _, intent in clinc["train"]]

    def knowledge(kept: list[str], phrasings: int) -> tuple[Knowledge, set[int]]:
        rows = [(row, n) for n, intent in enumerate(kept) for row in rows_of[intent][:phrasings]]
        keys = vectors["train"][[row for row, _ in rows]]
        return Knowledge(keys, [n for _, n in rows], len(kept)), {row for row, _ in rows}

    generator = np.random.default_rng(0)
    xs, ys = [], []
    for phrasings in (1, 5, 10):
        for third in range(3):
            kept = [intent for n, intent in enumerate(intents) if n % 3 != third]
            index = {intent: n for n, intent in enumerate(kept)}
            kb, used = knowledge(kept, phrasings)
            asked = generator.choice([row for row in range(len(train_intent)) if row not in used], 4000,
                                     replace=False)
            found = kb.features(vectors["train"][asked])
            if arguments.label == "in_scope":
                label = np.array([train_intent[row] in index for row in asked], dtype=float)
            else:
                label = (found["top"] == np.array([index.get(train_intent[row], -1) for row in asked])).astype(float)
            outside = kb.features(vectors["oos_train"])
            xs += [design(found, arguments.features), design(outside, arguments.features)]
            ys += [label, np.zeros(len(vectors["oos_train"]))]
    head = fit(np.vstack(xs), np.concatenate(ys), arguments.l2)

    def report(name: str, kb: Knowledge, questions: np.ndarray, truth: list[int | None]) -> None:
        found = kb.features(questions)
        out_of_scope = np.array([t is None for t in truth])
        right = np.array([t is not None and found["top"][n] == t for n, t in enumerate(truth)])
        learned = head(design(found, arguments.features))
        cut = best_accuracy(found["score"], right, out_of_scope, CUTS)
        mine = best_accuracy(learned, right, out_of_scope, np.quantile(learned, np.linspace(0, 1, 400)))
        chosen = found["score"] >= 0.44 + 0.015 * found["ln_phrasings"]
        covered = (~out_of_scope).sum()
        print(f"| {name} | {right.sum() / covered:.1%} "
              f"| {(chosen & out_of_scope).sum() / out_of_scope.sum():.1%} / {(chosen & right).sum() / covered:.1%} "
              f"| {cut[0]:.1%} ({cut[1]:.1%}) | {mine[0]:.1%} ({mine[1]:.1%}) |", flush=True)

    print(f"features {arguments.features}, label {arguments.label}, l2 {arguments.l2}")
    print("| run | top-1 | chosen rule: OOS / accuracy | best accuracy at OOS <= 10%: cut (OOS) | learned head (OOS) |")
    print("|---|---:|---:|---:|---:|")
    index = {intent: n for n, intent in enumerate(intents)}
    for phrasings in (1, 5, 10):
        kb, _ = knowledge(intents, phrasings)
        for split, oos in (("val", "oos_val"), ("test", "oos_test")):
            report(f"clinc150 P={phrasings} {split}", kb, np.vstack([vectors[split], vectors[oos]]),
                   [index[intent] for _, intent in clinc[split]] + [None] * len(clinc[oos]))
    in_scope, test, train_vectors, test_vectors, where = banking77(arguments.cache)
    banking_index = {category: n for n, category in enumerate(in_scope)}
    for phrasings in (1, 5, 10):
        rows = [(row, n) for n, category in enumerate(in_scope) for row in where[category][:phrasings]]
        kb = Knowledge(train_vectors[[row for row, _ in rows]], [n for _, n in rows], len(in_scope))
        report(f"banking77 P={phrasings} test", kb, test_vectors, [banking_index.get(c) for _, c in test])


if __name__ == "__main__":
    main()

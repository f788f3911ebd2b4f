"""Measures the trainer's triage rule (trainer/triage.py and the similarity
judge) offline on banking77, the heal benchmark's protocol in miniature, and
prints precision and recall per class. Not a test (it takes a minute to embed
10,003 questions): `python -m tests.trainer.triage_calibration [seeds]`.

Per seed: 2/3 of the 77 intents get one entry with one phrasing (a train
question), 5 of them a stale answer; 20 other train questions per intent are
asked. The bot answers as bot/ does (MiniLM cosine, k=3, threshold 0.45; the
best source is the one it answered from). The simulated customer dislikes:
a reply from another intent's entry or "I don't know" (NOT_RELEVANT, with a
comment; truth: misrouted when the intent has an entry, else gap), a right reply
from a stale entry (OUTDATED or INCORRECT with a comment stating the fact;
truth: wrong), and one in ten other right replies (OTHER, "I don't like this
policy"; truth: no action). The trainer's search is simulated as its k=3 over
the published entries. A misrouted or wrong verdict counts as right only with
the right target entry.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from tests.support import REPO
from trainer import triage
from trainer.judge import Hit, SimilarityJudge
from trainer.loop import K
from trainer.triage import Kind

DATA = REPO.parent / "shared" / "datasets" / "banking77" / "train.csv"
BOT_THRESHOLD, BOT_K, PER_INTENT, STALE_INTENTS = 0.45, 3, 20, 5


def embedded() -> tuple[np.ndarray, list[str], list[str]]:
    from mendmodels.embeddings.local_minilm import LocalMiniLM

    cache = Path("/tmp/mend_triage_calibration.npz")
    rows = list(csv.DictReader(DATA.open()))
    texts, intents = [r["text"] for r in rows], [r["category"] for r in rows]
    if cache.exists():
        return np.load(cache)["vectors"], texts, intents
    vectors = LocalMiniLM(threads=2, workers=1).embed_sync(texts)
    np.savez(cache, vectors=vectors)
    return vectors, texts, intents


def scenario(seed: int, vectors: np.ndarray, texts: list[str], intents: list[str]):
    """(interaction, published hits, truth, target entry id) per disliked reply."""
    rng = np.random.default_rng(seed)
    names = sorted(set(intents))
    order = list(rng.permutation(names))
    seeded = order[:len(names) * 2 // 3]
    stale = set(seeded[:STALE_INTENTS])
    rows = {name: rng.permutation([i for i, n in enumerate(intents) if n == name]) for name in names}
    entries = [bpb.KnowledgeEntry(entry_id=name, questions=[texts[rows[name][0]]], status=bpb.ENTRY_STATUS_PUBLISHED)
               for name in seeded]
    matrix = np.stack([vectors[rows[name][0]] for name in seeded])
    for name in names:
        for row in rows[name][1:PER_INTENT + 1]:
            scores = matrix @ vectors[row]
            best = np.argsort(-scores)
            sources = [ipb.KnowledgeSource(entry_id=seeded[j], score=float(scores[j])) for j in best[:BOT_K]
                       if scores[j] >= BOT_THRESHOLD]
            right = bool(sources) and sources[0].entry_id == name
            if right and name in stale:
                truth = "wrong"
                reason = ipb.FEEDBACK_REASON_OUTDATED if rng.random() < 0.5 else ipb.FEEDBACK_REASON_INCORRECT
                comment = f"That is out of date: the {name.replace('_', ' ')} rules changed last month."
            elif right:
                if rng.random() >= 0.1:
                    continue  # liked, or not rated
                truth, reason, comment = "no_action", ipb.FEEDBACK_REASON_OTHER, "I don't like this policy."
            else:
                truth = "misrouted" if name in seeded else "gap"
                reason, comment = ipb.FEEDBACK_REASON_NOT_RELEVANT, "That does not answer my question."
            item = ipb.Interaction(user_query=texts[row], sources=sources, feedback_reason=reason,
                                   feedback_comment=comment)
            published = [Hit(entries[j], float(scores[j])) for j in best[:K]]
            yield item, published, truth, (name if truth != "gap" else "")


async def verdict(item: ipb.Interaction, published: list[Hit], judge: SimilarityJudge) -> tuple[str, str]:
    found = triage.decide(item, published)
    if found.kind is Kind.GAP and found.candidates:
        hit = await judge.covering(item.user_query, found.candidates)
        if hit is not None:
            return Kind.MISROUTED.value, hit.entry.entry_id
    return found.kind.value, found.target.entry.entry_id if found.target is not None else ""


async def main(seeds: int) -> None:
    vectors, texts, intents = embedded()
    for threshold in (0.6, 0.7, 0.8):
        judge = SimilarityJudge(threshold)
        results = [(truth, target, *await verdict(item, published, judge)) for seed in range(seeds)
                   for item, published, truth, target in scenario(seed, vectors, texts, intents)]
        print(f"judge threshold {threshold} (MEND_COVERED_SIMILARITY), {seeds} seeds, {len(results)} dislikes:")
        right = Counter(truth for truth, target, kind, got in results if kind == truth and got == target)
        for name in ("gap", "misrouted", "wrong", "no_action"):
            said = sum(1 for _, _, kind, _ in results if kind == name)
            true = sum(1 for truth, *_ in results if truth == name)
            print(f"  {name:10} precision {right[name] / max(1, said):6.1%} ({right[name]}/{said})"
                  f"   recall {right[name] / max(1, true):6.1%} ({right[name]}/{true})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))

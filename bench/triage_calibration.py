"""Measures the trainer's triage rule (trainer/triage.py and the similarity
judge) offline on banking77, the heal benchmark's protocol in miniature, and
prints precision and recall per class. Not a test (it takes a minute to embed
10,003 questions): `python -m bench.triage_calibration [seeds]`.

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

Then the liked evidence of trainer/evidence.py: the right replies the customer
did not dislike are the liked questions; each disliked question's nearest liked
question (answered from another entry than the disliked one) names an entry.
Per question, and per topic (a topic's disliked questions: the fold's groups at
their best), precision (the named entry is the question's own) and recall (of
the misrouted questions) for a few similarities and shares (`... 5 liked`);
the fold of the gap questions at a few similarities (`... 3 fold`); and label
propagation from liked to disliked questions, per question (`... 5 propagate`).
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
from trainer import triage
from trainer.judge import Hit, SimilarityJudge
from trainer.loop import K
from trainer.triage import Kind

REPO = Path(__file__).resolve().parent.parent
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


def answered(seed: int, vectors: np.ndarray, intents: list[str]):
    """`seed`'s scenario without stale entries or noise: the liked (row, intent)
    (answered right) and the disliked (row, intent, source, truth)."""
    rng = np.random.default_rng(seed)
    names = sorted(set(intents))
    order = list(rng.permutation(names))
    seeded = order[:len(names) * 2 // 3]
    rows = {name: rng.permutation([i for i, n in enumerate(intents) if n == name]) for name in names}
    matrix = np.stack([vectors[rows[name][0]] for name in seeded])
    liked, disliked = [], []
    for name in names:
        for row in rows[name][1:PER_INTENT + 1]:
            scores = matrix @ vectors[row]
            best = int(np.argmax(scores))
            source = seeded[best] if scores[best] >= BOT_THRESHOLD else ""
            if source == name:
                liked.append((row, name))
            else:
                disliked.append((row, name, source, "misrouted" if name in seeded else "gap"))
    return liked, disliked


def report_propagated(seeds: int, vectors: np.ndarray, intents: list[str]) -> None:
    """Label propagation from liked to disliked questions, per question: among a
    disliked question's k most similar questions, liked ones (labelled with the
    entry they were liked for) and the other disliked ones (unlabelled, or, when
    iterated, labelled by the round before), the entry with at least `share` of
    the k votes, not the one it was answered from, is the one it is misrouted to.
    A gap topic's neighbours are its own disliked questions; a misrouted one's
    include its entry's liked ones. Means over the seeds (worst seed)."""
    rules: dict[str, list[tuple[float, float]]] = {}
    for seed in range(seeds):
        liked, disliked = answered(seed, vectors, intents)
        to_liked = np.stack([vectors[r] for r, *_ in disliked]) @ np.stack([vectors[r] for r, _ in liked]).T
        to_disliked = np.stack([vectors[r] for r, *_ in disliked]) @ np.stack([vectors[r] for r, *_ in disliked]).T
        np.fill_diagonal(to_disliked, -np.inf)
        misrouted = sum(1 for *_, truth in disliked if truth == "misrouted")
        for k in (5, 10, 15):
            for share in (0.4, 0.5, 0.6):
                for rounds in (1, 3):
                    labels: list[str | None] = [None] * len(disliked)
                    for _ in range(rounds):
                        labels = [_vote(i, source, k, share, liked, labels, to_liked, to_disliked)
                                  for i, (_, _, source, _) in enumerate(disliked)]
                    said = [(label, disliked[i][1]) for i, label in enumerate(labels) if label]
                    right = sum(1 for label, name in said if label == name)
                    rules.setdefault(f"k={k}, share >= {share}, {rounds} round(s)", []).append(
                        (right / max(1, len(said)), right / max(1, misrouted)))
    print(f"label propagation, {seeds} seeds: mean precision (worst seed), mean recall of misrouted")
    for rule, values in rules.items():
        precision = [p for p, _ in values]
        print(f"  {rule:40} {np.mean(precision):6.1%} ({min(precision):6.1%})  {np.mean([r for _, r in values]):6.1%}")


def _vote(i: int, source: str, k: int, share: float, liked: list, labels: list, to_liked: np.ndarray,
          to_disliked: np.ndarray) -> str | None:
    near = sorted([(float(to_liked[i, j]), name) for j, (_, name) in enumerate(liked) if name != source]
                  + [(float(to_disliked[i, j]), label or "") for j, label in enumerate(labels) if j != i],
                  key=lambda pair: -pair[0])[:k]
    votes = Counter(label for _, label in near if label)
    if not votes:
        return None
    entry, count = votes.most_common(1)[0]
    return entry if count >= share * k and entry != source else None


def liked_evidence(seed: int, vectors: np.ndarray, intents: list[str]):
    """Per disliked question of `seed`'s scenario (no stale entries, no noise:
    liked = answered right): (truth, intent, (similarity, entry) of its nearest
    liked question not answered from the entry it was answered from, or None),
    and the similarity matrix of the disliked questions."""
    liked, disliked = answered(seed, vectors, intents)
    liked_vectors = np.stack([vectors[row] for row, _ in liked])
    disliked_vectors = np.stack([vectors[row] for row, *_ in disliked])
    found = []
    for row, name, source, truth in disliked:
        similarity = liked_vectors @ vectors[row]
        near = next(((float(similarity[j]), liked[j][1]) for j in np.argsort(-similarity)
                     if liked[j][1] != source), None)
        found.append((truth, name, near))
    return found, disliked_vectors @ disliked_vectors.T


def report_liked(seeds: int, vectors: np.ndarray, intents: list[str]) -> None:
    """Means over the seeds (worst seed in brackets) of the precision and recall of
    "misrouted to the named entry", per question and per topic (each topic's
    disliked questions one group, as trainer/evidence.py judges a fold group)."""
    rules: dict[str, list[tuple[float, float]]] = {}

    def add(rule: str, said: int, right: int, misrouted: int) -> None:
        rules.setdefault(rule, []).append((right / max(1, said), right / max(1, misrouted)))

    for seed in range(seeds):
        results, similar = liked_evidence(seed, vectors, intents)
        misrouted = sum(1 for truth, _, _ in results if truth == "misrouted")
        for threshold in (0.75, 0.8, 0.85):
            said = [(truth, name, near[1]) for truth, name, near in results if near and near[0] >= threshold]
            add(f"per question, nearest >= {threshold}", len(said),
                sum(1 for truth, name, entry in said if truth == "misrouted" and entry == name), misrouted)
        topics: dict[tuple[str, str], list[int]] = {}
        for index, (truth, name, _) in enumerate(results):
            topics.setdefault((name, truth), []).append(index)
        for threshold in (0.7, 0.75):
            for share in (0.2, 0.3):
                for cohesive in (False, True):
                    said = right = 0
                    for (name, truth), members in topics.items():
                        nears = [results[i][2] for i in members]
                        votes = Counter(near[1] for near in nears if near and near[0] >= threshold)
                        if not votes:
                            continue
                        entry, count = votes.most_common(1)[0]
                        if count < max(2, share * len(members)):
                            continue
                        if cohesive and len(members) > 1:
                            cohesion = np.mean([max(similar[i, j] for j in members if j != i) for i in members])
                            if np.mean([n[0] for n in nears if n and n[0] >= threshold and n[1] == entry]) < cohesion:
                                continue
                        said += len(members)
                        right += len(members) if truth == "misrouted" and entry == name else 0
                    add(f"per topic, nearest >= {threshold}, share >= {share}"
                        + (", as near as the topic to itself" if cohesive else ""), said, right, misrouted)
    print(f"liked evidence, {seeds} seeds: mean precision (worst seed), mean recall of misrouted")
    for rule, values in rules.items():
        precision = [p for p, _ in values]
        print(f"  {rule:70} {np.mean(precision):6.1%} ({min(precision):6.1%})  {np.mean([r for _, r in values]):6.1%}")


def _agglomerated(similar: np.ndarray, threshold: float) -> list[list[int]]:
    """Complete-linkage clustering of a whole page at once (not in the page's
    order, as the fold must): groups merge while every pair across two of them
    is at least `threshold` similar. An upper bound on what re-grouping buys."""
    linked = similar.astype(float).copy()
    np.fill_diagonal(linked, -np.inf)
    members = {i: [i] for i in range(len(similar))}
    while members:
        a, b = divmod(int(np.argmax(linked)), len(linked))
        if linked[a, b] < threshold:
            break
        linked[a, :] = np.minimum(linked[a, :], linked[b, :])
        linked[:, a] = linked[a, :]
        linked[a, a] = linked[b, :] = linked[:, b] = -np.inf
        members[a] += members.pop(b)
    return list(members.values())


def report_fold(seeds: int, vectors: np.ndarray, intents: list[str]) -> None:
    """The fold of trainer/fold.py on the gap questions (shuffled): each joins the
    group of its most similar earlier question among its 3 peers at >= threshold
    (single linkage, as the batch search's peers give it), or the group of the
    most similar group by mean similarity (average linkage); or the whole page
    is clustered at once (complete linkage); fixes per topic and the share of
    questions in a group whose majority topic is another."""
    names = sorted(set(intents))
    for linkage in ("single", "average", "complete, whole page"):
        for threshold in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
            per_topic, foreign = [], []
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                seeded = set(list(rng.permutation(names))[:len(names) * 2 // 3])
                rows = {n: rng.permutation([i for i, x in enumerate(intents) if x == n]) for n in names}
                asked = [(row, n) for n in names if n not in seeded for row in rows[n][1:PER_INTENT + 1]]
                rng.shuffle(asked)
                matrix = np.stack([vectors[row] for row, _ in asked])
                similar = matrix @ matrix.T
                group: list[int] = []
                members: list[list[int]] = []
                if linkage.startswith("complete"):
                    members = _agglomerated(similar, threshold)
                for i in range(len(asked) if not members else 0):
                    earlier = similar[i, :i]
                    close = [int(j) for j in np.argsort(-earlier)[:3 if linkage == "single" else 10]
                             if earlier[j] >= (threshold if linkage == "single" else 0.3)]
                    if linkage == "single":
                        chosen = group[close[0]] if close else None
                    else:
                        means = {group[j]: float(np.mean(similar[i, members[group[j]]])) for j in close}
                        best = max(means, key=means.__getitem__, default=None)
                        chosen = best if best is not None and means[best] >= threshold else None
                    if chosen is None:
                        chosen = len(members)
                        members.append([])
                    group.append(chosen)
                    members[chosen].append(i)
                topics = Counter()
                wrong = 0
                for ids in members:
                    counted = Counter(asked[j][1] for j in ids)
                    top, count = counted.most_common(1)[0]
                    topics[top] += 1
                    wrong += len(ids) - count
                per_topic.append(np.mean([topics[n] for n in names if n not in seeded]))
                foreign.append(wrong / len(asked))
            print(f"fold, {linkage} linkage >= {threshold}: fixes per gap topic {np.mean(per_topic):5.2f}, "
                  f"questions in another topic's group {np.mean(foreign):6.1%}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "fold":
        found, _, labels = embedded()
        report_fold(int(sys.argv[1]), found, labels)
        sys.exit(0)
    if len(sys.argv) > 2 and sys.argv[2] == "propagate":
        found, _, labels = embedded()
        report_propagated(int(sys.argv[1]), found, labels)
        sys.exit(0)
    if len(sys.argv) > 2 and sys.argv[2] == "liked":
        found, _, labels = embedded()
        report_liked(int(sys.argv[1]), found, labels)
        sys.exit(0)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))

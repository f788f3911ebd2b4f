"""What-if retrieval: for each question, the published entry the bot answers it
from now, and the keys of some entries-to-be that would take it from that
answer. The regression gate's primitive (trainer/regressions.py): a fix is
replayed against the questions customers were answered right before it goes
live. Nothing is written, and the changed entries are never embedded into the
index: their keys are compared with the questions directly, which is exactly
what a search would do once they were published (an entry's rank is its
support, the mean cosine of its two best keys, bot/vectorstores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.catalog import Entry
from bot.knowledge import Hit, Knowledge, Query
from bot.relevance import Relevance
from bot.vectorstores.base import SUPPORT_KEYS, VERBATIM

# Questions searched per store batch (the index's batch search takes 1,000).
BATCH = 1_000
# Overtaking keys reported per question: enough for the gate to withhold every
# phrasing of a fix that would take it.
MAX_OVERTAKES = 20


@dataclass(frozen=True)
class Overtake:
    entry_id: str
    key: str
    score: float


def supports(similarity: np.ndarray, entry_of_key: np.ndarray, entries: int) -> np.ndarray:
    """Each entry's support for each question (rows), as a search scores it
    (bot/vectorstores/base.py `support_of`)."""
    found = np.zeros((similarity.shape[0], entries), np.float32)
    for entry in range(entries):
        own = similarity[:, entry_of_key == entry]
        best = min(SUPPORT_KEYS, own.shape[1])
        top = own.max(axis=1)
        mean = -np.partition(-own, best - 1, axis=1)[:, :best].mean(axis=1)
        found[:, entry] = np.where(top >= VERBATIM, top, mean)
    return found


@dataclass(frozen=True)
class Replayed:
    entry_id: str  # "" when the question finds no published entry
    score: float
    answered: bool  # the bot would answer from `entry_id` (its relevance rule)
    overtaken_by: list[Overtake]


async def replay(knowledge: Knowledge, relevance: Relevance, queries: Sequence[str],
                 changes: Sequence[Entry], each_alone: bool = False) -> list[Replayed]:
    # k=2: the runner-up entry, for the relevance rule's margin when one is set and
    # for an entry its own new keys weaken (below).
    k = 2
    found = []
    for first in range(0, len(queries), BATCH):
        chunk = queries[first:first + BATCH]
        batch, _ = await knowledge.search_many([Query(text, k, ["published"], None) for text in chunk])
        found.extend(batch)
    keys = [(entry.entry_id, key) for entry in changes for key in entry.retrieval_keys]
    changed = {entry.entry_id: entry for entry in changes}
    number = {entry_id: n for n, entry_id in enumerate(dict.fromkeys(entry_id for entry_id, _ in keys))}
    entry_of_key = np.array([number[entry_id] for entry_id, _ in keys], dtype=np.int64)
    similarity = np.zeros((len(queries), 0), np.float32)
    if keys:
        # Cached: the questions were embedded for the search just above.
        questions = await knowledge.embedder.embed(list(queries))
        similarity = questions @ (await knowledge.embedder.embed([key for _, key in keys])).T
    support = supports(similarity, entry_of_key, len(number))
    results = []
    for row, hits in enumerate(found):
        top = hits[0] if hits else None
        now = top.entry.entry_id if top else ""
        others = entry_of_key != number.get(now, -1)
        # A changed entry takes the question when its support reaches that of what
        # answers it now (with that entry's own changed keys, if it is among the
        # changes), and at least the lowest cut any entry has: below that it would
        # answer nothing. Its keys that reach that floor are the ones reported:
        # without them the rest average below it, so withholding them is enough.
        grown = now in number and not each_alone
        own = float(support[row, number[now]]) if grown else 0.0
        floor = max(own if grown else (top.support if top else 0.0), relevance.min_score)
        takes = support[row, entry_of_key] >= floor
        taking = np.flatnonzero(others & takes & (similarity[row] >= floor))
        if grown and top is not None:
            # A phrasing added to an entry of one can lower its support (one key
            # becomes the mean of two), and every phrasing raises its cut: if the
            # question then falls below that cut or behind the runner-up, the
            # phrasings it gained take it away.
            runner = hits[1] if len(hits) > 1 and hits[1].entry.entry_id not in number else None
            entry = changed[now]
            if own < relevance.cut(Hit(entry, own, "", own)) or (runner is not None and own < runner.support):
                had = set(top.entry.retrieval_keys)
                taking = np.concatenate([taking, [c for c in np.flatnonzero(entry_of_key == number[now])
                                                  if keys[c][1] not in had]]).astype(np.int64)
        taking = taking[np.argsort(-similarity[row, taking], kind="stable")][:MAX_OVERTAKES]
        results.append(Replayed(
            entry_id=now, score=top.score if top else 0.0, answered=bool(relevance.relevant(hits)),
            overtaken_by=[Overtake(keys[c][0], keys[c][1], float(similarity[row, c])) for c in taking]))
    return results

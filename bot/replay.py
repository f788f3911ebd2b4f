"""What-if retrieval: for each question, the published entry the bot answers it
from now, and the keys of some entries-to-be that would take it from that
answer. The regression gate's primitive (trainer/regressions.py): a fix is
replayed against the questions customers were answered right before it goes
live. Nothing is written, and the changed entries are never embedded into the
index: their keys are compared with the questions directly, which is exactly
what a search would do once they were published (an entry's score is its
best key's cosine, bot/vectorstores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.catalog import Entry
from bot.knowledge import Knowledge, Query
from bot.relevance import Relevance

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


@dataclass(frozen=True)
class Replayed:
    entry_id: str  # "" when the question finds no published entry
    score: float
    answered: bool  # the bot would answer from `entry_id` (its relevance rule)
    overtaken_by: list[Overtake]


async def replay(knowledge: Knowledge, relevance: Relevance, queries: Sequence[str],
                 changes: Sequence[Entry], each_alone: bool = False) -> list[Replayed]:
    # k=2 covers the relevance rule's runner-up margin when one is set.
    k = 2 if relevance.min_margin > 0 else 1
    found = []
    for first in range(0, len(queries), BATCH):
        chunk = queries[first:first + BATCH]
        batch, _ = await knowledge.search_many([Query(text, k, ["published"], None) for text in chunk])
        found.extend(batch)
    keys = [(entry.entry_id, key) for entry in changes for key in entry.retrieval_keys]
    number = {entry_id: n for n, entry_id in enumerate(dict.fromkeys(entry_id for entry_id, _ in keys))}
    entry_of_key = np.array([number[entry_id] for entry_id, _ in keys], dtype=np.int64)
    similarity = np.zeros((len(queries), 0), np.float32)
    if keys:
        # Cached: the questions were embedded for the search just above.
        questions = await knowledge.embedder.embed(list(queries))
        similarity = questions @ (await knowledge.embedder.embed([key for _, key in keys])).T
    results = []
    for row, hits in enumerate(found):
        top = hits[0] if hits else None
        now = top.entry.entry_id if top else ""
        others = entry_of_key != number.get(now, -1)
        # A key must reach what answers the question now (with that entry's own
        # changed keys, if it is among the changes: a grown entry holds on to
        # its questions better), and at least the lowest cut any entry has:
        # below that it would answer nothing.
        own = similarity[row, ~others] if not each_alone else similarity[row, :0]
        floor = max(top.score if top else 0.0, float(own.max()) if own.size else 0.0, relevance.min_score)
        taking = np.flatnonzero(others & (similarity[row] >= floor))
        taking = taking[np.argsort(-similarity[row, taking], kind="stable")][:MAX_OVERTAKES]
        results.append(Replayed(
            entry_id=now, score=top.score if top else 0.0, answered=bool(relevance.relevant(hits)),
            overtaken_by=[Overtake(keys[c][0], keys[c][1], float(similarity[row, c])) for c in taking]))
    return results

"""What liked answers say about disliked ones: a liked interaction is a
customer's word that the entry it was answered from (its first source) is right
for its question. A topic of disliked questions (a new-entry group of the fold,
trainer/fold.py) whose members' nearest liked questions were answered right by
one entry E is a topic E already covers, which the bot missed for these
phrasings: the fix adds them to E (misrouted) instead of writing a second
entry on E's topic (a duplicate fix).

Why the group and not each question: with one phrasing per entry (MiniLM, the
heal benchmark's seeding) a question's nearest liked question names the right
entry too rarely to act on it alone. Measured offline (`python -m
bench.triage_calibration 5 liked`: banking77 train split, calibration seeds
0-4, not the benchmark's), means over the seeds: a nearest liked question
>= 0.8 similar names the question's own entry 81% of the time, for 15%
of the misrouted questions. Per topic (the topic's disliked questions as one
group) it is stronger: when at least 30% of them have their nearest liked
question (>= 0.7) answered from one entry, and those are on average at least
as similar to them as the group's questions are to each other, that entry is
the topic's own 97% of the time (84% at worst by seed), for 30% of the
misrouted questions. Without the cohesion condition, 82% for 50%: a topic the
knowledge lacks is often near a sibling topic's liked questions, but nearer
still to itself. The stricter rule is kept: phrasings added to the wrong
entry take its right answers away (the heal benchmark, seed 1: the looser one
moved 18 gap dislikes into other entries and healed 6 points fewer).

Similarities come from the bot's BatchSearchKnowledge `peers` (the trainer has
no embedder of its own): one batch holds liked questions (searched with k=1, to
check that each is still answered from the entry it was liked for) and the
page's disliked questions (searched in no source at all, so they carry no
hits, only their peers: the liked questions, earlier in the batch, at least
`LIKED_SIMILARITY` similar).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from trainer.judge import Hit
from trainer.privacy import masked

# Liked interactions read per run (oldest first; the contract has no other order).
LIKED_MAX = 5000
# Queries of one BatchSearchKnowledge (the contract's maximum).
BATCH = 1000
# A liked question at least this similar to a disliked one votes for its entry
# (cosine, MiniLM; see the module docstring).
LIKED_SIMILARITY = 0.7
# The share of a group's questions whose nearest liked question votes for one
# entry that makes the group misrouted to it: 89% right on the calibration
# seeds. At least two votes: a group of one is a single question's evidence.
GROUP_SHARE = 0.3
MIN_VOTES = 2
# Liked peers asked for per disliked question (the contract caps peers at the query's k).
PEERS = 20
# A source no entry has: the disliked questions of an evidence batch find no
# entries, only their peers (the liked questions of the batch).
PEERS_ONLY = "mend-trainer-peers-only"
SEARCH_TIMEOUT_S = 120


@dataclass(frozen=True)
class Liked:
    """A liked question and the entry it was answered from."""

    question: str
    entry_id: str
    interaction_id: str = ""


async def liked(interactions: ipb_grpc.InteractionsServiceAsyncStub, limit: int = LIKED_MAX) -> list[Liked]:
    """Liked, grounded interactions, one per distinct question (masked, as every
    question the trainer reads), at most `limit`. Not an answer the bot was unsure
    of: a follow-up answered from the conversation's topic ("and what does that
    cost?") says nothing of what its entry answers on its own."""
    found: dict[str, Liked] = {}
    token = ""
    while len(found) < limit:
        page = await interactions.ListInteractions(ipb.ListInteractionsRequest(
            feedback=ipb.FEEDBACK_FILTER_LIKED, page_size=BATCH, page_token=token))
        for item in map(masked, page.interactions):
            if item.sources and item.user_query.strip() and not item.unsure:
                found.setdefault(item.user_query, Liked(item.user_query, item.sources[0].entry_id,
                                                         item.interaction_id))
        token = page.next_page_token
        if not token:
            break
    return list(found.values())[:limit]


async def nearest(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, questions: Sequence[str],
                  evidence: Sequence[Liked]) -> list[Hit | None]:
    """For each question, the entry of its most similar liked question (with that
    similarity), if one is at least LIKED_SIMILARITY similar and is still
    answered from the entry it was liked for; else None."""
    best: list[Hit | None] = [None] * len(questions)
    if not evidence or not questions:
        return best
    # Each batch: at most half of it questions, the rest liked ones (embedded once:
    # the bot keeps recent embeddings, so a text sent again costs no model time).
    for first in range(0, len(questions), BATCH // 2):
        asked = questions[first:first + BATCH // 2]
        room = BATCH - len(asked)
        for start in range(0, len(evidence), room):
            chunk = evidence[start:start + room]
            for row, hit in enumerate(await _nearest_in(knowledge, asked, chunk)):
                current = best[first + row]
                if hit is not None and (current is None or hit.score > current.score):
                    best[first + row] = hit
    return best


async def _nearest_in(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, questions: Sequence[str],
                      chunk: Sequence[Liked]) -> list[Hit | None]:
    response = await knowledge.BatchSearchKnowledge(bpb.BatchSearchKnowledgeRequest(
        queries=[bpb.SearchKnowledgeRequest(query=like.question, k=1, statuses=[bpb.ENTRY_STATUS_PUBLISHED])
                 for like in chunk]
        + [bpb.SearchKnowledgeRequest(query=question, k=PEERS, statuses=[bpb.ENTRY_STATUS_PUBLISHED],
                                      source=PEERS_ONLY) for question in questions],
        peer_similarity=LIKED_SIMILARITY), timeout=SEARCH_TIMEOUT_S)
    entries = {entry.entry_id: entry for entry in response.entries}
    found = response.results[:len(chunk)]
    # A liked question votes only if it is still answered from its entry (not
    # taken over since by another, nor its entry withdrawn).
    still = {n: entries[like.entry_id] for n, (like, result) in enumerate(zip(chunk, found, strict=True))
             if result.hits and result.hits[0].entry_id == like.entry_id and like.entry_id in entries}
    nearest_hits: list[Hit | None] = []
    for result in response.results[len(chunk):]:
        peer = next((p for p in result.peers if p.query_index in still), None)  # most similar first
        nearest_hits.append(None if peer is None else Hit(still[peer.query_index], peer.score))
    return nearest_hits


def answered_from(item: ipb.Interaction) -> str:
    return item.sources[0].entry_id if item.sources else ""


def misrouted_to(items: Sequence[ipb.Interaction], near: Sequence[Hit | None], cohesion: float) -> Hit | None:
    """The entry a group of disliked questions (`items`, with each one's nearest
    liked evidence `near`) is misrouted to, or None: the entry that enough of
    their nearest liked questions were answered from, and not the one the bot
    answered a question from (that is the entry the customer disliked), whose
    liked questions are on average at least as similar to the group's as these
    are to each other (`cohesion`: the mean of each one's best similarity to
    another of the group). A topic the knowledge lacks is often near a sibling
    topic's liked questions, but nearer still to itself."""
    votes: Counter[str] = Counter()
    hits: dict[str, Hit] = {}
    for item, hit in zip(items, near, strict=True):
        if hit is not None and hit.entry.entry_id != answered_from(item):
            votes[hit.entry.entry_id] += 1
            if hit.entry.entry_id not in hits or hit.score > hits[hit.entry.entry_id].score:
                hits[hit.entry.entry_id] = hit
    if not votes:
        return None
    entry, count = min(votes.items(), key=lambda pair: (-pair[1], pair[0]))
    if count < max(MIN_VOTES, math.ceil(GROUP_SHARE * len(items))):
        return None
    scores = [hit.score for hit in near if hit is not None and hit.entry.entry_id == entry]
    return hits[entry] if sum(scores) / len(scores) >= cohesion else None

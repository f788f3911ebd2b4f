"""What kind of fix a disliked answer needs, from what the interaction carries
(the question, the entries the bot answered from and their scores, the
customer's reason and comment) and what the page's search found (the published
entries nearest the question, best first):

- no action: the bot answered from the best published entry and the customer
  gave another reason than wrong or unrelated (OTHER: a policy they dislike,
  say), or gave none about an entry that matches the question very closely
  (`SURE`). Also a "question" with no letters in it (noise);
- wrong: the bot answered from the best published entry and the customer says
  its answer is wrong, outdated or incomplete, with a comment (the evidence the
  teacher revises the answer with) or about an entry matching `SURE`ly. The
  fix edits that entry's answer. Never for an answer the bot said it was unsure
  of (Interaction.unsure: a follow-up answered from the conversation's topic);
  that complaint is triaged as a gap or a misrouted question;
- misrouted: another published entry, not the one the customer disliked,
  answers the question (the judge says so: with the embedded model, a
  similarity threshold, `MEND_COVERED_SIMILARITY`). The fix adds the customer's
  phrasing to that entry;
- gap: otherwise. The fix is a new entry, unless the liked answers show that
  the page's group of such questions is an existing entry's topic (misrouted
  after all: trainer/evidence.py, on the fold's groups).

The entry the bot answered from is never the one that "covers" a question the
customer disliked (the old judge's mistake): a customer who says the answer was
unrelated rules it out, and one who says it was wrong asks for an edit of it.

Calibrated offline on banking77 (`python -m bench.triage_calibration`,
the heal benchmark's protocol in miniature: one entry with one phrasing per
seeded intent, MiniLM, the bot's 0.45 threshold). There the bot's best source
is the right entry for 41% of the questions it answers, 73% from a score of
0.7, 89% from 0.8 and 95% from 0.85: `SURE` = 0.8. Which entry answers a
question it did not find is much harder: the right entry of a misanswered
question is the best other candidate only 32% of the time and outside the top 5
for 35%, and the best candidate's score is distributed alike for misrouted and
gap questions, so no threshold reaches even 50% precision (0.6: 40%; 0.7: 50%
at 1% recall). Hence misrouted only on strong evidence, and a gap otherwise:
a needless new entry duplicates a topic, while phrasings added to the wrong
entry make its answers wrong.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mend.interactions.v1 import interactions_service_pb2 as ipb
from trainer.judge import Hit

# A published entry this similar to the question (cosine, MiniLM) is the right
# one for it about 9 times in 10 (see the module docstring).
SURE = 0.8
# Reasons that say the content of the answer is wrong, not that it was about something else.
COMPLAINTS = frozenset({ipb.FEEDBACK_REASON_INCORRECT, ipb.FEEDBACK_REASON_OUTDATED, ipb.FEEDBACK_REASON_INCOMPLETE})
_LETTER = re.compile(r"[^\W\d_]")


class Kind(enum.StrEnum):
    GAP = "gap"
    MISROUTED = "misrouted"
    WRONG = "wrong"
    NO_ACTION = "no_action"


@dataclass(frozen=True)
class Verdict:
    """A triage class, and the entry it concerns: the entry to add phrasings
    to (misrouted), to edit (wrong) or that answered right (no action).
    For a gap, `candidates` are the entries the judge is still to ask about
    (the best first): one that answers makes the question misrouted."""

    kind: Kind
    target: Hit | None = None
    candidates: tuple[Hit, ...] = ()


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def decide(item: ipb.Interaction, published: Sequence[Hit]) -> Verdict:
    """The verdict on one disliked interaction, before the judge; `published`
    are the published entries its question found, best first."""
    if not _LETTER.search(item.user_query):
        return Verdict(Kind.NO_ACTION)
    source = item.sources[0].entry_id if item.sources else ""
    best = published[0] if published else None
    if best is not None and best.entry.entry_id == source:
        # The bot answered from what is still the best entry for the question.
        reason = item.feedback_reason
        # Not for an unsure answer: the entry was taken because the question pointed
        # back at it, not as the answer to it, so its answer is no more wrong than before.
        if reason in COMPLAINTS and (item.feedback_comment.strip() or best.score >= SURE) and not item.unsure:
            return Verdict(Kind.WRONG, best)
        unrelated = reason == ipb.FEEDBACK_REASON_NOT_RELEVANT
        if reason == ipb.FEEDBACK_REASON_OTHER or (reason not in COMPLAINTS and not unrelated and best.score >= SURE):
            return Verdict(Kind.NO_ACTION, best)
    others = tuple(hit for hit in published if hit.entry.entry_id != source)
    for hit in others:
        if any(_same(question, item.user_query) for question in hit.entry.questions):
            # The entry lists this very question already (it gained it after the bot
            # answered): nothing to add, and the bot finds it now.
            return Verdict(Kind.NO_ACTION, hit)
    return Verdict(Kind.GAP, candidates=others)

"""Whether the knowledge covers a question: the hits to answer from, or none
("I don't know" and the way to a person).

The rule, chosen by measurement (bench/scope_bench.py, bench/results/scope.md):
answer from the top hit when its cosine score reaches a cut that rises with the
number of phrasings (retrieval keys) its entry has:

    score >= min_score + per_ln_phrasing * ln(phrasings)

A hit's score is the best of its entry's keys, so an entry with more phrasings
gets a higher score from any question, unrelated ones included: at one fixed
cut, seeding clinc150 with 10 phrasings per entry instead of 1 raised the share
of out-of-scope questions answered from 4.5% to 13.5% (val), 7.2% to 24.8% (test).
The raised cut keeps that share level as entries grow phrasings (liked
questions, fixes), which no fixed cut, margin over the runner-up, or gap over
the other hits did on the validation set for 1, 5 and 10 phrasings at once.
Chosen on clinc150 val (with oos_val and oos_train) and reported on test; the
same constants on banking77, where no rule of these families comes close (its
out-of-scope questions are sibling intents of covered ones).

A margin over the runner-up entry is supported (`min_margin`) but off: on the
benchmark it cost more right answers than it saved wrong ones at every cut.

Between the cut and a higher one the top hit is often wrong (clinc150 val:
51-82% right per 0.05 of score below 0.7), so an answer that is not
`sure` says it is not sure and how to reach a person (bot/chat.py). Sure is a
score of `sure_score`, or of `sure_score_apart` with the runner-up entry at
least `sure_margin` behind (each rising per phrasing as the cut does): of the
rules of that shape whose sure answers come from the right entry at least 9
times in 10 on clinc150 val for 1, 5 and 10 phrasings at once, the one that
hedges the fewest right answers there (`python -m bench.sure_bench --dataset
clinc150 --choose`). A margin alone was no help for answering or not (above);
for hedging it is: the score alone needs 0.66 and hedges 52% of val's right
answers (a mean over the three runs), this rule 35%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bot.knowledge import Hit


@dataclass(frozen=True)
class Relevance:
    # The cut for an entry with one phrasing (an article chunk has one key too).
    min_score: float = 0.44
    # How much the cut rises per natural log of the entry's phrasings: +0.024 at
    # 5, +0.035 at 10, +0.051 at 30.
    per_ln_phrasing: float = 0.015
    # The top hit must beat the runner-up entry by this much (0: not checked).
    min_margin: float = 0.0
    # From this score (for an entry with one phrasing; it rises as the cut does)
    # an answer is given without saying it may not be what was asked ...
    sure_score: float = 0.66
    # ... and from this one when the runner-up entry scores `sure_margin` less.
    sure_score_apart: float = 0.52
    sure_margin: float = 0.16

    def _rise(self, hit: Hit) -> float:
        return self.per_ln_phrasing * math.log(max(1, len(hit.entry.retrieval_keys)))

    def cut(self, hit: Hit) -> float:
        """The score `hit` needs, given how many phrasings its entry has."""
        return self.min_score + self._rise(hit)

    def sure(self, hits: Sequence[Hit]) -> bool:
        """Whether the best of a search's `hits` (one per entry) matches the
        question closely enough to answer from it without a hedge."""
        ordered = sorted(hits, key=lambda hit: -hit.score)
        if not ordered:
            return False
        top, rise = ordered[0], self._rise(ordered[0])
        margin = top.score - ordered[1].score if len(ordered) > 1 else math.inf
        return (top.score >= self.sure_score + rise
                or (top.score >= self.sure_score_apart + rise and margin >= self.sure_margin))

    def relevant(self, hits: Sequence[Hit]) -> list[Hit]:
        """The hits to answer from, best first; empty when the knowledge does not
        cover the question. The decision is the top hit's (the benchmark measured
        that); the others that pass their own cut come along as sources. Needs
        the search's k >= 2 only when `min_margin` > 0; one hit alone has no
        runner-up to be confused with."""
        ordered = sorted(hits, key=lambda hit: -hit.score)
        if not ordered or ordered[0].score < self.cut(ordered[0]):
            return []
        if len(ordered) > 1 and ordered[0].score - ordered[1].score < self.min_margin:
            return []
        return [ordered[0], *(hit for hit in ordered[1:] if hit.score >= self.cut(hit))]

    def describe(self) -> dict[str, float]:
        """The constants, for benchmark reports."""
        return asdict(self)

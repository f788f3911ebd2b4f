"""Whether the knowledge covers a question: the hits to answer from, or none
("I don't know" and the way to a person).

The rule, chosen by measurement (bench/scope_bench.py, docs/benchmarks.md):
answer from the top hit when its support (the mean similarity of its entry's
two best keys, bot/vectorstores/base.py) reaches a cut that rises with the
number of phrasings (retrieval keys) its entry has:

    support >= min_score + per_ln_phrasing * ln(phrasings)

The more phrasings an entry has, the closer the best of them comes to any
question, unrelated ones included. Averaging two keys takes most of that
away (at a fixed cut of 0.45, clinc150's out-of-scope questions answered at
ten phrasings per entry fall from 24.8% to 16.9% on test, and the right entry
is on top for 80.4% of in-scope ones instead of 77.6%); the rising cut takes
the rest. Chosen on clinc150 val (with oos_val and oos_train) for 1, 5 and 10
phrasings at once, the aim read as a constraint and an objective: in-scope
accuracy at most 2 points below the bot's before issue 13 (best key, 0.45) on
every run, and then the fewest out-of-scope questions answered in the worst
run. Reported on test, and with the same constants on banking77, where no rule
of these families comes close (its out-of-scope questions are sibling intents
of covered ones).

A margin over the runner-up entry is supported (`min_margin`) but off: on the
benchmark it cost more right answers than it saved wrong ones at every cut.

Between the cut and a higher one the top hit is often wrong (clinc150 val,
P=1: 52-82% right per 0.05 of support below 0.7), so an answer that is not
`sure` says it is not sure and how to reach a person (bot/chat.py). Sure is a
support of `sure_score`, or of `sure_score_apart` with the runner-up entry's
best phrasing at least `sure_margin` behind the top entry's (each rising per
phrasing as the cut does): of the rules of that shape whose sure answers come
from the right entry at least 9 times in 10 on clinc150 val for 1, 5 and 10
phrasings at once, the one that hedges the fewest right answers there (`python
-m bench.sure_bench --dataset clinc150 --choose`).

The margin compares best phrasings, not supports: a support is the mean of two
keys for an entry with several phrasings but one key for an article chunk, so a
FAQ entry and the article section on the same topic are not on one scale, and
the support margin hedged most right answers on a knowledge base of both. On
clinc150 val the best-phrasing margin hedges 40.8% of right answers (mean of
the three runs) against 41.4% for the support margin, at the same 90% sure
precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bot.knowledge import Hit


@dataclass(frozen=True)
class Relevance:
    # The cut for an entry with one phrasing (an article chunk has one key too).
    min_score: float = 0.42
    # How much the cut rises per natural log of the entry's phrasings: +0.032 at
    # 5, +0.046 at 10, +0.068 at 30.
    per_ln_phrasing: float = 0.02
    # The top hit must beat the runner-up entry by this much (0: not checked).
    min_margin: float = 0.0
    # From this support (for an entry with one phrasing; it rises as the cut does)
    # an answer is given without saying it may not be what was asked ...
    sure_score: float = 0.66
    # ... and from this one when the runner-up entry's best phrasing scores
    # `sure_margin` less than the top entry's.
    sure_score_apart: float = 0.52
    sure_margin: float = 0.16

    def _rise(self, hit: Hit) -> float:
        return self.per_ln_phrasing * math.log(max(1, len(hit.entry.retrieval_keys)))

    def cut(self, hit: Hit) -> float:
        """The support `hit` needs, given how many phrasings its entry has."""
        return self.min_score + self._rise(hit)

    def sure(self, hits: Sequence[Hit]) -> bool:
        """Whether the best of a search's `hits` (one per entry) matches the
        question closely enough to answer from it without a hedge."""
        ordered = sorted(hits, key=lambda hit: -hit.support)
        if not ordered:
            return False
        top, rise = ordered[0], self._rise(ordered[0])
        # Each entry's best phrasing (an article chunk's one key): see the module's docstring.
        margin = top.score - ordered[1].score if len(ordered) > 1 else math.inf
        return (top.support >= self.sure_score + rise
                or (top.support >= self.sure_score_apart + rise and margin >= self.sure_margin))

    def relevant(self, hits: Sequence[Hit]) -> list[Hit]:
        """The hits to answer from, best first; empty when the knowledge does not
        cover the question. The decision is the top hit's (the benchmark measured
        that); the others that pass their own cut come along as sources. Needs
        the search's k >= 2 only when `min_margin` > 0; one hit alone has no
        runner-up to be confused with."""
        ordered = sorted(hits, key=lambda hit: -hit.support)
        if not ordered or ordered[0].support < self.cut(ordered[0]):
            return []
        if len(ordered) > 1 and ordered[0].support - ordered[1].support < self.min_margin:
            return []
        return [ordered[0], *(hit for hit in ordered[1:] if hit.support >= self.cut(hit))]

    def describe(self) -> dict[str, float]:
        """The constants, for benchmark reports."""
        return asdict(self)

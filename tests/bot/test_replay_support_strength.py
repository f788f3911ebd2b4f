"""bot/replay.py on exact numbers: an index double that returns scripted hits
and an embedder double whose vectors have the cosines wanted with the question
(dyadic, so every mean and comparison is exact). Pinned where the mutation run
found a change of the support replay that no test noticed (docs/testing.md);
tests/bot/test_replay_strength.py has the same behaviour on the real index.

The question is the first axis; a key "at x" has cosine x with it."""

from __future__ import annotations

import math

import numpy as np

from bot.catalog import Entry
from bot.knowledge import Hit
from bot.relevance import Relevance
from bot.replay import replay, supports

QUESTION = "the question"
RULE = Relevance(min_score=0.25, per_ln_phrasing=0.0)  # a cut of 0.25 for every entry


def vector(cosine: float) -> list[float]:
    return [cosine, math.sqrt(1 - cosine * cosine), 0.0, 0.0]


class Embedder:
    def __init__(self, cosines: dict[str, float]) -> None:
        self.vectors = {QUESTION: [1.0, 0.0, 0.0, 0.0], **{text: vector(c) for text, c in cosines.items()}}

    async def embed(self, texts):
        return np.array([self.vectors[text] for text in texts], np.float32)


class Index:
    """What a search of the published entries returns now, and the embedder."""

    def __init__(self, hits: list[Hit], cosines: dict[str, float]) -> None:
        self.hits, self.embedder = hits, Embedder(cosines)

    async def search_many(self, queries, peer_similarity: float = 0.0):
        return [self.hits for _ in queries], []


def entry(entry_id: str, *questions: str) -> Entry:
    return Entry(entry_id, "qa", entry_id, "An answer.", questions, "tests", "published")


def hit(found: Entry, support: float) -> Hit:
    return Hit(found, support, found.questions[0], support)


ONE = entry("one", "its phrasing")  # answers the question now, with one phrasing at 0.75


async def overtakes(hits: list[Hit], changes: list[Entry], cosines: dict[str, float], rule: Relevance = RULE):
    [result] = await replay(Index(hits, {"its phrasing": 0.75, **cosines}), rule, [QUESTION], changes)  # type: ignore[arg-type]
    return [(o.entry_id, o.key) for o in result.overtaken_by]


async def test_a_phrasing_that_drops_its_entry_behind_the_runner_up_takes_the_question():
    grown = entry("one", "its phrasing", "far")  # (0.75 + 0.375) / 2 = 0.5625
    runner = entry("runner", "runner's")
    assert await overtakes([hit(ONE, 0.75), hit(runner, 0.625)], [grown], {"far": 0.375}) == [("one", "far")]
    # Level with the runner-up it still answers; with no runner-up, above its cut, too.
    assert await overtakes([hit(ONE, 0.75), hit(runner, 0.5625)], [grown], {"far": 0.375}) == []
    assert await overtakes([hit(ONE, 0.75)], [grown], {"far": 0.375}) == []
    # A runner-up that is itself a change is judged by its changed keys (here far below), not its support now.
    changed_runner = entry("runner", "runner's new")
    assert await overtakes([hit(ONE, 0.75), hit(runner, 0.625)], [grown, changed_runner],
                           {"far": 0.375, "runner's new": 0.125}) == []


async def test_a_phrasing_that_drops_its_entry_below_its_cut_takes_the_question():
    grown = entry("one", "its phrasing", "far")  # (0.75 + 0.25) / 2 = 0.5
    assert await overtakes([hit(ONE, 0.75)], [grown], {"far": 0.25}, Relevance(0.5625, 0.0)) == [("one", "far")]
    assert await overtakes([hit(ONE, 0.75)], [grown], {"far": 0.25}, Relevance(0.5, 0.0)) == []  # at the cut


async def test_phrasings_that_raise_their_entrys_cut_above_its_support_take_the_question():
    # Its support stays 0.75, but with two phrasings the cut is 0.75 + 0.5 ln 2.
    grown = entry("one", "its phrasing", "same")
    assert await overtakes([hit(ONE, 0.75)], [grown], {"same": 0.75}, Relevance(0.75, 0.5)) == [("one", "same")]
    assert await overtakes([hit(ONE, 0.75)], [grown], {"same": 0.75}, Relevance(0.75, 0.0)) == []


async def test_a_change_whose_support_ties_the_answer_takes_it_with_its_keys_at_the_tie():
    # Another entry-to-be at (0.75 + 0.75) / 2 ties "one" (0.75): a tie is a take.
    tie = entry("tie", "tie a", "tie b")
    assert await overtakes([hit(ONE, 0.75)], [tie], {"tie a": 0.75, "tie b": 0.75}) == [("tie", "tie a"),
                                                                                       ("tie", "tie b")]
    # Its support reaches the answer's, but only the keys that do are listed.
    mixed = entry("mixed", "mixed a", "mixed b")  # (0.875 + 0.625) / 2 = 0.75
    assert await overtakes([hit(ONE, 0.75)], [mixed], {"mixed a": 0.875, "mixed b": 0.625}) == [("mixed", "mixed a")]


def test_supports_are_each_entrys_two_best_keys_question_by_question():
    # Two questions (rows), entry 0 with three keys whose two best are not the first two, entry 1 with one.
    similarity = np.array([[0.25, 0.5, 0.75, 0.125], [0.5, 0.25, 0.125, 0.375]], np.float32)
    found = supports(similarity, np.array([0, 0, 0, 1]), 2)
    assert found.tolist() == [[(0.5 + 0.75) / 2, 0.125], [(0.5 + 0.25) / 2, 0.375]]
    # The two best of many keys in any order (a partition, not a sort, finds them).
    many = np.random.default_rng(0).permutation(np.arange(1, 41, dtype=np.float32) / 64)
    assert supports(many[None, :], np.zeros(40, np.int64), 1).tolist() == [[(40 / 64 + 39 / 64) / 2]]
    # A key that is the question itself counts alone, for that question only.
    verbatim = supports(np.array([[0.99, 0.25], [0.5, 0.25]], np.float32), np.array([0, 0]), 1)
    assert verbatim.tolist() == [[np.float32(0.99)], [0.375]]

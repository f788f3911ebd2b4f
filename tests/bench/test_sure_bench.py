"""bench/sure_bench.py: the rule applied to saved hits, and how it is chosen."""

from __future__ import annotations

import dataclasses

from bench.scope_bench import Dataset, Question, scores_of
from bench.sure_bench import CANDIDATES, check, choose, sure_mask
from bot.relevance import Relevance

QUESTIONS = [Question("q", "a")] * 6
DATASET = Dataset("tiny", ["a", "b"], {"a": ["a one", "a two"], "b": ["b one"]}, {"val": QUESTIONS}, "")


def row(*hits: tuple[str, float]) -> dict:
    # As the index reports them: "a" has two phrasings, "b" one.
    return {"intents": [intent for intent, _ in hits], "scores": [score for _, score in hits],
            "keys": [2 if intent == "a" else 1 for intent, _ in hits], "matched": [f"{i} one" for i, _ in hits],
            "key_scores": [score for _, score in hits]}


ROWS = [row(("b", 0.66), ("a", 0.2)), row(("b", 0.60), ("a", 0.5)), row(("b", 0.60), ("a", 0.40)),
        row(("b", 0.60)), row(("a", 0.67), ("b", 0.6)), row(("a", 0.7339), ("b", 0.6))]


def test_the_fast_mask_is_relevance_sure_question_by_question():
    rule = Relevance()
    # Entry "a" has two phrasings at P=2: it needs 0.72 + 0.02 ln 2 = 0.7339 (or 0.5339 well ahead).
    assert sure_mask(scores_of(ROWS, QUESTIONS), rule).tolist() == [True, False, True, True, False, True]
    assert check(DATASET, {"2": {"val": {"rows": ROWS}}}, rule) == 0
    strict = dataclasses.replace(rule, sure_score=0.9, sure_margin=0.5)
    assert sure_mask(scores_of(ROWS, QUESTIONS), strict).tolist() == [False, False, False, True, False, False]
    assert check(DATASET, {"2": {"val": {"rows": ROWS}}}, strict) == 0


def candidates(figures: dict) -> dict:
    """Every candidate 0% precise, but those in `figures`: rule -> (precision, right hedged)."""
    return {"candidates": [{"sure_precision": figures.get(rule, (0.0, 0.0))[0],
                            "right_hedged": figures.get(rule, (0.0, 1.0))[1]} for rule in CANDIDATES]}


def test_the_rule_hedging_fewest_right_answers_among_the_precise_enough_on_every_val_run_is_chosen():
    loose, tight, best = CANDIDATES[0], CANDIDATES[1], CANDIDATES[2]
    analysis = {"P=1 val": candidates({loose: (0.95, 0.2), tight: (0.95, 0.5), best: (0.91, 0.3)}),
                "P=5 val": candidates({loose: (0.89, 0.1), tight: (0.92, 0.4), best: (0.90, 0.3)}),
                "P=5 test": candidates({})}  # a test run never counts
    assert choose(analysis) == best
    analysis["P=10 val"] = candidates({})
    assert choose(analysis) is None

"""bench/sure_bench.py: the rule applied to saved hits, and how the sure score is chosen."""

from __future__ import annotations

from bench.scope_bench import Dataset
from bench.sure_bench import CANDIDATES, choose, masks
from bot.relevance import Relevance

DATASET = Dataset("tiny", ["a", "b"], {"a": ["a one", "a two"], "b": ["b one"]}, {}, "")


def row(intent: str, score: float) -> dict:
    return {"intents": [intent], "scores": [score], "keys": [1]}


def test_masks_are_bot_relevances_own_answer_and_sure_decisions():
    rule = Relevance()
    rows = [row("b", 0.43), row("b", 0.50), row("b", 0.66), row("a", 0.67), row("a", 0.6704)]
    answered, sure = masks(DATASET, 2, rows, rule)
    assert answered.tolist() == [False, True, True, True, True]
    # Entry "a" has two phrasings at P=2: its sure score is 0.66 + 0.015 ln 2 = 0.6704.
    assert sure.tolist() == [False, False, True, False, True]


def candidates(precisions: dict[float, float]) -> dict:
    return {"candidates": [{"sure_score": v, "sure_precision": precisions.get(v, 0.0)} for v in CANDIDATES]}


def test_the_lowest_score_right_often_enough_on_every_val_run_is_chosen_and_test_runs_do_not_count():
    analysis = {"P=1 val": candidates({0.6: 0.95, 0.61: 0.95, 0.62: 0.95}),
                "P=5 val": candidates({0.6: 0.89, 0.61: 0.90, 0.62: 0.91}),
                "P=5 test": candidates({})}
    assert choose(analysis) == 0.61
    analysis["P=10 val"] = candidates({})
    assert choose(analysis) is None

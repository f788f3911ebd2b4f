"""The answer-or-"don't know" rule (bot/relevance.py), over plain hits."""

from __future__ import annotations

import math

import pytest

from bot.catalog import Entry
from bot.knowledge import Hit
from bot.relevance import Relevance

RULE = Relevance()


def hit(score: float, phrasings: int = 1, entry_id: str = "") -> Hit:
    questions = tuple(f"phrasing {n}" for n in range(phrasings))
    entry = Entry(entry_id or f"entry-{score}-{phrasings}", "qa", questions[0], "An answer.", questions,
                  "tests", "published")
    return Hit(entry, score, questions[0], score)


def article(score: float) -> Hit:
    return Hit(Entry(f"article-{score}", "article", "Care", "Wash at 30.", (), "tests", "published"), score, "", score)


def test_the_measured_constants():
    # bench/results/scope.md: chosen on clinc150 val for 1, 5 and 10 phrasings per entry.
    assert (RULE.min_score, RULE.per_ln_phrasing, RULE.min_margin) == (0.42, 0.02, 0.0)


def test_an_answer_is_sure_from_the_sure_score_which_rises_as_the_cut_does():
    # bench/results/scope.md: of the rules whose sure answers are 90% right on clinc150 val,
    # the one hedging the fewest right answers there.
    assert (RULE.sure_score, RULE.sure_score_apart, RULE.sure_margin) == (0.66, 0.52, 0.16)
    assert RULE.sure([hit(0.66)]) and not RULE.sure([hit(math.nextafter(0.66, 0), entry_id="a"), hit(0.60)])
    assert RULE.sure([article(0.66), hit(0.65)]) and not RULE.sure([article(0.659), hit(0.65)])
    sure = 0.66 + 0.02 * math.log(10)
    assert RULE.sure([hit(sure, phrasings=10), hit(sure - 0.01)])
    assert not RULE.sure([hit(math.nextafter(sure, 0), phrasings=10), hit(sure - 0.01)])
    assert not RULE.sure([])


def test_a_lower_score_is_sure_when_the_runner_up_is_far_enough_behind():
    top = hit(0.52, entry_id="top")
    assert RULE.sure([top, hit(0.36, entry_id="second")])  # 0.16 behind
    assert RULE.sure([hit(0.30, entry_id="second"), top])  # in any order
    assert RULE.sure([top])  # no runner-up at all
    assert not RULE.sure([top, hit(0.37, entry_id="second")])
    assert not RULE.sure([hit(math.nextafter(0.52, 0), entry_id="low"), hit(0.2, entry_id="far")])
    # Exactly the margin is enough (dyadic scores: the difference is exact).
    dyadic = Relevance(sure_margin=0.125)
    assert dyadic.sure([hit(0.625, entry_id="top"), hit(0.5, entry_id="second")])
    assert not dyadic.sure([hit(0.625, entry_id="top"), hit(math.nextafter(0.5, 1), entry_id="second")])
    # The score it needs rises with the entry's phrasings, as the cut does.
    assert not RULE.sure([hit(0.53, phrasings=10, entry_id="many"), hit(0.2, entry_id="far")])
    assert RULE.sure([hit(0.52 + 0.02 * math.log(10), phrasings=10, entry_id="many"), hit(0.2, entry_id="far")])


def test_a_hit_exactly_at_the_cut_answers_and_just_below_does_not():
    assert RULE.relevant([hit(0.42)]) == [hit(0.42)]
    assert RULE.relevant([hit(math.nextafter(0.42, 0))]) == []
    assert RULE.relevant([article(0.42)]) == [article(0.42)]  # an article chunk is one key
    assert RULE.relevant([article(0.419)]) == []


def test_the_cut_rises_with_the_entrys_phrasings():
    cut = 0.42 + 0.02 * math.log(10)
    at_cut = hit(cut, phrasings=10)
    assert RULE.cut(at_cut) == pytest.approx(cut)
    assert RULE.relevant([at_cut]) == [at_cut]
    assert RULE.relevant([hit(math.nextafter(cut, 0), phrasings=10)]) == []
    # A score that answers for an entry of one phrasing does not for one of ten.
    assert RULE.relevant([hit(0.46)]) != []
    assert RULE.relevant([hit(0.46, phrasings=10)]) == []


def test_nothing_relevant_means_no_hits():
    assert RULE.relevant([]) == []
    assert RULE.relevant([hit(0.30), hit(0.20)]) == []


def test_the_top_hit_decides_and_the_sources_that_pass_come_along_best_first():
    top, second, weak = hit(0.80, entry_id="top"), hit(0.50, entry_id="second"), hit(0.30, entry_id="weak")
    assert RULE.relevant([weak, second, top]) == [top, second]
    # A runner-up passing its own cut does not answer when the top hit does not pass its.
    many = hit(0.48, phrasings=30, entry_id="many")
    assert RULE.relevant([many, hit(0.47, entry_id="one")]) == []


def test_margin_off_by_default_a_near_tie_answers():
    assert RULE.relevant([hit(0.70, entry_id="a"), hit(0.699, entry_id="b")]) != []


def test_margin_when_set_refuses_a_near_tie_and_answers_at_the_margin():
    rule = Relevance(min_margin=0.125)  # dyadic scores: the differences are exact
    assert rule.relevant([hit(0.75, entry_id="a"), hit(0.6875, entry_id="b")]) == []
    exactly = rule.relevant([hit(0.75, entry_id="a"), hit(0.625, entry_id="b")])
    assert [h.entry.entry_id for h in exactly] == ["a", "b"]
    # One hit alone has no runner-up to be confused with.
    assert rule.relevant([hit(0.75)]) == [hit(0.75)]
    # The margin does not lift a hit below the cut.
    assert rule.relevant([hit(0.41), hit(0.10)]) == []


def test_the_rule_judges_an_entrys_support_not_its_best_phrasing():
    """One phrasing of many can be close by chance (bot/vectorstores/base.py)."""
    questions = tuple(f"phrasing {n}" for n in range(5))
    entry = Entry("lucky", "qa", "Lucky", "An answer.", questions, "tests", "published")
    lucky = Hit(entry, 0.95, questions[0], 0.4)  # one phrasing very close, the next far
    assert RULE.relevant([lucky]) == [] and not RULE.sure([lucky])
    steady = Hit(entry, 0.8, questions[0], 0.79)
    assert RULE.relevant([steady]) == [steady] and RULE.sure([steady])
    # The margin compares the two entries' best phrasings, not their supports.
    top = Hit(entry, 0.8, questions[0], 0.6)
    other = Entry("other", "qa", "Other", "An answer.", questions, "tests", "published")
    assert not RULE.sure([top, Hit(other, 0.7, questions[0], 0.3)])
    assert RULE.sure([top, Hit(other, 0.6, questions[0], 0.55)])


def test_an_article_section_on_the_same_topic_is_measured_by_its_one_key():
    """A Q&A entry's support is the mean of its two best phrasings, an article
    chunk's its one key: so the margin over a chunk compares best phrasings."""
    questions = tuple(f"phrasing {n}" for n in range(5))
    faq = Hit(Entry("faq-returns", "qa", "Returns", "Free from the EU.", questions, "tests", "published"),
              0.83, questions[0], 0.68)
    section = article(0.57)
    assert RULE.sure([faq, section])  # 0.83 - 0.57 >= 0.16; the supports are only 0.11 apart
    assert not RULE.sure([faq, article(0.68)])

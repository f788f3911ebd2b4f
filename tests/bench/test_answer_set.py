"""The answer-quality set's shape (bench/data/answer_quality.jsonl): big enough,
every category present, every item scorable, and every fact a right answer must
contain reachable in the sample knowledge, so no item can be failed for want of
a fact the knowledge never states. The bot's scores belong to the benchmark
(bench/results/answers.md), not to this test."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.answer_bench import CATEGORIES, Item, classify, knowledge_texts, load_items, normal, numbers, present

ITEMS = load_items()
KNOWLEDGE = knowledge_texts()
EVERYTHING = normal("\n".join(KNOWLEDGE))


def test_the_set_is_big_enough_and_has_every_category():
    counts = Counter(item.category for item in ITEMS)
    assert len(ITEMS) >= 60, counts
    assert set(counts) == set(CATEGORIES), counts
    assert counts["answerable"] >= 30 and counts["follow_up"] >= 10 and counts["out_of_scope"] >= 15, counts
    assert len({item.id for item in ITEMS}) == len(ITEMS), "ids repeat"
    assert len({normal(item.question) for item in ITEMS if not item.turns}) == len(
        [item for item in ITEMS if not item.turns]), "questions repeat"


def test_the_two_conversations_of_the_issue_are_in_the_set():
    questions = {(item.turns, item.question) for item in ITEMS}
    assert (("How long do I have to return something?",), "And do you pay for the return shipping?") in questions
    assert ((), "Do you rent out tents?") in questions


@pytest.mark.parametrize("item", ITEMS, ids=[item.id for item in ITEMS])
def test_every_item_can_be_scored(item: Item):
    assert item.question.strip()
    assert all(fact and all(option.strip() for option in fact) for fact in item.must_contain), item.must_contain
    assert all(phrase.strip() for phrase in item.must_not)
    assert all(turn.strip() for turn in item.turns)
    if item.category == "follow_up":
        assert item.turns
    elif item.category == "answerable":
        assert not item.turns  # an out-of-scope item may follow turns: a follow-up nothing covers
    if item.category == "out_of_scope":
        assert item.must_not, "an out-of-scope item needs the claims a made-up answer would make"
    else:
        assert item.must_contain, "an answerable item needs the facts a right answer contains"


@pytest.mark.parametrize("item", [item for item in ITEMS if item.must_contain],
                         ids=[item.id for item in ITEMS if item.must_contain])
def test_a_right_answer_exists_in_the_knowledge(item: Item):
    """Each fact occurs in the sample knowledge, and one entry (a Q&A answer or
    an article section) states them all and none of the wrong claims: quoting it
    is right."""
    for fact in item.must_contain:
        assert any(normal(option) in EVERYTHING for option in fact), f"{fact} occurs in no knowledge text"
    right = [text for text in KNOWLEDGE
             if all(present(text, fact) for fact in item.must_contain)
             and not any(normal(phrase) in normal(text) for phrase in item.must_not)]
    assert right, "no single entry or section states every fact without a listed wrong claim"


def test_the_scoring_tells_the_outcomes_apart():
    [tents] = [item for item in ITEMS if item.question == "Do you rent out tents?"]
    [shipping] = [item for item in ITEMS if item.question == "And do you pay for the return shipping?"]
    known = numbers(" ".join(KNOWLEDGE))
    assert classify(tents, "No, we don't rent out tents.", True, known).outcome == "unsupported_claim"
    assert classify(tents, "I'm sorry, I don't know the answer to that.", False, known).outcome == "dont_know"
    assert classify(tents, "Tents and other bulky items can't be wrapped.", True, known).outcome == "wrong_source"
    hedge = 'I\'m not sure I understood, but this is what I know about "Gift wrapping": Tents can\'t be wrapped.'
    assert classify(tents, hedge, True, known).outcome == "hedged"
    # Hedged or not, a right answer is right and a made-up claim is a claim.
    assert classify(shipping, "I'm not sure I understood: returns are free from the EU and UK.", True,
                    known).outcome == "right"
    assert classify(tents, "I'm not sure, but we rent tents.", True, known).outcome == "unsupported_claim"
    assert classify(shipping, "Yes, you pay for the return shipping.", True, known).outcome == "unsupported_claim"
    assert classify(shipping, "Returns are free from the EU and UK.", True, known).outcome == "right"
    # A number the knowledge never states is a made-up claim, even beside the right facts.
    made_up = classify(shipping, "Returns are free from the EU and UK within 45 days.", True, known)
    assert made_up.outcome == "unsupported_claim" and made_up.claims == ["number 45 (in no knowledge text)"]

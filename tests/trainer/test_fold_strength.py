"""The fold's decisions on one page, on hand-made search results: which fix of an
earlier run a question joins, and how close a group of questions is. Pinned
where the mutation run (scripts/mutate, docs/testing.md) found a change that no
test noticed."""

from __future__ import annotations

import re

import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from trainer.changes import MemoryLedger
from trainer.fold import MAX_INTERACTIONS, MAX_QUESTIONS, Fold, Group, entry_id
from trainer.judge import Hit
from trainer.loop import Policy, _no_hold, _Run

SOURCE = "self-healing-feedback"
THRESHOLD = 0.75


def question(n: int, text: str = "") -> ipb.Interaction:
    return ipb.Interaction(interaction_id=f"00000000-0000-0000-0000-{n:012d}", user_query=text or f"question {n}")


def entry(entry_id: str, *, source: str = SOURCE, status: int = bpb.ENTRY_STATUS_PROPOSED) -> bpb.KnowledgeEntry:
    return bpb.KnowledgeEntry(entry_id=entry_id, source=source, status=status, questions=[f"{entry_id} phrasing"],
                              content=f"{entry_id} answer")


def fold_of(hits: list[list[Hit]]) -> Fold:
    return Fold([question(n) for n in range(len(hits))], hits, {}, THRESHOLD, SOURCE)


def test_a_question_at_the_threshold_joins_an_earlier_runs_fix_waiting_for_review():
    fold = fold_of([[Hit(entry("fix-waiting"), THRESHOLD)]])
    assert fold.join_fixes() == []
    assert fold.group_of[0].fix is not None and fold.group_of[0].fix.entry.entry_id == "fix-waiting"
    assert fold.group_of[0].questions == ["fix-waiting phrasing", "question 0"]


def test_just_below_the_threshold_it_is_left_for_the_judge():
    fold = fold_of([[Hit(entry("fix-waiting"), THRESHOLD - 0.001)]])
    assert fold.join_fixes() == [0]
    assert fold.groups == []


@pytest.mark.parametrize("candidate", [
    entry("kb-proposed-by-a-person", source="sample-kb"),  # proposed, but not the trainer's own
    entry("fix-published", status=bpb.ENTRY_STATUS_PUBLISHED),  # the trainer's, but no longer waiting
])
def test_only_the_trainers_own_fixes_waiting_for_review_are_joined(candidate):
    fold = fold_of([[Hit(candidate, 0.99)]])
    assert fold.join_fixes() == [0]
    assert fold.fixes == {}


def test_cohesion_is_the_mean_of_each_questions_best_match_within_the_group():
    fold = fold_of([[], [], [], []])
    group = Group(None)
    for index in (0, 1, 2):
        group.add(index, fold.items[index])
    # 0~1 at 0.9, 1~2 at 0.8; 3 is not in the group and its similarity to 0 does not count.
    fold.peers = [[(1, 0.9), (3, 0.99)], [(0, 0.9), (2, 0.8)], [(1, 0.8)], [(0, 0.99)]]
    assert fold.cohesion(group) == pytest.approx((0.9 + 0.9 + 0.8) / 3)


def test_a_group_of_one_is_perfectly_cohesive_and_one_with_no_close_pair_is_not():
    fold = fold_of([[], []])
    alone = Group(None)
    alone.add(0, fold.items[0])
    fold.peers = [[], []]
    assert fold.cohesion(alone) == 1.0
    pair = Group(None)
    pair.add(0, fold.items[0])
    pair.add(1, fold.items[1])
    assert fold.cohesion(pair) == 0.0


def new_group(fold: Fold, members: list[int]) -> Group:
    group = Group(None)
    for index in members:
        group.add(index, fold.items[index])
    return group


def test_a_new_fix_lists_its_most_typical_questions_in_page_order():
    """The questions with the most near-duplicates in the group, ties to the earlier; in the page's order."""
    fold = Fold([question(n) for n in range(7)], [[] for _ in range(7)], {}, THRESHOLD, SOURCE)
    # 6 is the hub: close to 1, 2, 3 and 5; 0 and 4 are close to nobody.
    fold.peers = [[], [(6, 0.9)], [(6, 0.9)], [(6, 0.9), (5, 0.8)], [], [(6, 0.9)], []]
    group = new_group(fold, list(range(7)))
    assert fold.phrasings(group, 3) == ["question 3", "question 5", "question 6"]
    assert fold.phrasings(group, 5) == ["question 1", "question 2", "question 3", "question 5", "question 6"]


def test_a_group_with_as_many_questions_as_phrasings_lists_them_all():
    """Five distinct questions, one of them asked twice: all five are listed."""
    items = [question(0, "a"), question(1, "a"), question(2, "b"), question(3, "c"), question(4, "d"),
             question(5, "e")]
    fold = Fold(items, [[] for _ in items], {}, THRESHOLD, SOURCE)
    fold.peers = [[(1, 0.99)], [(0, 0.99)], [], [], [], []]
    assert fold.phrasings(new_group(fold, list(range(6))), 5) == ["a", "b", "c", "d", "e"]


def test_being_named_a_near_duplicate_counts_as_much_as_naming_one():
    """0 names two near-duplicates, 1 is named by two: the same standing, so the earlier wins."""
    fold = Fold([question(n) for n in range(5)], [[] for _ in range(5)], {}, THRESHOLD, SOURCE)
    fold.peers = [[(3, 0.9), (4, 0.9)], [], [(1, 0.9)], [(1, 0.9)], []]
    assert fold.phrasings(new_group(fold, list(range(5))), 1) == ["question 0"]


def test_a_new_fix_is_titled_by_the_question_that_led_it_even_when_it_is_not_a_phrasing():
    """Its phrasings are the group's most typical questions; its title is still its first question's."""
    class Writer:
        model_id = "teacher"

    run = _Run(None, None, Writer(), None, Policy(1, "review", 0.8, 0.75, "Alder & Finch"), "run-1", None,
               _no_hold, [], MemoryLedger())
    fold = Fold([question(0, "Do you rent tents?"), question(1, "Tent hire?")], [[], []], {}, THRESHOLD, SOURCE)
    group = new_group(fold, [0, 1])
    entry = run._new_entry(group, fold.items[0], "We do not rent tents.", ["Tent hire?"])
    assert (entry.title, list(entry.questions), entry.content) == ("Do you rent tents?", ["Tent hire?"],
                                                                   "We do not rent tents.")
    assert entry.source == SOURCE and entry.status == bpb.ENTRY_STATUS_PROPOSED


def test_a_fix_at_the_contracts_limits_takes_only_what_it_already_holds():
    """An entry holds at most MAX_INTERACTIONS interaction ids and MAX_QUESTIONS
    phrasings (the contract refuses more): a fix at a limit takes no new one, but
    still a question it already holds (a re-run reading it again)."""
    held = [question(n) for n in range(MAX_INTERACTIONS)]
    full = Group(None, [], ["question 0"], [item.interaction_id for item in held])
    assert not full.takes(question(MAX_INTERACTIONS, "question 0"))
    assert full.takes(ipb.Interaction(interaction_id=held[5].interaction_id, user_query="question 0"))
    one_short = Group(None, [], ["question 0"], [item.interaction_id for item in held[:-1]])
    assert one_short.takes(question(MAX_INTERACTIONS, "question 0"))
    phrased = Group(None, [], [f"question {n}" for n in range(MAX_QUESTIONS)], [])
    assert not phrased.takes(question(MAX_QUESTIONS))
    assert phrased.takes(question(MAX_QUESTIONS, "question 7"))
    assert Group(None, [], [f"question {n}" for n in range(MAX_QUESTIONS - 1)], []).takes(question(MAX_QUESTIONS))


def test_a_new_fix_led_by_a_long_question_is_titled_by_its_first_300_characters():
    """The contract allows a title of at most 300 characters (a longer one is refused, and the fix not written)."""
    class Writer:
        model_id = "teacher"

    run = _Run(None, None, Writer(), None, Policy(1, "review", 0.8, 0.75, "Alder & Finch"), "run-1", None,
               _no_hold, [], MemoryLedger())
    long = "Can I return " + "a very large tent " * 30 + "?"
    fold = Fold([question(0, long)], [[]], {}, THRESHOLD, SOURCE)
    entry = run._new_entry(new_group(fold, [0]), fold.items[0], "Yes.", [long])
    assert entry.title == long[:300]


def test_a_question_exactly_at_the_threshold_to_an_earlier_question_of_the_page_joins_its_new_fix():
    fold = fold_of([[], []])
    fold.fold([0], [[], []])
    fold.fold([1], [[], [(0, THRESHOLD)]])
    assert fold.group_of[1] is fold.group_of[0] and fold.group_of[0].members == [0, 1]


def test_a_fix_lists_each_nearby_entry_once_with_its_best_score_over_its_questions():
    """A fix of two questions: each found both entries; the reviewer sees each
    entry once, with the better of its two scores (to four places), best first."""
    from trainer.fold import Nearby, nearby

    returns, shipping = entry("faq-returns", status=bpb.ENTRY_STATUS_PUBLISHED), entry(
        "faq-shipping", status=bpb.ENTRY_STATUS_PUBLISHED)
    found = [[Hit(returns, 0.7), Hit(shipping, 0.5)], [Hit(shipping, 0.654321), Hit(returns, 0.6)]]
    assert nearby(found, 5) == [Nearby("faq-returns", "", 0.7), Nearby("faq-shipping", "", 0.6543)]
    assert nearby(found, 1) == [Nearby("faq-returns", "", 0.7)]


def test_a_fix_id_is_short_readable_and_derived_from_its_first_interaction():
    """What reviewers read and type in grpcurl calls: `fix-` and 16 hex digits,
    derived from its first interaction's id, the same for the same interaction (a
    re-run rewrites the same entry)."""
    first, other = question(1).interaction_id, question(2).interaction_id
    assert re.fullmatch(r"fix-[0-9a-f]{16}", entry_id(first))
    assert entry_id(first) == entry_id(first) != entry_id(other)


def published_fix(entry_id_: str, interaction_ids: list[str]) -> bpb.KnowledgeEntry:
    fix = entry(entry_id_, status=bpb.ENTRY_STATUS_PUBLISHED)
    fix.provenance.interaction_ids.extend(interaction_ids)
    return fix


def test_a_question_a_killed_run_already_put_in_a_published_fix_stays_in_it():
    """Under auto, a run that died before marking its page had published the fix:
    each question its provenance lists is adopted back into it however low it
    scores, and is left neither for the judge nor for a new fix (the one whose id
    it carries: tests/trainer/test_trainer_loop.py's killed runs)."""
    fold = fold_of([[], []])
    held = published_fix("fix-0123456789abcdef", [fold.items[0].interaction_id, fold.items[1].interaction_id])
    fold.hits = [[Hit(held, 0.2)], [Hit(held, 0.3)]]
    assert fold.join_fixes() == []
    assert fold.group_of[0] is fold.group_of[1] and fold.group_of[0].fix is not None
    assert fold.group_of[0].fix.entry.entry_id == "fix-0123456789abcdef"
    assert fold.fixes["fix-0123456789abcdef"].interaction_ids == held.provenance.interaction_ids


def test_only_the_trainers_own_entries_are_adopted_by_their_provenance():
    """An entry a person wrote that happens to list the interaction is not a fix of this run."""
    fold = fold_of([[]])
    theirs = published_fix("kb-returns", [fold.items[0].interaction_id])
    theirs.source = "sample-kb"
    fold.hits = [[Hit(theirs, 0.2)]]
    assert fold.join_fixes() == [0]
    assert fold.fixes == {}


def test_the_judge_sees_only_published_entries_not_a_fix_waiting_below_the_threshold():
    """An earlier run's fix still under review, too far to join, is no answer a customer gets."""
    waiting, faq = entry("fix-waiting"), entry("faq-returns", source="sample-kb", status=bpb.ENTRY_STATUS_PUBLISHED)
    fold = fold_of([[Hit(waiting, THRESHOLD - 0.1), Hit(faq, 0.5)]])
    assert fold.join_fixes() == [0]
    assert [hit.entry.entry_id for hit in fold.published(0)] == ["faq-returns"]


def test_a_question_less_alike_than_the_threshold_to_an_earlier_one_of_the_page_leads_its_own_fix():
    fold = fold_of([[], []])
    fold.fold([0], [[], []])
    fold.fold([1], [[], [(0, THRESHOLD - 0.05)]])
    assert fold.group_of[1] is not fold.group_of[0] and len(fold.groups) == 2

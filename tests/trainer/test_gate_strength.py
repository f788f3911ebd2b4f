"""The regression gate's decisions (trainer/regressions.py) on replay results
given directly, and its calls to the bot with stubs that record them: which
phrasings are withheld, which regressions a fix records and in what order,
what an evaluation counts, and how the set and the replays are batched.
tests/trainer/test_gate.py runs the same gate over the real services; these
pin the rules where the mutation run (scripts/mutate, docs/testing.md) found a
change that no test noticed."""

from __future__ import annotations

from datetime import UTC, datetime

from mend.bot.v1 import bot_service_pb2 as bpb
from trainer import evidence, regressions
from trainer.regressions import Case, Evaluation, Regression, Verdict, evaluation_of, gate


# Scores are floats (float32) in the contract: these are exact in it.
def result(entry_id: str, score: float, *overtakes: tuple[str, str, float], answered: bool = True) -> bpb.ReplayResult:
    return bpb.ReplayResult(entry_id=entry_id, score=score, answered=answered, overtaken_by=[
        bpb.ReplayOvertake(entry_id=entry, question=key, score=value) for entry, key, value in overtakes])


def qa(entry_id: str, *questions: str) -> bpb.KnowledgeEntry:
    return bpb.KnowledgeEntry(entry_id=entry_id, kind=bpb.ENTRY_KIND_QA, questions=questions, content="An answer.",
                              source="self-healing-feedback")


GIFT = Case("Can I send back a gift?", "returns", True)
SIZE = Case("Can I swap it for another size?", "returns", False)
FIX = qa("gifts", "Can I exchange a gift?", "Can I gift-wrap it?")


def test_a_phrasing_that_takes_a_right_answer_is_withheld_and_the_others_kept():
    verdicts = gate([GIFT], [result("returns", 0.5, ("gifts", "Can I exchange a gift?", 0.75))], [FIX],
                    {"gifts": set(FIX.questions)})
    assert verdicts == {"gifts": Verdict(["Can I exchange a gift?"], [])}


def test_a_fix_whose_every_phrasing_takes_one_keeps_them_and_records_the_regressions():
    verdicts = gate([GIFT, SIZE], [
        result("returns", 0.5, ("gifts", "Can I exchange a gift?", 0.75)),
        result("returns", 0.5625, ("gifts", "Can I gift-wrap it?", 0.625)),
    ], [FIX], {"gifts": set(FIX.questions)})
    # Ordered by how far the fix's key beats the right answer, the widest first.
    assert verdicts == {"gifts": Verdict([], [
        Regression(GIFT.question, "returns", 0.5, "gifts", 0.75),
        Regression(SIZE.question, "returns", 0.5625, "gifts", 0.625),
    ])}


def test_an_existing_phrasing_of_a_changed_entry_is_never_withheld():
    """Only what the fix adds can be withheld: an edited entry's own phrasing that
    takes a right answer is a regression."""
    edited = qa("shipping", "When does it arrive?", "Can I exchange a gift?")
    verdicts = gate([GIFT], [result("returns", 0.5, ("shipping", "When does it arrive?", 0.5625))], [edited],
                    {"shipping": {"Can I exchange a gift?"}})
    assert verdicts == {"shipping": Verdict([], [Regression(GIFT.question, "returns", 0.5, "shipping", 0.5625)])}
    # Without `adding` for the entry, nothing is withheld either.
    assert gate([GIFT], [result("returns", 0.5, ("shipping", "When does it arrive?", 0.5625))], [edited], {}) == \
        {"shipping": Verdict([], [Regression(GIFT.question, "returns", 0.5, "shipping", 0.5625)])}


def test_only_right_answers_taken_by_a_change_count():
    overtake = ("gifts", "Can I exchange a gift?", 0.75)
    assert gate([GIFT], [result("returns", 0.5, overtake, answered=False)], [FIX], {"gifts": set()}) == {}
    assert gate([GIFT], [result("shipping", 0.5, overtake)], [FIX], {"gifts": set()}) == {}
    # An entry that is no change takes nothing from a fix. The question's own entry among the
    # changes is listed when a phrasing it gains weakens it (bot/replay.py): that phrasing is withheld.
    grown = qa("returns", "How do I return it?", "Can I exchange a gift?")
    assert gate([GIFT], [result("returns", 0.5, ("returns", "Can I exchange a gift?", 0.875))], [grown],
                {"returns": {"Can I exchange a gift?"}}) == {"returns": Verdict(["Can I exchange a gift?"], [])}
    assert gate([GIFT], [result("returns", 0.5, ("elsewhere", "Can I exchange a gift?", 0.875))], [FIX],
                {"gifts": set()}) == {}


def test_a_question_wrong_now_does_not_hide_the_right_ones_after_it():
    overtake = ("gifts", "Can I exchange a gift?", 0.75)
    verdicts = gate([SIZE, GIFT], [result("shipping", 0.5, overtake), result("returns", 0.5, overtake)], [FIX], {})
    assert verdicts == {"gifts": Verdict([], [Regression(GIFT.question, "returns", 0.5, "gifts", 0.75)])}


def test_a_question_with_a_full_list_of_overtakes_stays_a_regression_after_withholding():
    """The list holds 20 overtakes: keys it left out may take the question too."""
    full = result("returns", 0.5, ("gifts", "Can I exchange a gift?", 0.75),
                  *[("other", f"key {n}", 0.5625) for n in range(regressions.OVERTAKES_LISTED - 1)])
    short = result("returns", 0.5, ("gifts", "Can I exchange a gift?", 0.75),
                   *[("other", f"key {n}", 0.5625) for n in range(regressions.OVERTAKES_LISTED - 2)])
    adding = {"gifts": {"Can I exchange a gift?"}}
    assert gate([GIFT], [full], [FIX], adding) == {
        "gifts": Verdict(["Can I exchange a gift?"], [Regression(GIFT.question, "returns", 0.5, "gifts", 0.75)])}
    assert gate([GIFT], [short], [FIX], adding) == {"gifts": Verdict(["Can I exchange a gift?"], [])}


def test_a_question_taken_by_several_keys_is_recorded_once_with_the_best():
    fix = qa("gifts", "Can I exchange a gift?", "Can I return a present?")
    verdicts = gate([GIFT], [result("returns", 0.5, ("gifts", "Can I return a present?", 0.8125),
                                    ("gifts", "Can I exchange a gift?", 0.875),
                                    ("gifts", "Can I return a present?", 0.5625))], [fix], {})
    assert verdicts == {"gifts": Verdict([], [Regression(GIFT.question, "returns", 0.5, "gifts", 0.875)])}
    verdicts = gate([GIFT], [result("returns", 0.5, ("gifts", "Can I exchange a gift?", 0.875),
                                    ("gifts", "Can I return a present?", 0.8125))], [fix], {})
    assert verdicts["gifts"].regressions == [Regression(GIFT.question, "returns", 0.5, "gifts", 0.875)]


def test_regressions_are_listed_widest_first_then_by_question_and_at_most_twenty():
    cases = [Case(f"question {n:02}", "returns", False) for n in range(25)]
    results = [result("returns", 0.5, ("gifts", "Can I exchange a gift?", 0.5625 if n % 2 else 0.75))
               for n in range(25)]
    [verdict] = gate(cases, results, [qa("gifts", "Can I exchange a gift?")], {}).values()
    assert len(verdict.regressions) == regressions.MAX_LISTED
    expected = [f"question {n:02}" for n in range(0, 25, 2)] + [f"question {n:02}" for n in range(1, 25, 2)]
    assert [r.question for r in verdict.regressions] == expected[:20]


def test_an_evaluation_counts_the_right_answers_and_lists_the_wrong_ones():
    cases = [GIFT, SIZE, Case("Where is my parcel?", "shipping", True), Case("Do you ship abroad?", "shipping", False)]
    results = [result("returns", 0.8125), result("shipping", 0.5625), result("", 0.25, answered=False),
               result("shipping", 0.375, answered=False)]
    evaluation = evaluation_of(cases, results)
    assert (evaluation.questions, evaluation.liked, evaluation.right) == (4, 2, 1)
    assert evaluation.accuracy == 0.25
    assert evaluation.wrong == [Regression(SIZE.question, "returns", 0.0, "shipping", 0.5625),
                                Regression("Where is my parcel?", "shipping", 0.0, "", 0.25),
                                Regression("Do you ship abroad?", "shipping", 0.0, "", 0.375)]


def test_an_evaluation_lists_at_most_twenty_wrong_and_an_empty_one_is_zero():
    cases = [Case(f"question {n}", "returns", False) for n in range(25)]
    evaluation = evaluation_of(cases, [result("", 0.1, answered=False)] * 25)
    assert (evaluation.right, len(evaluation.wrong)) == (0, regressions.MAX_LISTED)
    assert evaluation.wrong[0].question == "question 0"
    assert Evaluation(questions=0, liked=0, right=0).accuracy == 0.0


def test_an_evaluation_is_kept_and_read_back_whole():
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    evaluation = Evaluation(questions=3, liked=1, right=2, wrong=[Regression("q", "returns", 0.0, "", 0.2)],
                            evaluate_time=when)
    record = evaluation.record()
    assert record == {"questions": 3, "liked": 1, "right": 2, "evaluate_time": "2026-03-01T09:30:00+00:00",
                      "wrong": [{"question": "q", "entry_id": "returns", "entry_score": 0.0,
                                 "moved_to_entry_id": "", "moved_to_score": 0.2}]}
    assert Evaluation.from_record(record) == evaluation
    assert abs(Evaluation(questions=1, liked=0, right=1).evaluate_time - datetime.now(UTC)).total_seconds() < 60


class Knowledge:
    """A KnowledgeService stub that records its calls."""

    def __init__(self, pages=(), answer=None):
        self.pages, self.answer, self.calls = list(pages), answer, []

    async def ListEntries(self, request):
        self.calls.append(request)
        return self.pages.pop(0)

    async def ReplayKnowledge(self, request, timeout=None):  # noqa: ASYNC109 (the stub's signature)
        self.calls.append((request, timeout))
        return bpb.ReplayKnowledgeResponse(results=[self.answer(request, query) for query in request.queries])


async def test_every_published_entry_is_read_page_by_page():
    stub = Knowledge([bpb.ListEntriesResponse(entries=[qa("a", "x")], next_page_token="t1"),
                      bpb.ListEntriesResponse(entries=[qa("b", "y"), qa("c", "z")])])
    entries = await regressions.published_entries(stub)
    assert list(entries) == ["a", "b", "c"] and entries["b"].questions == ["y"]
    assert [(r.status, r.page_size, r.page_token) for r in stub.calls] == [
        (bpb.ENTRY_STATUS_PUBLISHED, regressions.ENTRIES_PAGE, ""), (bpb.ENTRY_STATUS_PUBLISHED, 1000, "t1")]


async def test_the_set_is_the_liked_questions_first_then_the_entries_phrasings():
    entries = {"returns": qa("returns", "How do I return it?", "Can I send back a gift?"),
               "shipping": qa("shipping", "Where is my parcel?")}
    liked = [evidence.Liked("Can I send back a gift?", "returns"),
             evidence.Liked("Can I send back a gift?", "shipping"),  # the first one liked counts
             evidence.Liked("Where did my order go?", "withdrawn"),  # no longer published
             evidence.Liked("Is it free?", "shipping")]
    cases = await regressions.regression_set(None, None, liked, entries)
    assert cases == [Case("Can I send back a gift?", "returns", True), Case("Is it free?", "shipping", True),
                     Case("How do I return it?", "returns", False), Case("Where is my parcel?", "shipping", False)]


async def test_the_set_is_cut_at_its_size():
    entries = {"big": qa("big", *[f"phrasing {n}" for n in range(regressions.MAX_CASES + 5)])}
    cases = await regressions.regression_set(None, None, [], entries)
    assert len(cases) == regressions.MAX_CASES and cases[-1].question == f"phrasing {regressions.MAX_CASES - 1}"


async def test_a_replay_goes_in_batches_and_joins_the_overtakes_of_every_batch_of_changes():
    cases = [Case(f"q{n}", "returns", False) for n in range(regressions.REPLAY_QUERIES + 2)]
    changes = [qa(f"fix{n}", f"k{n}") for n in range(regressions.REPLAY_CHANGES + 1)]

    def answer(request, query):
        first = request.changes[0].entry_id
        return result("returns", 0.5, (first, f"{query} by {first}", 0.5625))

    stub = Knowledge(answer=answer)
    results = await regressions.replay(stub, cases, changes, each_alone=True)
    assert len(stub.calls) == 4
    assert [(len(r.queries), len(r.changes), r.each_alone, timeout) for r, timeout in stub.calls] == [
        (5000, 500, True, 300), (5000, 1, True, 300), (2, 500, True, 300), (2, 1, True, 300)]
    assert len(results) == len(cases)
    for n in (0, 4999, 5000, 5001):
        assert [o.question for o in results[n].overtaken_by] == [f"q{n} by fix0", f"q{n} by fix500"]
        assert (results[n].entry_id, results[n].answered) == ("returns", True)


async def test_a_replay_without_changes_is_one_call_per_batch_and_without_cases_none():
    stub = Knowledge(answer=lambda request, query: result("returns", 0.875))
    results = await regressions.replay(stub, [GIFT, SIZE])
    [(request, _)] = stub.calls
    assert list(request.queries) == [GIFT.question, SIZE.question] and not request.changes
    assert not request.each_alone
    assert [r.entry_id for r in results] == ["returns", "returns"]
    assert await regressions.replay(stub, []) == [] and len(stub.calls) == 1
    evaluation = await regressions.evaluate(stub, [GIFT, Case("Where is it?", "shipping", False)])
    assert (evaluation.questions, evaluation.right) == (2, 1)

"""How a follow-up question is read in the light of the conversation, at the
edges: the earlier questions that fit in its search, the score of an entry only
one of its two searches found, and how much of the follow-up an entry mentions.
Pinned where the mutation run (scripts/mutate, docs/testing.md) found a change
that no test noticed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.catalog import Entry
from bot.chat import Chatbot, combined, context_query, mentions, points_back
from bot.conversations import History, Turn
from bot.exchange import Source
from bot.knowledge import Hit
from bot.persona import Persona
from mend.bot.v1 import bot_service_pb2 as pb
from tests.support import RETURNS, make_chatbot, upsert


def hit(entry_id: str, score: float, *, title: str = "", content: str = "", questions: tuple[str, ...] = ()) -> Hit:
    entry = Entry(entry_id=entry_id, kind="qa", title=title, content=content or f"{entry_id} answer",
                  questions=questions or (f"{entry_id} question",), source="s", status="published")
    return Hit(entry, score, entry.questions[0], score)


def turns(*queries: str) -> list[Turn]:
    return [Turn(query, "an answer") for query in queries]


def test_a_follow_up_is_searched_after_the_earlier_questions_newest_kept():
    assert context_query("and to Norway?", turns("Do you ship abroad?", "How much is it?"), 600) == \
        "Do you ship abroad? How much is it? and to Norway?"
    assert context_query("and to Norway?", [], 600) == "and to Norway?"


def test_earlier_questions_fill_exactly_the_characters_allowed_and_no_more():
    history = turns("a" * 10, "b" * 10)  # each takes its length and a space
    assert context_query("q", history, 22) == f"{'a' * 10} {'b' * 10} q"
    assert context_query("q", history, 21) == f"{'b' * 10} q"
    assert context_query("q", history, 11) == f"{'b' * 10} q"
    assert context_query("q", history, 10) == "q"
    # The newest that does not fit ends the context: an older, shorter one does not jump in.
    assert context_query("q", turns("c", "d" * 30), 20) == "q"


def test_an_entry_one_search_missed_scores_that_searchs_last_hit_there():
    alone = [hit("kb-a", 0.8), hit("kb-b", 0.6)]
    in_context = [hit("kb-c", 0.9), hit("kb-a", 0.7)]
    scores = {h.entry.entry_id: h.score for h in combined(alone, in_context)}
    assert scores == pytest.approx({"kb-a": (0.8 + 0.7) / 2, "kb-b": (0.6 + 0.7) / 2, "kb-c": (0.6 + 0.9) / 2})
    assert [h.entry.entry_id for h in combined(alone, in_context)] == ["kb-a", "kb-c", "kb-b"]


def test_a_search_that_found_nothing_counts_as_zero():
    assert [(h.entry.entry_id, h.score) for h in combined([], [hit("kb-c", 0.9)])] == [("kb-c", pytest.approx(0.45))]
    assert [(h.entry.entry_id, h.score) for h in combined([hit("kb-a", 0.8)], [])] == [("kb-a", pytest.approx(0.4))]
    # The supports alike, each merged with its own kind.
    lucky = replace(hit("kb-a", 0.8), support=0.5)
    assert [(h.score, h.support) for h in combined([lucky], [])] == [(pytest.approx(0.4), pytest.approx(0.25))]
    assert [(h.score, h.support) for h in combined([], [lucky])] == [(pytest.approx(0.4), pytest.approx(0.25))]


def test_the_merged_entries_rank_by_support_and_keep_their_scores_apart():
    alone = [replace(hit("kb-a", 0.9), support=0.5), replace(hit("kb-b", 0.6), support=0.6)]
    in_context = [replace(hit("kb-a", 0.7), support=0.4), replace(hit("kb-b", 0.5), support=0.5)]
    merged = combined(alone, in_context)
    assert [(h.entry.entry_id, h.score, h.support) for h in merged] == [
        ("kb-b", pytest.approx(0.55), pytest.approx(0.55)), ("kb-a", pytest.approx(0.8), pytest.approx(0.45))]


def test_how_much_of_a_follow_up_an_entry_mentions():
    entry = hit("kb-shipping", 0.5, title="Shipping to Norway", content="Delivery is free over 75 euros.",
                questions=("Do you ship abroad?",))
    assert mentions(entry, "is that free?") == 1.0
    assert mentions(entry, "free returns for kayaks?") == pytest.approx(1 / 3)  # free; not returns, kayaks
    assert mentions(entry, "thanks!") == 0.0  # names no topic
    # The title's last word, the answer's first, a phrasing's first: every part of the entry counts.
    assert mentions(entry, "Norway") == 1.0
    assert mentions(entry, "delivery") == 1.0
    assert mentions(entry, "ship") == 1.0


async def test_a_follow_up_that_names_half_its_words_from_the_entry_is_answered_from_it(
        knowledge_index, knowledge, interactions_address):
    """Half the follow-up's own content words is enough (FOLLOW_UP_WORDS, `>=`):
    "is that free for kayaks?" after a question about shipping to Norway names
    "free" (in the entry) and "kayaks" (not), and its score alone is far below
    the cut; a third is not enough."""
    norway = pb.KnowledgeEntry(entry_id="faq-norway", kind=pb.ENTRY_KIND_QA, source="test-kb",
                               content="We ship to Norway; delivery there is free over 75 euros.",
                               questions=["Do you ship to Norway?"])
    await upsert(knowledge, RETURNS, norway)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    history = History((Turn("Do you ship to Norway?", "We ship to Norway."),))
    try:
        # The earlier turn has no sources: nothing to point back at, only the words decide.
        retrieved = await chatbot.retrieve("is that free for kayaks?", history)
        assert mentions(retrieved.found[0], "is that free for kayaks?") == 0.5
        assert not chatbot.relevant(await knowledge_index.search("is that free for kayaks?", 3, ["published"], None))
        assert [h.entry.entry_id for h in retrieved.relevant] == ["faq-norway"] and not retrieved.pointed_back
        assert (await chatbot.retrieve("is that free for kayaks and canoes?", history)).relevant == []
    finally:
        await channel.close()


def test_a_question_points_back_by_a_whole_word():
    assert points_back("how much will that cost me?") and points_back("What if it's late?")
    assert points_back("Do THEY ship there?") and points_back("can I get this in blue")
    # Words that only contain one: "item", "thistle", "iteration", "thatch", "theme".
    assert not points_back("Can I send back an item with a thistle print?")
    assert not points_back("how much will the repair cost me?") and not points_back("")


async def test_the_entry_pointed_back_at_must_still_pass_its_cut_in_the_conversation(
        knowledge_index, knowledge, interactions_address):
    """Pointing back does not vouch for an entry the conversation's search
    finds too weak: the last answer's entry answers only at its own cut."""
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    answered = Source("faq-returns", "Returns", "You can return unused items.", 0.9, "test-kb")
    try:
        near = History((Turn("How do I return something?", "You can return unused items.", (answered,)),))
        retrieved = await chatbot.retrieve("and what does that cost?", near)
        assert [h.entry.entry_id for h in retrieved.relevant] == ["faq-returns"] and retrieved.pointed_back
        # The same pointing question after a turn its entry scores poorly with.
        far = History((Turn("Quantum chromodynamics lecture notes, chapter nine", "...", (answered,)),))
        retrieved = await chatbot.retrieve("and what does that cost?", far)
        in_context = await knowledge_index.search(
            context_query("and what does that cost?", far.turns, 600), 10, ["published"], None)
        assert in_context[0].score < chatbot.retrieval.relevance.cut(in_context[0])
        assert retrieved.relevant == [] and not retrieved.pointed_back
    finally:
        await channel.close()


def test_the_hedge_names_the_entry_only_when_it_has_a_title():
    persona = Persona(brand="Alder & Finch", bot_name="Finch", tone="warm", handoff="email us")
    assert persona.unsure("Broken tent pole") == (
        'I\'m not sure I understood, but this is what I know about "Broken tent pole": ')
    assert persona.unsure("") == "I'm not sure I understood, but this is what I know: "
    assert persona.or_ask_a_person() == (" If that doesn't answer your question, you can email us, "
                                         "and a person from our team will help you.")


def test_the_summary_says_whether_each_earlier_question_was_answered_and_from_what():
    titled = Source("faq-returns", "Returns", "", 0.9, "test-kb")
    untitled = Source("care:3", "", "", 0.7, "test-kb")
    history = History(earlier=(Turn("Can I send it back?", "", (titled,)), Turn("How do I wash it?", "", (untitled,)),
                               Turn("Do you rent kayaks?", "")))
    assert history.summary() == ('"Can I send it back?" (answered from: Returns); "How do I wash it?" (answered); '
                                 '"Do you rent kayaks?" (not answered)')


class Searched:
    """A knowledge index whose two follow-up searches (the question alone, then
    with the conversation) return the given hits."""

    def __init__(self, alone: list, in_context: list) -> None:
        self.found = [alone, in_context]

    async def search_many(self, queries):
        return self.found, None


def scored(entry_id: str, score: float) -> Hit:
    return Hit(Entry(entry_id, "qa", entry_id, "An answer.", (f"{entry_id}?",), "tests", "published"), score,
               f"{entry_id}?", score)


@pytest.mark.parametrize(("alone", "in_context", "loose"), [
    # With the conversation "a" is not sure (0.55, 0.09 ahead); on its own words it is (0.70).
    ([("a", 0.70), ("b", 0.30)], [("b", 0.62), ("a", 0.40)], False),
    # On its own words another entry is sure, not "a": that says nothing of "a" (0.64, 0.13 ahead).
    ([("b", 0.70), ("a", 0.50)], [("a", 0.78), ("b", 0.32)], True),
])
async def test_a_follow_up_is_sure_with_the_conversation_or_alone_about_its_own_entry(alone, in_context, loose):
    index = Searched([scored(*pair) for pair in alone], [scored(*pair) for pair in in_context])
    bot = Chatbot(index, None, None, None, None, None)  # type: ignore[arg-type]  # retrieval needs the index only
    retrieved = await bot.retrieve("and that?", History(turns=(Turn("earlier", "An answer."),)))
    assert [hit.entry.entry_id for hit in retrieved.relevant][:1] == ["a"]
    assert retrieved.loose is loose and not retrieved.pointed_back

"""How an article is cut into the passages a quoted answer is chosen from, and
the relevance rule's constants as benchmarks report them: pinned where the
mutation run (scripts/mutate, docs/testing.md) found a change that no test
noticed."""

from __future__ import annotations

from bot.catalog import Entry
from bot.knowledge import Hit
from bot.persona import Persona
from bot.quoting import Quoting, passages
from bot.relevance import Relevance


def test_a_list_stays_with_the_paragraph_before_it_whatever_that_ends_with():
    assert passages("Returns are free.\n\n- unused;\n- complete.") == ["Returns are free.\n- unused;\n- complete."]
    assert passages("1. Pack it.\n\n2) Ship it.") == ["1. Pack it.\n2) Ship it."]


def test_a_paragraph_after_one_that_ends_with_a_colon_stays_with_it():
    assert passages("Here is how to return an item:\n\nPack it and print the label.\n\nSomething else.") == [
        "Here is how to return an item:\nPack it and print the label.", "Something else."]
    assert passages("No colon here.\n\nA new passage.") == ["No colon here.", "A new passage."]


def test_only_the_last_passage_takes_what_follows_it():
    text = "First passage.\n\nSecond passage.\n\nTo return an item it must be:\n\n- unused;\n- complete."
    assert passages(text) == ["First passage.", "Second passage.",
                              "To return an item it must be:\n- unused;\n- complete."]


def test_blank_text_has_no_passages():
    assert passages("") == []
    assert passages(" \n\n \n") == []


def test_the_rules_constants_for_benchmark_reports():
    assert Relevance().describe() == {"min_score": 0.42, "per_ln_phrasing": 0.02, "min_margin": 0.0,
                                     "sure_score": 0.66, "sure_score_apart": 0.52, "sure_margin": 0.16}
    assert Relevance(min_margin=0.1).describe()["min_margin"] == 0.1


# --- what is quoted from an entry (the real MiniLM embedder picks the passage) -------------------

SLEEPING_BAGS = "Wash down sleeping bags rarely, with a down-specific soap, at 30 degrees."
TENTS = "Tents should be dried completely before you store them, to stop mould."
JACKETS = "Waterproof jackets need reproofing every few washes to keep beading."


def quoted(embedder, query: str, content: str, kind: str = "article"):
    """What is quoted from an entry of `kind` with `content` (a coroutine)."""
    entry = Entry(entry_id="kb-1", kind=kind, title="Care", content=content, questions=("q",), source="s",
                  status="published")
    return Quoting(embedder, Persona(brand="Alder & Finch", bot_name="Mend", tone="warm", handoff="")).text(
        query, Hit(entry, 0.9, "q", 0.9))


async def test_a_qa_answer_is_quoted_whole_however_many_paragraphs(embedder):
    content = f"{SLEEPING_BAGS}\n\n{TENTS}\n\n{JACKETS}"
    assert await quoted(embedder, "How do I reproof my jacket?", content, kind="qa") == content


async def test_a_short_closest_passage_comes_with_the_next_one_only(embedder):
    content = f"{SLEEPING_BAGS}\n\n{TENTS}\n\n{JACKETS}"
    assert await quoted(embedder, "How do I store my tent so it doesn't go mouldy?", content) == \
        f"{TENTS}\n\n{JACKETS}"


async def test_the_last_passage_comes_alone(embedder):
    assert await quoted(embedder, "How often should I wash my sleeping bag?", f"{TENTS}\n\n{SLEEPING_BAGS}") == \
        SLEEPING_BAGS


async def test_a_passage_of_two_hundred_characters_or_more_comes_alone(embedder):
    for length in (200, 260):
        long_tents = (TENTS + " Pitch it in the garden on a dry day and leave the doors open for air." * 3)[:length]
        assert len(long_tents) == length
        assert await quoted(embedder, "How do I store my tent so it doesn't go mouldy?",
                            f"{long_tents}\n\n{JACKETS}") == long_tents

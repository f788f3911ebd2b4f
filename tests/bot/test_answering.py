"""How the bot writes an answer from what it retrieved: quoting the knowledge
(the embedded default), generating with each sentence checked against the
sources, and reading a follow-up in the light of the conversation. Real index
(pgvector, MiniLM), real sample knowledge where the behaviour depends on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat import Retrieval
from bot.ingest import ingest
from bot.persona import Persona
from bot.quoting import passages, sentences
from bot.relevance import Relevance
from bot.support import Support
from mend.bot.v1 import bot_service_pb2 as pb
from tests.support import ARTICLE, RETURNS, SHIPPING, generating, make_chatbot, upsert

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "sample"


async def answer(chatbot, query: str, conversation_id: str = ""):
    """The text streamed, the delta count and the logged exchange of one answer."""
    deltas, end = [], None
    async for event in chatbot.answer(query, conversation_id, None):
        if hasattr(event, "text"):
            deltas.append(event.text)
        elif hasattr(event, "exchange"):
            end = event.exchange
    assert end is not None
    return "".join(deltas), len(deltas), end


@pytest.fixture
async def quoting_bot(knowledge_index, knowledge, interactions_address):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    yield chatbot
    await channel.close()


async def test_a_qa_entry_is_served_as_written_with_no_model(quoting_bot, knowledge):
    written = pb.KnowledgeEntry()
    written.CopyFrom(SHIPPING)
    written.content = "Standard shipping takes 3-5 business days. It is free over 75 euros.\n\nExpress costs 9 euros."
    await upsert(knowledge, RETURNS, written)
    text, deltas, exchange = await answer(quoting_bot, "How long does delivery take?")
    assert exchange.grounded and exchange.sources[0].entry_id == "faq-shipping"
    assert exchange.answer == written.content  # word for word, layout kept
    assert deltas == 3  # a sentence at a time
    assert exchange.facts.model == "" and exchange.facts.output_tokens == 0
    assert exchange.facts.time_to_first_token_ms <= exchange.facts.total_ms


async def test_a_hedged_first_answer_greets_first_then_hedges(quoting_bot, knowledge):
    await upsert(knowledge, RETURNS)
    quoting_bot.answerer.persona = quoting_bot.persona = Persona(
        brand="Alder & Finch", bot_name="Finch", tone="warm", handoff="email us", greeting="Hi, I'm Finch!")
    quoting_bot.retrieval = Retrieval(relevance=Relevance(sure_score=2.0, sure_score_apart=2.0))  # nothing is sure
    text, _, exchange = await answer(quoting_bot, "How do I return something?", "conv-greet-hedge")
    persona = quoting_bot.persona
    assert exchange.unsure and not exchange.from_topic
    assert text == "Hi, I'm Finch! " + persona.unsure(exchange.sources[0].title) + RETURNS.content + \
        persona.or_ask_a_person()


async def test_the_greeting_opens_a_conversation_only(quoting_bot, knowledge):
    await upsert(knowledge, RETURNS)
    quoting_bot.answerer.persona = quoting_bot.persona = Persona(
        brand="Alder & Finch", bot_name="Finch", tone="warm", handoff="email us", greeting="Hi, I'm Finch!")
    first, _, _ = await answer(quoting_bot, "How do I return something?", "conv-greet")
    second, _, _ = await answer(quoting_bot, "What is your return policy?", "conv-greet")
    assert first == "Hi, I'm Finch! " + RETURNS.content
    assert second == RETURNS.content


async def test_an_article_is_answered_with_its_passage_closest_to_the_question(quoting_bot, knowledge):
    article = pb.KnowledgeEntry()
    article.CopyFrom(ARTICLE)
    article.content = ("Wash down sleeping bags rarely, with a down-specific soap, at 30 degrees.\n\n"
                       "Tents should be dried completely before you store them, to stop mould.\n\n"
                       "Waterproof jackets need reproofing every few washes to keep beading.")
    await upsert(knowledge, article)
    quoting_bot.retrieval = Retrieval(relevance=Relevance(min_score=0.0, sure_score=0.0))
    _, _, exchange = await answer(quoting_bot, "How do I store my tent so it doesn't go mouldy?")
    # The closest passage, and (it being short) the one after it; never the unrelated one before.
    assert exchange.answer.startswith("Tents should be dried completely before you store them, to stop mould.")
    assert "sleeping bags" not in exchange.answer


def test_passages_keep_a_list_with_the_sentence_that_introduces_it():
    text = "Intro line.\n\nTo return an item it must be:\n\n- unused;\n- complete.\n\nLast one."
    assert passages(text) == ["Intro line.", "To return an item it must be:\n- unused;\n- complete.", "Last one."]
    assert "".join(sentences("One. Two!\n\n- a\n- b")) == "One. Two!\n\n- a\n- b"


@pytest.mark.parametrize(("sentence", "supported"), [
    ("Yes, you can send back a tent you haven't used within 60 days for a full refund.", True),
    ("Yes, you can hire a kayak from us.", False),  # an echo of the question and nothing from the sources
    ("No, Alder & Finch does not rent out tents.", False),  # the brand's name is no evidence either
    ("You can return unused items within 90 days.", False),  # a number the sources do not state
    ("Of course, happy to help!", True),  # claims nothing
])
def test_a_sentence_is_supported_only_by_what_the_sources_say(sentence, supported):
    support = Support(["How do I return something?. You can return unused items within 60 days for a full refund."],
                      "Can I send back a tent I haven't used? Can I hire a kayak? Do you rent out tents?",
                      "Alder & Finch")
    assert support.supports(sentence) is supported


class ScriptedModel:
    """Answers with the given sentences, a word at a time, and records whether it was stopped."""

    model_id = "scripted"
    leaves_the_machine = False

    def __init__(self, text: str) -> None:
        self.text = text
        self.stopped = False

    async def stream(self, messages, max_tokens):
        try:
            for word in self.text.split(" "):
                yield word + " "
        except GeneratorExit:
            self.stopped = True
            raise


async def test_a_generated_answer_ends_before_its_first_unsupported_sentence(quoting_bot, knowledge):
    await upsert(knowledge, RETURNS)
    model = ScriptedModel("You can return unused items within 60 days. We also rent kayaks for 20 euros a day. "
                          "Thanks for asking!")
    quoting_bot.answerer = generating(quoting_bot, model)
    text, deltas, exchange = await answer(quoting_bot, "Can I send back an item?")
    assert exchange.answer == "You can return unused items within 60 days." and deltas == 1
    assert exchange.facts.model == "scripted" and model.stopped  # the rest was never generated


async def test_an_unsupported_generated_answer_is_replaced_by_the_entry_text(quoting_bot, knowledge):
    await upsert(knowledge, RETURNS)
    quoting_bot.answerer = generating(quoting_bot, ScriptedModel("Yes, we rent kayaks for 20 euros a day."))
    _, _, exchange = await answer(quoting_bot, "Can I send back an item?")
    assert exchange.grounded and exchange.answer == RETURNS.content
    assert exchange.facts.model == ""  # what the customer read was quoted, not generated


@pytest.mark.parametrize("text", ["Yes! We rent out kayaks for 20 euros a day.",
                                  "No. Kayak hire is something we stopped."])
async def test_a_bare_yes_or_no_before_an_unsupported_sentence_is_not_said(quoting_bot, knowledge, text):
    """"Yes!" claims nothing in words, but it answers the question: it waits for
    the sentence after it, and goes when that one is unsupported."""
    await upsert(knowledge, RETURNS)
    quoting_bot.answerer = generating(quoting_bot, ScriptedModel(text))
    _, _, exchange = await answer(quoting_bot, "Can I send back an item?")
    assert exchange.answer == RETURNS.content and exchange.facts.model == ""


async def test_a_pleasantry_goes_out_with_the_supported_sentence_after_it(quoting_bot, knowledge):
    await upsert(knowledge, RETURNS)
    model = ScriptedModel("Of course! You can return unused items within 60 days.")
    quoting_bot.answerer = generating(quoting_bot, model)
    text, deltas, exchange = await answer(quoting_bot, "Can I send back an item?")
    assert exchange.answer == "Of course! You can return unused items within 60 days." and deltas == 2


async def test_the_model_saying_it_does_not_know_means_the_bot_does_not_know(quoting_bot, knowledge):
    """Not replaced by a quote of an entry the model just found does not answer."""
    await upsert(knowledge, RETURNS)
    quoting_bot.answerer = generating(quoting_bot, ScriptedModel("I'm sorry, I don't know the answer to that."))
    _, _, exchange = await answer(quoting_bot, "Can I send back an item?")
    assert not exchange.grounded and exchange.answer == quoting_bot.persona.dont_know()


async def test_a_follow_up_is_answered_from_the_topic_of_the_conversation(quoting_bot, knowledge_index, knowledge):
    """The conversation issue 13 reported: the follow-up alone retrieved the
    refund-timing entry and the model said customers pay for return shipping."""
    await ingest(knowledge_index, [SAMPLE])
    _, _, first = await answer(quoting_bot, "How long do I have to return something?", "conv-returns")
    _, _, alone = await answer(quoting_bot, "And do you pay for the return shipping?", "")
    _, _, follow_up = await answer(quoting_bot, "And do you pay for the return shipping?", "conv-returns")
    assert first.sources[0].entry_id in {"faq-returns-policy", "returns-and-refunds:1"}, first.sources
    # Alone it finds another topic's near-match: what it meant is in the conversation.
    assert alone.sources[0].entry_id == "faq-refund-timing", alone.sources
    # Two entries and the returns article's first section say who pays for return
    # postage; all three say it is free from the EU and UK.
    assert follow_up.sources[0].entry_id in {"faq-start-return", "faq-returns-policy", "returns-and-refunds:1"}, \
        follow_up.sources
    assert "EU and UK" in follow_up.answer and "free" in follow_up.answer, follow_up.answer
    # A new topic in the same conversation is still found on its own.
    _, _, new_topic = await answer(quoting_bot, "Do you have a student discount?", "conv-returns")
    assert new_topic.sources[0].entry_id == "faq-student-discount"


async def test_an_off_topic_question_after_a_grounded_one_is_not_answered_from_the_earlier_topic(
        quoting_bot, knowledge_index, knowledge):
    """The conversation ranks, it does not vouch: asked alone, the bicycle
    question is not covered, and after a shipping question it still is not."""
    await ingest(knowledge_index, [SAMPLE])
    _, _, first = await answer(quoting_bot, "Do you ship to Norway?", "conv-norway")
    _, _, off_topic = await answer(quoting_bot, "Can you tune my bicycle?", "conv-norway")
    _, _, bikes = await answer(quoting_bot, "Do you sell bikes?", "conv-norway")
    _, _, washed = await answer(quoting_bot, "How do I wash my down sleeping bag?", "conv-bag")
    _, _, thanks = await answer(quoting_bot, "thanks!", "conv-bag")  # names no topic at all
    assert first.grounded and first.sources[0].entry_id == "faq-international-shipping"
    assert washed.grounded and washed.sources[0].entry_id == "faq-down-sleeping-bag-care"
    # Each scores well with the earlier topic in the query, and poorly on its own.
    for reply in (off_topic, bikes, thanks):
        assert not reply.grounded and "don't know" in reply.answer, (reply.query, reply.sources)


async def test_a_follow_up_that_points_back_is_answered_from_the_last_answers_entry_saying_it_is_not_sure(
        quoting_bot, knowledge_index, knowledge):
    """"how much will that cost me?" after a broken tent pole: nothing covers it
    on its own, and "that" is what was just answered. That entry may not be what
    was meant ("is it warm enough for winter?" after washing a down bag: the
    knowledge gives no rating), so the answer says so and how to reach a person."""
    await ingest(knowledge_index, [SAMPLE])
    persona = quoting_bot.persona
    _, _, alone = await answer(quoting_bot, "how much will that cost me?", "")
    _, _, pole = await answer(quoting_bot, "My tent pole broke, can you fix it?", "conv-pole")
    text, _, cost = await answer(quoting_bot, "how much will that cost me?", "conv-pole")
    assert all(source.entry_id != "faq-tent-pole-repair" for source in alone.sources)  # alone: another topic
    assert pole.grounded and pole.sources[0].entry_id == "faq-tent-pole-repair"
    assert cost.grounded and [source.entry_id for source in cost.sources] == ["faq-tent-pole-repair"]
    assert cost.answer == persona.unsure("Broken tent pole") + pole.answer + persona.or_ask_a_person() == text
    assert "€15 per section" in cost.answer and cost.unsure and not pole.unsure
    _, _, washed = await answer(quoting_bot, "How do I wash my down sleeping bag?", "conv-bag")
    _, _, warm = await answer(quoting_bot, "Is it warm enough for winter?", "conv-bag")
    assert warm.answer == persona.unsure(washed.sources[0].title) + washed.answer + persona.or_ask_a_person()


async def test_a_follow_up_points_back_only_at_an_answer_and_only_when_nothing_else_answers_it(
        quoting_bot, knowledge_index, knowledge):
    await ingest(knowledge_index, [SAMPLE])
    # What the bot did not know is no topic: the follow-up is not known either.
    _, _, kayak = await answer(quoting_bot, "Can I hire a kayak from you for the weekend?", "conv-kayak")
    _, _, cost = await answer(quoting_bot, "how much does that cost?", "conv-kayak")
    assert not kayak.grounded and not cost.grounded and cost.answer == quoting_bot.persona.dont_know()
    # "it" points back, but the claim entry answers the question on its own: not
    # from the conversation's topic (that it matches loosely may still be said).
    _, _, warranty = await answer(quoting_bot, "What's the warranty on your jackets?", "conv-claim")
    _, _, claim = await answer(quoting_bot, "ok and how do I actually claim on it?", "conv-claim")
    assert warranty.sources[0].entry_id == "faq-warranty"
    assert claim.sources[0].entry_id == "faq-warranty-claim" and not claim.from_topic
    # A short follow-up that points back ("that") and is not covered on its own
    # (the exchange entry's two best phrasings are about sizes): its topic's entry, hedged.
    _, _, swap = await answer(quoting_bot, "These boots are a size too small, can I swap them?", "conv-swap")
    _, _, free = await answer(quoting_bot, "is that free?", "conv-swap")
    assert swap.grounded and free.grounded and free.sources[0].entry_id == swap.sources[0].entry_id
    assert free.unsure and free.from_topic and free.answer.startswith("I'm not sure")
    # Without a word pointing back, a question names its own topic (here the repair service).
    _, _, pole = await answer(quoting_bot, "My tent pole broke, can you fix it?", "conv-pole")
    _, _, fees = await answer(quoting_bot, "how much will the repair cost me?", "conv-pole")
    assert pole.grounded and fees.grounded and not fees.from_topic, fees.sources


async def test_what_a_follow_up_points_back_at_wins_over_another_topic_it_finds_alone_in_as_many_words(
        quoting_bot, knowledge_index, knowledge):
    """"how long does that take to arrive?" after shipping to Australia finds
    standard delivery (3-5 business days, within the EU) on its own, but "that"
    is the international shipping just answered, whose entry has as many of the
    question's words: its delivery time, hedged. A follow-up whose words another
    entry has and the earlier one lacks ("customs") keeps the entry that answers
    it alone."""
    await ingest(knowledge_index, [SAMPLE])
    _, _, australia = await answer(quoting_bot, "Do you ship to Australia?", "conv-australia")
    _, _, alone = await answer(quoting_bot, "how long does that take to arrive?")
    _, _, how_long = await answer(quoting_bot, "how long does that take to arrive?", "conv-australia")
    assert australia.grounded and australia.sources[0].entry_id == "faq-international-shipping"
    assert alone.grounded and alone.sources[0].entry_id == "faq-standard-shipping"
    assert how_long.grounded and [source.entry_id for source in how_long.sources] == ["faq-international-shipping"]
    assert "5-10 business days" in how_long.answer and how_long.unsure and how_long.from_topic
    _, _, customs = await answer(quoting_bot, "will they charge me customs on it?", "conv-australia")
    assert customs.grounded and customs.sources[0].entry_id == "faq-duties-taxes" and not customs.from_topic


async def test_on_the_sample_a_loose_match_is_hedged_and_a_close_one_is_not(quoting_bot, knowledge_index, knowledge):
    """The default rule on the sample knowledge and the real embedder: renting
    tents, which the brand never mentions, finds the broken tent pole entry only
    loosely (one of its phrasings is about tents, the next is not), and the
    answer says it may not be what was asked (issue 13's first example); a
    discount the brand never mentions is not answered at all; the students'
    own question is answered plainly. In a conversation, a follow-up is sure
    when it is with the conversation or on its own words."""
    await ingest(knowledge_index, [SAMPLE])
    text, _, tents = await answer(quoting_bot, "Do you rent out tents?")
    assert tents.grounded and tents.unsure and not tents.from_topic
    assert text == tents.answer and tents.answer.startswith(quoting_bot.persona.unsure("Broken tent pole"))
    assert tents.answer.endswith(quoting_bot.persona.or_ask_a_person())
    _, _, military = await answer(quoting_bot, "Do you do an NHS or military discount?")
    assert not military.grounded and military.answer == quoting_bot.persona.dont_know()
    _, _, students = await answer(quoting_bot, "Is there any discount for uni students?", "conv-students")
    assert students.grounded and not students.unsure and students.sources[0].title == "Student discount"
    assert not students.answer.startswith("I'm not sure")
    _, _, sale = await answer(quoting_bot, "does it work on sale stuff too?", "conv-students")
    assert sale.unsure and sale.from_topic  # nothing covers it alone: the topic's entry, hedged
    _, _, claim = await answer(quoting_bot, "How do I make a warranty claim?", "conv-students")
    assert claim.grounded and not claim.unsure  # a new topic, matched closely


async def test_a_model_that_finds_no_answer_in_the_pointed_at_entry_says_it_does_not_know(
        quoting_bot, knowledge_index, knowledge):
    """The hedge is said before the first words of an answer, so an answer
    that never comes leaves the plain "I don't know"."""
    await ingest(knowledge_index, [SAMPLE])
    await answer(quoting_bot, "My tent pole broke, can you fix it?", "conv-pole")
    quoting_bot.answerer = generating(quoting_bot, ScriptedModel("I'm sorry, I don't know that."))
    text, deltas, cost = await answer(quoting_bot, "can I rent one while it's being repaired?", "conv-pole")
    assert not cost.grounded and text == cost.answer == quoting_bot.persona.dont_know() and deltas == 1
    assert not cost.unsure and not cost.from_topic  # no answer came: nothing to be unsure of, nor logged so

"""Generated answers at their edges: the customer's words and the brand's name are
known words but no evidence, a model that writes nothing or only pleasantries
gets the entry quoted instead, and what the bot logs when it cuts or replaces an
answer. Pinned where the mutation run (scripts/mutate, docs/testing.md) found a
change that no test noticed. Real index (pgvector, MiniLM)."""

from __future__ import annotations

import logging

import pytest

from bot.chat import Retrieval
from bot.relevance import Relevance
from tests.support import RETURNS, ScriptedModel, generating, make_chatbot, upsert


@pytest.fixture
async def bot(knowledge_index, knowledge, interactions_address):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    yield chatbot
    await channel.close()


async def exchange_of(chatbot, model: ScriptedModel, query: str):
    chatbot.answerer = generating(chatbot, model)
    end = None
    async for event in chatbot.answer(query, "", None):
        if hasattr(event, "exchange"):
            end = event.exchange
    assert end is not None
    return end


async def test_the_customers_own_words_count_as_known(bot):
    """Two of the five content words are the question's (kayak, paddle): with them
    known, the sentence passes; they are no evidence, the sources' words are."""
    bot.retrieval = Retrieval(relevance=Relevance(min_score=0.0, sure_score=0.0))  # answered from the returns entry
    answer = "Yes, you can return your kayak paddle within 60 days."
    end = await exchange_of(bot, ScriptedModel(answer), "Can I return my kayak paddle?")
    assert end.answer == answer and end.facts.model == "scripted"


async def test_each_piece_the_model_streams_counts_as_an_output_token(bot):
    answer = "You can return unused items within 60 days."
    end = await exchange_of(bot, ScriptedModel(answer), "Can I send back an item?")
    assert end.answer == answer and end.facts.output_tokens == len(answer.split(" "))


async def test_the_brands_name_counts_as_known(bot):
    bot.retrieval = Retrieval(relevance=Relevance(min_score=0.0, sure_score=0.0))
    answer = "At Alder & Finch, refunds take 60 days."
    end = await exchange_of(bot, ScriptedModel(answer), "How long does a refund take?")
    assert end.answer == answer and end.facts.model == "scripted"


@pytest.mark.parametrize("text", ["", "Of course! Happy to help!"])
async def test_a_model_that_says_nothing_checkable_gets_the_entry_quoted(bot, caplog, text):
    caplog.set_level(logging.INFO, logger="bot.generating")
    end = await exchange_of(bot, ScriptedModel(text), "Can I send back an item?")
    assert end.grounded and end.answer == RETURNS.content and end.facts.model == ""
    (record,) = [r for r in caplog.records if r.name == "bot.generating"]
    assert record.getMessage() == ("a generated sentence was not supported by the sources; the answer ends "
                                   "before it")
    assert (record.replaced, record.chars) == (True, 0)


async def test_an_answer_cut_after_a_supported_sentence_is_logged_as_cut_not_replaced(bot, caplog):
    caplog.set_level(logging.INFO, logger="bot.generating")
    unsupported = "We also rent kayaks for 20 euros a day. "
    end = await exchange_of(bot, ScriptedModel("You can return unused items within 60 days. " + unsupported),
                            "Can I send back an item?")
    assert end.answer == "You can return unused items within 60 days."
    (record,) = [r for r in caplog.records if r.name == "bot.generating"]
    assert record.getMessage().startswith("a generated sentence was not supported")
    assert (record.replaced, record.chars) == (False, len(unsupported))


async def test_the_model_declining_is_logged(bot, caplog):
    caplog.set_level(logging.INFO, logger="bot.generating")
    declining = ScriptedModel("I'm sorry, I don't know the answer to that.")
    end = await exchange_of(bot, declining, "Can I send back an item?")
    assert not end.grounded
    (record,) = [r for r in caplog.records if r.name == "bot.generating"]
    assert record.getMessage() == "the model said the facts do not answer the question"


async def test_an_answer_is_generated_in_at_most_200_tokens(bot):
    asked = []

    class Recording(ScriptedModel):
        async def stream(self, messages, max_tokens):
            asked.append(max_tokens)
            async for piece in super().stream(messages, max_tokens):
                yield piece

    await exchange_of(bot, Recording("You can return unused items within 60 days."), "Can I send back an item?")
    assert asked == [200]

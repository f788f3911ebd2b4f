"""Every exchange is logged under the trace that answered it, so that a disliked
answer leads to its trace: pinned where the mutation run (scripts/mutate,
docs/testing.md) found that no test left in its bot selection checked it."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from opentelemetry import trace

from tests.support import RETURNS, make_chatbot, upsert


async def logged_trace_id(pool, interaction_id) -> str:
    for _ in range(100):
        found = await pool.fetchval("SELECT trace_id FROM interactions WHERE interaction_id = $1", interaction_id)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the exchange was not logged")


async def answered(chatbot, query: str):
    async for event in chatbot.answer(query, "", None):
        if hasattr(event, "exchange"):
            return event.exchange
    raise AssertionError("no End event")


async def test_an_exchange_is_logged_under_the_trace_that_answered_it(knowledge_index, knowledge,
                                                                      interactions_address, pool):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await pool.execute("TRUNCATE interactions")
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    try:
        with trace.get_tracer("tests").start_as_current_span("a chat") as span:
            exchange = await answered(chatbot, "How do I return something?")
            expected = format(span.get_span_context().trace_id, "032x")
        assert await logged_trace_id(pool, uuid.UUID(str(exchange.interaction_id))) == expected
        # Outside any trace the bot names none (interactions then records the trace of its own call),
        # never an id of zeros.
        exchange = await answered(chatbot, "What is your return policy?")
        assert await logged_trace_id(pool, uuid.UUID(str(exchange.interaction_id))) not in ("", "0" * 32)
    finally:
        await channel.close()


async def test_an_answer_records_how_long_it_took_and_traces_its_retrieval(knowledge_index, knowledge,
                                                                          interactions_address, spans):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    try:
        started = time.perf_counter()
        exchange = await answered(chatbot, "How do I return something?")
        took_ms = (time.perf_counter() - started) * 1000
    finally:
        await channel.close()
    facts = exchange.facts
    assert 0 <= facts.retrieval_ms <= facts.time_to_first_token_ms <= facts.total_ms <= took_ms + 1
    assert facts.total_ms >= 1  # an embedding and a search take a millisecond at least
    (retrieval,) = [s for s in spans.get_finished_spans() if s.name == "mend.retrieval"]
    assert (retrieval.attributes["mend.retrieval.k"], retrieval.attributes["mend.retrieval.hits"]) == (3, 1)
    assert retrieval.attributes["mend.retrieval.best_score"] == pytest.approx(exchange.sources[0].score)

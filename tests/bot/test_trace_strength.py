"""Every exchange is logged under the trace that answered it, so that a disliked
answer leads to its trace: pinned where the mutation run (scripts/mutate,
docs/testing.md) found that no test left in its bot selection checked it."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from opentelemetry import trace

from bot.outbox import Outbox
from mend.interactions.v1 import interactions_service_pb2_grpc as interactions_grpc
from mendkit import clients
from mendkit.credentials import BOT
from tests.support import RETURNS, TOKENS, ScriptedModel, free_port, generating, make_chatbot, upsert


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


async def test_an_exchange_delivered_later_is_still_logged_under_the_trace_that_answered_it(
        knowledge_index, knowledge, interactions_address, pool):
    """interactions down while the bot answers: the outbox keeps the exchange, and
    its later delivery (the background pass, in no trace or another one) still
    names the trace that answered, not the delivery's."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await pool.execute("TRUNCATE interactions")
    await upsert(knowledge, RETURNS)
    chatbot, down = make_chatbot(knowledge_index, None, f"127.0.0.1:{free_port()}")  # nothing listens there
    try:
        with trace.get_tracer("tests").start_as_current_span("a chat") as span:
            exchange = await answered(chatbot, "How do I return something?")
            expected = format(span.get_span_context().trace_id, "032x")
    finally:
        await down.close()
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 0  # not delivered yet
    up = clients.insecure_channel(interactions_address, token=TOKENS[BOT])
    try:
        outbox = Outbox(knowledge_index.pool, interactions_grpc.InteractionsServiceStub(up))
        with trace.get_tracer("tests").start_as_current_span("a later delivery pass"):
            assert await outbox.deliver_pending() == 1
    finally:
        await up.close()
    assert await logged_trace_id(pool, uuid.UUID(str(exchange.interaction_id))) == expected


async def exchange_in(chatbot, query: str, conversation_id: str):
    async for event in chatbot.answer(query, conversation_id, None):
        if hasattr(event, "exchange"):
            return event.exchange
    raise AssertionError("no End event")


async def test_the_spans_of_an_answer_say_how_it_was_found_and_written(knowledge_index, knowledge,
                                                                       interactions_address, spans):
    """What an operator reads in a trace: the retrieval span counts the earlier
    turns the question was read with; the `mend.answer` span names the model,
    the tokens it wrote and whether the answer was cut at an unsupported
    sentence, and carries the question only with record_text on."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    chatbot.answerer = generating(chatbot, ScriptedModel(
        "You can return unused items within 60 days. We also rent kayaks for 20 euros a day."))
    chatbot.record_text = True
    conversation = f"conv-{uuid.uuid4()}"
    try:
        first = await exchange_in(chatbot, "Can I send back an item?", conversation)
        spans.clear()
        second = await exchange_in(chatbot, "What is your return policy?", conversation)
    finally:
        await channel.close()
    assert first.grounded and second.grounded and second.facts.model == "scripted"
    finished = spans.get_finished_spans()
    (retrieval,) = [s for s in finished if s.name == "mend.retrieval"]
    assert retrieval.attributes["mend.retrieval.history_turns"] == 1
    (written,) = [s for s in finished if s.name == "mend.answer"]
    assert written.attributes["mend.chat.query"] == "What is your return policy?"
    assert written.attributes["mend.llm.model"] == "scripted"
    assert written.attributes["mend.llm.output_tokens"] == second.facts.output_tokens > 0
    assert written.attributes["mend.answer.unsupported"] is True  # the kayaks are not in the knowledge


async def test_a_question_nothing_answers_traces_a_best_score_of_zero_and_no_answer_span(
        knowledge_index, knowledge, interactions_address, spans):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)  # the catalogue is empty
    try:
        spans.clear()
        exchange = await answered(chatbot, f"Do you rent kayaks by the hour? ({uuid.uuid4()})")
    finally:
        await channel.close()
    assert not exchange.grounded
    names = [s.name for s in spans.get_finished_spans()]
    assert "mend.answer" not in names
    (retrieval,) = [s for s in spans.get_finished_spans() if s.name == "mend.retrieval"]
    assert retrieval.attributes["mend.retrieval.best_score"] == 0.0
    assert retrieval.attributes["mend.retrieval.hits"] == 0
    assert retrieval.attributes["mend.retrieval.history_turns"] == 0
    # "I don't know" is its first token: it comes after the retrieval, not at 1 ms.
    facts = exchange.facts
    assert facts.retrieval_ms <= facts.time_to_first_token_ms <= facts.total_ms
    assert facts.retrieval_ms >= 2  # embedding a new question and searching take a few milliseconds


async def test_the_question_stays_off_the_answer_span_unless_enabled(knowledge_index, knowledge,
                                                                    interactions_address, spans):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    try:
        spans.clear()
        exchange = await answered(chatbot, "Can I send back an item?")
    finally:
        await channel.close()
    assert exchange.grounded
    (written,) = [s for s in spans.get_finished_spans() if s.name == "mend.answer"]
    assert "mend.chat.query" not in written.attributes
    assert written.attributes["mend.llm.model"] == ""  # quoted: no model wrote it

"""The chat at its edges: an answer the bot did not draw from the knowledge
names no sources, a conversation is read back only as far as its last turns,
and a source at exactly its own cut comes along. Pinned where the mutation run
(scripts/mutate, docs/testing.md) found a change that no test noticed."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from bot import dedup, outbox
from bot.catalog import Entry
from bot.conversations import Conversations
from bot.exchange import Exchange, Facts
from bot.knowledge import Hit
from bot.outbox import DELIVERY_BATCH
from bot.relevance import Relevance
from mendkit.errors import Unavailable
from tests.support import RETURNS, RecordingModel, generating, logged_exchange, make_chatbot, upsert


class DecliningModel:
    """A chat model that finds no answer in the facts it is given."""

    model_id = "declining"
    leaves_the_machine = False

    text = "I'm sorry, I don't know the answer to that."

    async def stream(self, messages, max_tokens):
        for word in self.text.split(" "):
            yield word + " "


async def test_an_answer_not_drawn_from_the_knowledge_names_no_sources(knowledge_index, knowledge,
                                                                      interactions_address):
    """The search found a relevant entry, but the model said it does not know:
    the customer reads "I don't know", and no source claims to back it."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    chatbot.answerer = generating(chatbot, DecliningModel())
    try:
        events = [event async for event in chatbot.answer("Can I send back an item?", "", None)]
    finally:
        await channel.close()
    assert events[0].sources[0].entry_id == "faq-returns"  # found and relevant
    exchange = events[-1].exchange
    assert not exchange.grounded and exchange.answer == chatbot.persona.dont_know()
    assert exchange.sources == ()


async def test_a_conversations_history_is_its_last_turns_oldest_first(knowledge_index, interactions_address):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    chatbot, channel = make_chatbot(knowledge_index, None, interactions_address)
    try:
        for n in range(5):
            await chatbot.outbox.record(Exchange(interaction_id=uuid.uuid4(), conversation_id="conv-long",
                                                 query=f"question {n}", answer=f"answer {n}", sources=(),
                                                 grounded=False, facts=Facts()))
    finally:
        await channel.close()
    history = await Conversations(knowledge_index.pool).history("conv-long", 3)
    assert [(turn.query, turn.answer) for turn in history.turns] == [
        ("question 2", "answer 2"), ("question 3", "answer 3"), ("question 4", "answer 4")]


def test_a_source_exactly_at_its_own_cut_comes_along():
    def hit(entry_id: str, score: float) -> Hit:
        entry = Entry(entry_id, "qa", "", "An answer.", (f"{entry_id} question",), "tests", "published")
        return Hit(entry, score, entry.questions[0], score)

    rule = Relevance()
    top, at_cut = hit("kb-top", 0.9), hit("kb-at-cut", 0.42)
    assert rule.cut(at_cut) == 0.42  # one phrasing: the cut is min_score itself
    assert [h.entry.entry_id for h in rule.relevant([top, at_cut])] == ["kb-top", "kb-at-cut"]
    assert [h.entry.entry_id for h in rule.relevant([top, hit("kb-below", 0.4199)])] == ["kb-top"]


async def test_a_request_id_claimed_found_or_released_while_the_bots_database_is_down_is_unavailable(unreachable):
    """The caller retries an UNAVAILABLE (Chat with a request_id is safe to retry); the message names the database."""
    claims = dedup.Dedup(unreachable)
    for call in (claims.claim, claims.find, claims.release):
        with pytest.raises(Unavailable, match="^the bot database is unreachable: "):
            await call(uuid.uuid4())
    with pytest.raises(Unavailable, match="^the bot database is unreachable: "):  # and recording an exchange
        await outbox.Outbox(unreachable, None).record(logged_exchange("Do you rent tents?", "No.")[1])


async def two_warnings_while_it_runs(loop, logger: str, caplog) -> list[tuple[str, str]]:
    """Runs a background loop until `logger` has warned twice (it must still be running
    then), stops it, and returns each warning's message and `error`."""
    with caplog.at_level("WARNING", logger=logger):
        task = asyncio.create_task(loop)
        try:
            for _ in range(200):
                failed = [r for r in caplog.records if r.name == logger and r.levelname == "WARNING"]
                if len(failed) >= 2:
                    break
                await asyncio.sleep(0.02)
            assert not task.done()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    return [(r.getMessage(), r.error) for r in failed[:2]]


async def test_a_claim_that_cannot_be_renewed_is_renewed_again_and_each_failure_logged(unreachable, monkeypatch,
                                                                                      caplog):
    """The answer goes on; if no renewal gets through, the lease lapses and a retry takes over."""
    monkeypatch.setattr(dedup, "CLAIM_RENEW_S", 0.01)
    failed = await two_warnings_while_it_runs(dedup.Dedup(unreachable)._renew(uuid.uuid4()), "bot.dedup", caplog)
    assert failed == [("could not renew a claim", "ConnectionRefusedError")] * 2


async def test_a_delivery_pass_takes_at_most_a_batch_of_exchanges(knowledge_index, interactions_address):
    """A long outage leaves many exchanges: each pass sends at most DELIVERY_BATCH of them."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    chatbot, channel = make_chatbot(knowledge_index, RecordingModel(), interactions_address)
    try:
        for n in range(DELIVERY_BATCH + 1):
            await chatbot.outbox.record(logged_exchange(f"Question {n}?", f"Answer {n}.")[1])
        assert await chatbot.outbox.deliver_pending() == DELIVERY_BATCH
        assert await chatbot.outbox.pending() == 1
        assert await chatbot.outbox.deliver_pending() == 1
    finally:
        await channel.close()


async def test_an_interactions_service_that_never_answers_holds_up_no_answer(knowledge_index, monkeypatch):
    """A peer that takes the connection and never answers (a hung process): the customer's path
    gives up after the delivery deadline, and the exchange stays in the outbox for the next pass."""
    monkeypatch.setattr(outbox, "DELIVERY_DEADLINE_S", 0.3)
    held: list[asyncio.StreamWriter] = []

    async def hold(reader, writer):
        held.append(writer)  # accepted, never answered

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    chatbot, channel = make_chatbot(knowledge_index, RecordingModel(), f"127.0.0.1:{port}")
    try:
        _, exchange = logged_exchange("Do you rent tents?", "No.")
        await asyncio.wait_for(chatbot.outbox.send(exchange), 10)  # a regression fails here, not hangs
        assert await chatbot.outbox.pending() == 1
        error = await knowledge_index.pool.fetchval("SELECT last_error FROM chat_log WHERE interaction_id = $1",
                                                    exchange.interaction_id)
        assert error.startswith(grpc.StatusCode.DEADLINE_EXCEEDED.name)
    finally:
        await channel.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


class FailingInteractions:
    """An InteractionsService stub whose CreateInteraction fails with `code` and a long message."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    async def CreateInteraction(self, request, **options):
        raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x" * 600)


@pytest.mark.parametrize(("code", "parked"), [(grpc.StatusCode.INTERNAL, False),
                                              (grpc.StatusCode.INVALID_ARGUMENT, True)])
async def test_a_failed_delivery_is_logged_kept_with_its_cause_and_parked_only_when_refused_for_good(
        knowledge_index, caplog, code, parked):
    """INTERNAL is about the service: retried on the next pass. INVALID_ARGUMENT refuses the exchange itself."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    box = outbox.Outbox(knowledge_index.pool, FailingInteractions(code))
    _, exchange = logged_exchange("Do you rent tents?", "No.")
    with caplog.at_level("ERROR", logger="bot.outbox"):
        await box.send(exchange)
    row = await knowledge_index.pool.fetchrow("SELECT last_error, failed_at FROM chat_log WHERE interaction_id = $1",
                                              exchange.interaction_id)
    assert row["last_error"] == f"{code.name}: {'x' * 600}"[:500] and (row["failed_at"] is not None) == parked
    assert await box.pending() == (0 if parked else 1)
    (line,) = [r for r in caplog.records if r.name == "bot.outbox"]
    assert line.getMessage() == ("interactions refused an exchange for good; parked it (chat_log.failed_at)" if parked
                                 else "interactions failed an exchange; retrying it on the next pass")
    assert (line.interaction_id, line.code) == (str(exchange.interaction_id), code.name)


async def test_a_delivery_pass_that_fails_is_logged_and_the_loop_goes_on(unreachable, caplog):
    """The bot's own database down: each pass fails, says why, and the next one is tried."""
    failed = await two_warnings_while_it_runs(outbox.Outbox(unreachable, None).run_delivery(interval_s=0.01),
                                              "bot.outbox", caplog)
    assert failed == [("delivery pass failed", "ConnectionRefusedError")] * 2

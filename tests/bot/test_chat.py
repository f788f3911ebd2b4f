"""ChatService end to end: the real index, the real embedded model, the real
interactions service and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from bot import conversations, messages
from bot.__main__ import INTERACTIONS_SERVICE
from bot.chat import Retrieval
from bot.conversations import Conversations
from bot.outbox import DELIVERY_BATCH
from bot.quoting import Quoting
from bot.relevance import Relevance
from interactions.service import ACCESS as INTERACTIONS_ACCESS
from interactions.service import InteractionsService
from mend.bot.v1 import bot_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration
from tests.support import (
    ARTICLE,
    RETURNS,
    SHIPPING,
    RecordingModel,
    expect_status,
    free_port,
    generating,
    logged_exchange,
    make_chatbot,
    serve,
    upsert,
)
from tests.support import channel as admin_channel

OFF_TOPIC = "What is the capital city of Peru?"

# Fields every log record has; only the rest is what a log call chose to say.
_LOG_RECORD_BOOKKEEPING = set(vars(logging.makeLogRecord({})))


async def stream(stub, query: str, **fields) -> list[pb.ChatStreamResponse]:
    return [event async for event in stub.ChatStream(pb.ChatStreamRequest(query=query, **fields))]


async def test_a_grounded_answer_streams_in_order_and_is_logged(chat, knowledge, pool):
    stub, chatbot = chat
    await upsert(knowledge, RETURNS, SHIPPING, ARTICLE)
    events = await stream(stub, "Can I send back a tent I haven't used?")
    kinds = [e.WhichOneof("event") for e in events]
    # Generated text streams a sentence at a time, each checked against the sources.
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"delta"} and len(kinds) >= 3
    start, end = events[0].start, events[-1].end
    assert end.grounded
    assert start.sources[0].entry_id == "faq-returns" and start.sources[0].source == "test-kb"
    answer = "".join(e.delta.text for e in events[1:-1]).strip()
    assert "60" in answer, answer  # the fact the knowledge gave it
    # Written by the model (not replaced by the entry's text as unsupported).
    assert end.generation.model == chatbot.answerer.model.model_id, answer
    assert end.generation.time_to_first_token_ms > 0
    row = await pool.fetchrow("SELECT user_query, bot_response, sources FROM interactions WHERE interaction_id = $1",
                              uuid.UUID(start.interaction_id))
    assert row["user_query"] == "Can I send back a tent I haven't used?"
    assert row["bot_response"] == answer
    assert row["sources"][0]["entry_id"] == "faq-returns"


async def test_nothing_relevant_means_i_do_not_know_and_how_to_reach_a_person(chat, knowledge, pool):
    stub, chatbot = chat
    await upsert(knowledge, RETURNS, SHIPPING)
    response = await stub.Chat(pb.ChatRequest(query=OFF_TOPIC))
    assert not response.grounded and list(response.sources) == []
    assert "don't know" in response.answer and "care@alderandfinch.example" in response.answer
    assert await pool.fetchval("SELECT bot_response FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(response.interaction_id)) == response.answer


async def test_an_answer_from_the_conversations_topic_is_marked_unsure_on_both_rpcs_and_on_a_retry(
        chat, knowledge, monkeypatch, pool):
    """A follow-up nothing covers on its own, answered from the last answer's
    entry, says so: `unsure`, which the page turns into the way to a person."""
    stub, chatbot = chat
    monkeypatch.setattr(chatbot, "answerer", Quoting(chatbot.knowledge.embedder, chatbot.persona))
    await upsert(knowledge, RETURNS)
    first = await stub.Chat(pb.ChatRequest(query="How do I return something?"))
    assert first.grounded and not first.unsure
    asked = pb.ChatRequest(query="and what does that cost?", conversation_id=first.conversation_id,
                           conversation_token=first.conversation_token, request_id=str(uuid.uuid4()))
    unsure = await stub.Chat(asked)
    assert unsure.grounded and unsure.unsure and [s.entry_id for s in unsure.sources] == ["faq-returns"]
    assert unsure.answer.startswith("I'm not sure I understood") and "care@alderandfinch.example" in unsure.answer
    assert await stub.Chat(asked) == unsure  # a retry replays it, mark included
    streamed = pb.ChatStreamRequest(query=asked.query, conversation_id=asked.conversation_id,
                                    conversation_token=asked.conversation_token, request_id=asked.request_id)
    replayed = [event async for event in stub.ChatStream(streamed)]
    assert replayed[-1].end.unsure and replayed[-1].end.grounded
    streamed.request_id = str(uuid.uuid4())
    again = [event async for event in stub.ChatStream(streamed)]
    assert again[-1].end.unsure and "".join(event.delta.text for event in again).startswith("I'm not sure")
    unrelated = [event async for event in stub.ChatStream(pb.ChatStreamRequest(query="How do I return something?"))]
    assert unrelated[-1].end.grounded and not unrelated[-1].end.unsure
    # Logged as such in interactions, for the trainer (which never edits an entry for an unsure answer).
    logged = dict(await pool.fetch("SELECT interaction_id::text, unsure FROM interactions"))
    assert logged[unsure.interaction_id] is True and logged[first.interaction_id] is False


async def test_conversation_and_request_ids(chat, knowledge):
    stub, _ = chat
    first = await stub.Chat(pb.ChatRequest(query=OFF_TOPIC))
    assert uuid.UUID(first.conversation_id)
    assert first.conversation_token
    second = await stub.Chat(pb.ChatRequest(query="And of Chile?", conversation_id=first.conversation_id,
                                            conversation_token=first.conversation_token))
    assert second.conversation_id == first.conversation_id
    assert second.conversation_token == first.conversation_token
    # An id the bot has never seen starts a conversation under that id (the
    # contract's choice: a browser may mint its own ids), not an error.
    unknown = await stub.Chat(pb.ChatRequest(query=OFF_TOPIC, conversation_id="never-seen-before"))
    assert unknown.conversation_id == "never-seen-before" and unknown.conversation_token
    request_id = str(uuid.uuid4())
    answered = await stub.Chat(pb.ChatRequest(query=OFF_TOPIC, request_id=request_id))
    assert answered.interaction_id == request_id
    replayed = await stub.Chat(pb.ChatRequest(query=OFF_TOPIC, request_id=request_id))
    assert replayed == answered
    await expect_status(stub.Chat(pb.ChatRequest(query="Something else entirely", request_id=request_id)),
                        grpc.StatusCode.ALREADY_EXISTS, request_id)


async def test_a_row_logged_before_the_outbox_split_replays_exactly(chat, knowledge_index):
    """chat_log rows hold the ChatResponse bytes the bot gave: a retry of such a
    row's request id gets that very response, on Chat and on ChatStream."""
    stub, _ = chat
    request_id = uuid.uuid4()
    logged = pb.ChatResponse(
        answer="You can return unused items within 60 days.", interaction_id=str(request_id),
        conversation_id="conv-old", grounded=True,
        sources=[pb.Source(entry_id="faq-returns", title="Returns", snippet="You can return", score=0.8125,
                           source="test-kb")],
        generation=pb.GenerationFacts(model="old-model", input_tokens=7, output_tokens=9, retrieval_ms=3,
                                      time_to_first_token_ms=120, total_ms=450))
    await knowledge_index.pool.execute(
        """INSERT INTO chat_log (interaction_id, conversation_id, query, answer, grounded, request, response,
                                 delivered_at)
           VALUES ($1, 'conv-old', 'Can I return it?', $2, true, '', $3, now())""",
        request_id, logged.answer, logged.SerializeToString())
    replayed = await stub.Chat(pb.ChatRequest(query="Can I return it?", request_id=str(request_id)))
    # With the conversation's token, which is never stored.
    token = replayed.conversation_token
    expected = pb.ChatResponse()
    expected.CopyFrom(logged)
    expected.conversation_token = token
    assert token and replayed == expected
    events = await stream(stub, "Can I return it?", request_id=str(request_id))
    assert [e.WhichOneof("event") for e in events] == ["start", "delta", "end"]
    assert events[0].start == pb.ChatStreamStart(interaction_id=str(request_id), conversation_id="conv-old",
                                                 sources=logged.sources, conversation_token=token)
    assert events[1].delta.text == logged.answer
    assert events[2].end == pb.ChatStreamEnd(grounded=True, generation=logged.generation)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ChatRequest(query=""), "query"),
        (pb.ChatRequest(query="   "), "query"),
        (pb.ChatRequest(query="x" * 4001), "query"),
        (pb.ChatRequest(query="hi", request_id="not-a-uuid"), "request_id"),
        (pb.ChatRequest(query="hi", conversation_id="c" * 129), "conversation_id"),
        (pb.ChatRequest(query="hi", conversation_id="c", conversation_token="not-a-token"), "conversation_token"),
        (pb.ChatRequest(query="hi", conversation_token="x" * 42 + "!"), "conversation_token"),
    ],
)
async def test_bad_chat_requests_name_the_field(chat, request_, field):
    stub, _ = chat
    await expect_status(stub.Chat(request_), grpc.StatusCode.INVALID_ARGUMENT, field)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stream(stub, request_.query, request_id=request_.request_id, conversation_id=request_.conversation_id,
                     conversation_token=request_.conversation_token)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in raised.value.details()


async def test_answers_while_interactions_is_down_and_delivers_once_it_is_back(
        knowledge_index, chat_model, pool, knowledge):
    """The customer gets the answer; the exchange waits in the outbox; once
    interactions is up it is delivered, and feedback on it then works."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    port = free_port()
    chatbot, channel = make_chatbot(knowledge_index, chat_model, f"127.0.0.1:{port}")
    try:
        events = [messages.stream_event(e) async for e in chatbot.answer(OFF_TOPIC, "", None)]
        interaction_id = events[0].start.interaction_id
        assert events[-1].WhichOneof("event") == "end"
        assert await chatbot.outbox.pending() == 1
        assert await pool.fetchval("SELECT count(*) FROM interactions WHERE interaction_id = $1",
                                   uuid.UUID(interaction_id)) == 0

        servicer = InteractionsService(pool, PageTokens(b"tests-page-token-secret"))
        running = await serve(Registration(servicer, ipb_grpc.add_InteractionsServiceServicer_to_server,
                                           INTERACTIONS_SERVICE, INTERACTIONS_ACCESS), address=f"127.0.0.1:{port}")
        try:
            assert await chatbot.outbox.deliver_pending() == 1
            assert await chatbot.outbox.pending() == 0
            async with admin_channel(f"127.0.0.1:{port}") as direct:
                rated = await ipb_grpc.InteractionsServiceStub(direct).SubmitFeedback(
                    ipb.SubmitFeedbackRequest(interaction_id=interaction_id, rating=ipb.RATING_DISLIKE))
            assert rated.interaction.feedback == -1 and rated.interaction.user_query == OFF_TOPIC
        finally:
            await running.stop(0)
    finally:
        await channel.close()


async def test_a_conversation_carries_its_earlier_turns_into_the_prompt(knowledge_index, knowledge, interactions):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS, SHIPPING)
    model = RecordingModel()
    chatbot, channel = make_chatbot(knowledge_index, model, "127.0.0.1:1")
    try:
        first = [messages.stream_event(e) async for e in chatbot.answer("What is your return policy?", "conv-7", None)]
        [e async for e in chatbot.answer("And how long does delivery take?", "conv-7", None)]
        [e async for e in chatbot.answer("When will my parcel arrive?", "conv-other", None)]
    finally:
        await channel.close()
    assert first[-1].end.grounded
    second, other = model.prompts[1], model.prompts[2]
    assert [(m.role, m.content) for m in second[1:3]] == [("user", "What is your return policy?"),
                                                          ("assistant", "You can return unused items.")]
    assert "3-5 business days" in second[-1].content and second[-1].content.endswith(
        "Question: And how long does delivery take?")
    assert [m.role for m in other] == ["system", "user"]  # another conversation: no history


TITLED_RETURNS = pb.KnowledgeEntry(title="Returns", **{f.name: v for f, v in RETURNS.ListFields()})
TITLED_SHIPPING = pb.KnowledgeEntry(title="Delivery times", **{f.name: v for f, v in SHIPPING.ListFields()})


async def test_a_long_conversation_keeps_its_older_turns_as_a_bounded_summary(knowledge_index, knowledge):
    """The last turns go into the prompt whole (Retrieval.history_turns); the
    ones before them as a line each, what was asked and what answered it, the
    newest kept within bot/conversations.py's bounds: a conversation of a
    hundred turns costs the prompt no more than one of twenty."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, TITLED_RETURNS, TITLED_SHIPPING)
    model = RecordingModel()
    chatbot, channel = make_chatbot(knowledge_index, model, "127.0.0.1:1")
    asked = ["What is your return policy?", "Do you sell kayaks?", "How long does delivery take?",
             "Can I send back an item?", "When will my parcel arrive?", "How do I return something?"]
    try:
        for question in asked:
            [e async for e in chatbot.answer(question, "conv-long", None)]
        short = model.prompts[-1]
        for n in range(conversations.SUMMARY_TURNS + 4):
            [e async for e in chatbot.answer(f"Can I send back item {n}?", "conv-long", None)]
        long = model.prompts[-1]
        history = await Conversations(knowledge_index.pool).history("conv-long", 3)
    finally:
        await channel.close()
    # The kayak question was not answered: no model call, but it is in the summary.
    assert len(model.prompts) == len(asked) - 1 + conversations.SUMMARY_TURNS + 4
    assert short[0].content.endswith(
        'Earlier in this conversation the customer asked: "What is your return policy?" (answered from: Returns); '
        '"Do you sell kayaks?" (not answered).')
    assert [m.content for m in short[1:-1] if m.role == "user"] == asked[2:5]  # then the question with its facts
    # Long: the last three whole, the ten before them summarized, the rest forgotten.
    n = conversations.SUMMARY_TURNS + 3
    assert [turn.query for turn in history.turns] == [f"Can I send back item {k}?" for k in range(n - 2, n + 1)]
    assert [turn.query for turn in history.earlier] == (
        [f"Can I send back item {k}?" for k in range(n - 2 - conversations.SUMMARY_TURNS, n - 2)])
    # The last prompt, before item 13 was logged: items 10-12 whole, 0-9 in the summary, the first six gone.
    assert [m.content for m in long[1:-1] if m.role == "user"] == [f"Can I send back item {k}?" for k in (10, 11, 12)]
    summary = long[0].content.split("Earlier in this conversation the customer asked: ")[1]
    assert summary.count("(answered from: Returns)") == conversations.SUMMARY_TURNS
    assert summary.startswith('"Can I send back item 0?"') and '"Can I send back item 9?"' in summary
    assert not any(question in summary for question in asked)


async def test_the_summary_holds_at_most_its_characters_newest_kept(knowledge_index, knowledge):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, TITLED_RETURNS)
    chatbot, channel = make_chatbot(knowledge_index, None, "127.0.0.1:1")
    try:
        for n in range(10):
            question = f"{n:02d} {'Can I send back an item? ' * 5}"[:123]
            [e async for e in chatbot.answer(question, "conv-chars", None)]
    finally:
        await channel.close()
    history = await Conversations(knowledge_index.pool).history("conv-chars", 3)
    # Seven earlier turns, each a line of 150 characters with its entry's title: the newest four
    # fill the 600 exactly (and fit), a fifth would not.
    assert conversations.SUMMARY_CHARS == 600
    assert [len(line) for line in history.summary().split("; ")] == [150] * 4
    assert [turn.query[:2] for turn in history.earlier] == ["03", "04", "05", "06"]
    assert all(turn.answer == "" and turn.sources[0].title == "Returns" for turn in history.earlier)


class CloudModel(RecordingModel):
    """The recording model as one off this machine (a cloud model, a remote server)."""

    leaves_the_machine = True


CONTACT = pb.KnowledgeEntry(
    entry_id="faq-contact", kind=pb.ENTRY_KIND_QA, source="test-kb",
    content="Call our care team on 020 7946 0000 or write to care@shop.example, weekdays 9 to 5.",
    questions=["How can I reach you?", "What is your phone number?", "Can you call me back?"])


async def test_a_model_off_this_machine_never_sees_the_customers_personal_data(knowledge_index, knowledge):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, RETURNS, CONTACT)
    model = CloudModel()
    chatbot, channel = make_chatbot(knowledge_index, model, "127.0.0.1:1")
    try:
        [e async for e in chatbot.answer("Can I send back an item? I'm jane.doe@example.com, I paid with "
                                         "card 4111 1111 1111 1111", "conv-9", None)]
        [e async for e in chatbot.answer("What is your phone number? Mine is +44 7700 900123, it's about order "
                                         "AF-203914", "conv-9", None)]
    finally:
        await channel.close()
    sent = [m.content for prompt in model.prompts for m in prompt]
    for planted in ("jane.doe@example.com", "4111 1111 1111 1111", "7700 900123", "AF-203914"):
        assert not any(planted in text for text in sent), planted
    assert len(model.prompts) == 2
    last = model.prompts[-1]
    # The earlier turn is masked too; the question still reads, and the brand's own contact details stay.
    assert "[email]" in last[1].content and "[card number]" in last[1].content
    assert last[-1].content.endswith("Question: What is your phone number? Mine is [phone number], it's about "
                                     "order [order number]")
    assert "020 7946 0000" in last[-1].content and "care@shop.example" in last[-1].content


async def test_the_summary_of_older_turns_is_masked_for_a_model_off_this_machine(knowledge_index, knowledge):
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    await upsert(knowledge, TITLED_RETURNS)
    model = CloudModel()
    chatbot, channel = make_chatbot(knowledge_index, model, "127.0.0.1:1")
    try:
        for question in ["Can I send back an item? I'm jane.doe@example.com", "How do I return something?",
                         "What is your return policy?", "Can I send back an item?", "How do I return something?"]:
            [e async for e in chatbot.answer(question, "conv-masked", None)]
    finally:
        await channel.close()
    system = model.prompts[-1][0].content
    assert '"Can I send back an item? I\'m [email]" (answered from: Returns)' in system
    assert not any("jane.doe@example.com" in m.content for prompt in model.prompts for m in prompt)


CARD = "4111 1111 1111 1111"  # planted in one customer's question: it must reach no other customer's prompt


async def test_only_the_client_a_conversation_was_issued_to_can_continue_it(chat, knowledge, monkeypatch):
    stub, chatbot = chat
    await upsert(knowledge, RETURNS, SHIPPING)
    model = RecordingModel()
    monkeypatch.setattr(chatbot, "answerer", generating(chatbot, model))
    theirs = await stub.Chat(pb.ChatRequest(query=f"What is your return policy? I paid with card {CARD}."))
    assert theirs.grounded and theirs.conversation_token and CARD in str(model.prompts[0])
    mine = await stub.Chat(pb.ChatRequest(query="How long does delivery take?"))
    assert mine.conversation_token != theirs.conversation_token
    follow_up = "And when will my parcel arrive?"
    for token in ("", mine.conversation_token):  # none, or a token of another conversation
        await expect_status(stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=theirs.conversation_id,
                                                     conversation_token=token)),
                            grpc.StatusCode.PERMISSION_DENIED, "belongs to another client; start a new one")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream(stub, follow_up, conversation_id=theirs.conversation_id, conversation_token=token)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Nor through a request id replayed from their conversation into one's own.
    await expect_status(stub.Chat(pb.ChatRequest(
        query=f"What is your return policy? I paid with card {CARD}.", request_id=theirs.interaction_id,
        conversation_id=mine.conversation_id, conversation_token=mine.conversation_token)),
        grpc.StatusCode.PERMISSION_DENIED)
    assert len(model.prompts) == 2 and CARD not in str(model.prompts[1])  # the refused calls asked no model
    # The owner continues, with their earlier turn in the prompt.
    again = await stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=theirs.conversation_id,
                                           conversation_token=theirs.conversation_token))
    assert again.conversation_id == theirs.conversation_id and CARD in str(model.prompts[-1])
    streamed = await stream(stub, follow_up, conversation_id=theirs.conversation_id,
                            conversation_token=theirs.conversation_token)
    assert streamed[0].start.conversation_token == theirs.conversation_token and CARD in str(model.prompts[-1])
    assert not any(CARD in str(prompt) for prompt in model.prompts[1:2])
    # A conversation id the client chose, with no turns yet, starts that conversation and gets its token.
    chosen = f"client-{uuid.uuid4()}"
    started = await stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=chosen))
    assert started.conversation_id == chosen and started.conversation_token
    await expect_status(stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=chosen)),
                        grpc.StatusCode.PERMISSION_DENIED)
    assert (await stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=chosen,
                                           conversation_token=started.conversation_token))).conversation_id == chosen
    # A retry of a conversation's first turn (the answer was lost on the way) needs no token yet.
    request_id = str(uuid.uuid4())
    first = await stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=f"client-{request_id}",
                                           request_id=request_id))
    retried = await stub.Chat(pb.ChatRequest(query=follow_up, conversation_id=f"client-{request_id}",
                                             request_id=request_id))
    assert retried == first


GROUNDED = "Can I send back a tent I haven't used?"


async def test_a_hit_scoring_exactly_the_threshold_answers(chat, knowledge, knowledge_index, monkeypatch):
    """The threshold is the lowest similarity that still answers: a question
    whose best hit scores exactly MEND_SIMILARITY_THRESHOLD is answered from it."""
    stub, chatbot = chat
    await upsert(knowledge, RETURNS, SHIPPING)
    [best, *_] = await knowledge_index.search(GROUNDED, chatbot.retrieval.k, ["published"], None)
    assert best.entry.entry_id == "faq-returns"
    model = RecordingModel()
    monkeypatch.setattr(chatbot, "answerer", generating(chatbot, model))
    monkeypatch.setattr(chatbot, "retrieval", Retrieval(
        relevance=Relevance(min_score=best.support, per_ln_phrasing=0.0, sure_score=0.0)))
    at = await stub.Chat(pb.ChatRequest(query=GROUNDED))
    assert at.grounded, f"a hit supported exactly at the threshold ({best.support!r}) did not answer"
    assert at.answer == "You can return unused items." and [s.entry_id for s in at.sources] == ["faq-returns"]
    # The least bit above that score, and the same question is not answered from it.
    monkeypatch.setattr(chatbot, "retrieval", Retrieval(
        relevance=Relevance(min_score=math.nextafter(best.support, math.inf), per_ln_phrasing=0.0, sure_score=0.0)))
    above = await stub.Chat(pb.ChatRequest(query=GROUNDED))
    assert not above.grounded and list(above.sources) == [] and "don't know" in above.answer
    assert len(model.prompts) == 1


async def test_an_answer_whose_entry_matches_loosely_says_so_but_is_not_logged_as_from_the_topic(
        chat, knowledge, knowledge_index, monkeypatch, pool):
    """Below the sure score the answer is hedged and `unsure` on both RPCs and
    on a retry, as a pointing-back follow-up is; but the entry was chosen for
    the question itself, so interactions does not mark it (the trainer may still
    edit that entry for it). At the sure score exactly, the answer is plain."""
    stub, chatbot = chat
    monkeypatch.setattr(chatbot, "answerer", Quoting(chatbot.knowledge.embedder, chatbot.persona))
    await upsert(knowledge, RETURNS, SHIPPING)
    [best, *_] = await knowledge_index.search(GROUNDED, chatbot.retrieval.k, ["published"], None)
    assert best.entry.entry_id == "faq-returns"
    monkeypatch.setattr(chatbot, "retrieval", Retrieval(relevance=Relevance(
        min_score=0.0, per_ln_phrasing=0.0, sure_score=math.nextafter(best.support, math.inf), sure_score_apart=2.0)))
    asked = pb.ChatRequest(query=GROUNDED, request_id=str(uuid.uuid4()))
    loose = await stub.Chat(asked)
    assert loose.grounded and loose.unsure and [s.entry_id for s in loose.sources][:1] == ["faq-returns"]
    persona = chatbot.persona
    assert loose.answer == persona.unsure(best.entry.title) + RETURNS.content + persona.or_ask_a_person()
    assert await stub.Chat(asked) == loose  # a retry replays it, mark included
    streamed = [event async for event in stub.ChatStream(pb.ChatStreamRequest(query=GROUNDED))]
    assert streamed[-1].end.unsure and "".join(e.delta.text for e in streamed).startswith("I'm not sure")
    monkeypatch.setattr(chatbot, "retrieval", Retrieval(relevance=Relevance(
        min_score=0.0, per_ln_phrasing=0.0, sure_score=best.support, sure_score_apart=2.0)))
    sure = await stub.Chat(pb.ChatRequest(query=GROUNDED))
    assert sure.grounded and not sure.unsure and sure.answer == RETURNS.content
    logged = dict(await pool.fetch("SELECT interaction_id::text, unsure FROM interactions"))
    assert logged[loose.interaction_id] is False and logged[sure.interaction_id] is False


async def test_a_proposed_fix_does_not_answer_customers_until_it_is_published(chat, knowledge, pool, monkeypatch):
    """A fix the trainer proposed is still under review: even when it is the
    only match, Chat does not answer from it (nor show it as a source); once a
    reviewer publishes it, the same question is answered from it."""
    stub, chatbot = chat
    model = RecordingModel()
    monkeypatch.setattr(chatbot, "answerer", generating(chatbot, model))
    proposed = pb.KnowledgeEntry()
    proposed.CopyFrom(SHIPPING)
    proposed.status = pb.ENTRY_STATUS_PROPOSED
    await upsert(knowledge, proposed)
    question = "When will my parcel arrive?"
    # It is a match, and a strong one: what keeps it out is its status alone.
    [hit] = (await knowledge.SearchKnowledge(pb.SearchKnowledgeRequest(
        query=question, k=3, statuses=[pb.ENTRY_STATUS_PROPOSED]))).hits
    assert hit.entry.entry_id == "faq-shipping" and hit.score > 0.9  # one of its own phrasings

    response = await stub.Chat(pb.ChatRequest(query=question))
    assert not response.grounded, "Chat answered from a PROPOSED entry"
    assert list(response.sources) == [] and "don't know" in response.answer
    assert model.prompts == []  # its text never reached the model either
    assert await pool.fetchval("SELECT sources FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(response.interaction_id)) == []

    await knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id="faq-shipping", status=pb.ENTRY_STATUS_PUBLISHED),
        update_mask=FieldMask(paths=["status"])))
    published = await stub.Chat(pb.ChatRequest(query=question))
    assert published.grounded and [s.entry_id for s in published.sources] == ["faq-shipping"]


async def test_a_chat_is_one_trace_from_the_bot_to_interactions(chat, knowledge, spans):
    """A grounded question, so the `mend.answer` span (where chat text
    would go) exists; with record_text off no span carries the chat's text."""
    stub, chatbot = chat
    assert chatbot.record_text is False
    await upsert(knowledge, RETURNS)
    response = await stub.Chat(pb.ChatRequest(query=GROUNDED))
    assert response.grounded and response.answer
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.name == "/mend.bot.v1.ChatService/Chat" and s.kind.name == "SERVER")
    trace_id = server.context.trace_id
    names = {s.name for s in finished if s.context.trace_id == trace_id}
    assert {"mend.retrieval", "mend.answer",
            "/mend.interactions.v1.InteractionsService/CreateInteraction"} <= names
    create_server = [s for s in finished if s.context.trace_id == trace_id and s.kind.name == "SERVER"
                     and s.name.endswith("/CreateInteraction")]
    assert create_server, "the trace did not continue into the interactions service"
    assert any(s.attributes.get("db.system") == "postgresql" and s.context.trace_id == trace_id for s in finished)
    retrieval = next(s for s in finished if s.name == "mend.retrieval" and s.context.trace_id == trace_id)
    assert retrieval.attributes["mend.retrieval.k"] == 3
    for span in finished:
        attributes = str(dict(span.attributes))
        assert "send back a tent" not in attributes, f"the question leaked into {span.name}"
        assert response.answer not in attributes, f"the answer leaked into {span.name}"


async def test_chat_text_goes_into_the_generate_span_only_when_enabled(chat, knowledge, spans):
    """MEND_TRACE_CHAT_TEXT=true (record_text) puts the question on the
    `mend.answer` span."""
    stub, chatbot = chat
    chatbot.record_text = True
    await upsert(knowledge, RETURNS)
    response = await stub.Chat(pb.ChatRequest(query=GROUNDED))
    assert response.grounded
    generate = next(s for s in spans.get_finished_spans() if s.name == "mend.answer")
    assert generate.attributes["mend.chat.query"] == GROUNDED


async def test_an_exchange_interactions_refuses_is_parked_and_the_rest_are_still_delivered(
        knowledge_index, interactions, interactions_address, pool, caplog):
    """A request id that names an interaction created elsewhere with other
    content is refused (ALREADY_EXISTS) for good: it must not hold up the
    exchanges after it, whose feedback would otherwise be NOT_FOUND."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    taken = uuid.uuid4()
    await interactions.CreateInteraction(logged_exchange("Someone else's question", "Someone else's answer", taken)[0])
    chatbot, channel = make_chatbot(knowledge_index, RecordingModel(), interactions_address)
    try:
        poisoned = logged_exchange("Where is my order 4411?", "It left on Monday.", taken)
        good = [logged_exchange(f"Question {n}?", f"Answer {n}.") for n in range(3)]
        for _, exchange in [poisoned, *good]:  # the poisoned one is the oldest
            await chatbot.outbox.record(exchange)
        assert await chatbot.outbox.pending() == 4
        with caplog.at_level("ERROR", logger="bot.outbox"):
            assert await chatbot.outbox.deliver_pending() == 3
        assert await chatbot.outbox.pending() == 0
        for request, _ in good:
            rated = await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(
                interaction_id=request.interaction.interaction_id, rating=ipb.RATING_LIKE))
            assert rated.interaction.bot_response == request.interaction.bot_response
        parked = await knowledge_index.pool.fetchrow(
            "SELECT delivered_at, failed_at, last_error FROM chat_log WHERE interaction_id = $1", taken)
        assert parked["delivered_at"] is None and parked["failed_at"] is not None
        assert parked["last_error"].startswith("ALREADY_EXISTS")
        # The one stored under that id is still the other one, untouched.
        assert await pool.fetchval("SELECT user_query FROM interactions WHERE interaction_id = $1",
                                   taken) == "Someone else's question"
        [error] = [r for r in caplog.records if r.name == "bot.outbox" and r.levelname == "ERROR"]
        assert error.interaction_id == str(taken) and error.code == "ALREADY_EXISTS"
        # What the record carries (message, arguments and the extra fields), not its
        # timestamps: a float like 1764604411.09 once contained "4411" by chance.
        said = error.getMessage() + repr(error.args) + repr(
            {k: v for k, v in vars(error).items() if k not in _LOG_RECORD_BOOKKEEPING})
        assert "4411" not in said and "Monday" not in said
        # A later pass does not try the parked one again.
        assert await chatbot.outbox.deliver_pending() == 0
    finally:
        await channel.close()


async def test_the_delivery_loop_delivers_what_is_pending_and_prunes_what_is_a_week_old(
        knowledge_index, interactions, interactions_address, caplog):
    """What the bot runs in the background (bot/__main__.py): each pass delivers the pending
    exchanges, says how many, and deletes those delivered or parked more than 7 days ago."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    chatbot, channel = make_chatbot(knowledge_index, RecordingModel(), interactions_address)
    delivery = None
    try:
        old_delivered, old_parked, recent = (logged_exchange(f"Old question {n}?", "An answer.")[1] for n in range(3))
        for exchange in (old_delivered, old_parked, recent):
            await chatbot.outbox.record(exchange)
        await knowledge_index.pool.execute(
            """UPDATE chat_log SET delivered_at = now() - CASE WHEN interaction_id = $1 THEN interval '8 days'
                                                               ELSE interval '6 days' END
               WHERE interaction_id = ANY($2::uuid[])""",
            old_delivered.interaction_id, [old_delivered.interaction_id, recent.interaction_id])
        await knowledge_index.pool.execute("UPDATE chat_log SET failed_at = now() - interval '8 days' "
                                           "WHERE interaction_id = $1", old_parked.interaction_id)
        pending = [logged_exchange(f"Question {n}?", f"Answer {n}.") for n in range(2)]
        for _, exchange in pending:
            await chatbot.outbox.record(exchange)
        with caplog.at_level("INFO", logger="bot.outbox"):
            delivery = asyncio.create_task(chatbot.outbox.run_delivery(interval_s=0.05))
            for _ in range(200):
                left = await knowledge_index.pool.fetchval("SELECT count(*) FROM chat_log")
                if await chatbot.outbox.pending() == 0 and left == 3:
                    break
                await asyncio.sleep(0.05)
        rows = await knowledge_index.pool.fetch("SELECT interaction_id FROM chat_log")
        kept = {row["interaction_id"] for row in rows}
        assert kept == {recent.interaction_id, *(exchange.interaction_id for _, exchange in pending)}
        for request, _ in pending:
            got = await interactions.GetInteraction(ipb.GetInteractionRequest(
                interaction_id=request.interaction.interaction_id))
            assert got.interaction.bot_response == request.interaction.bot_response
        said = [(r.getMessage(), r.count) for r in caplog.records
                if r.name == "bot.outbox" and r.getMessage() == "delivered pending exchanges"]
        assert said == [("delivered pending exchanges", 2)]
    finally:
        if delivery is not None:
            delivery.cancel()
            with pytest.raises(asyncio.CancelledError):
                await delivery
        await channel.close()


async def test_a_full_batch_of_parked_exchanges_does_not_hold_up_newer_ones(
        knowledge_index, interactions, interactions_address, pool):
    """However many exchanges are parked (a whole delivery batch of them, or
    more), an exchange answered later is still delivered by the next pass, so
    its feedback is not NOT_FOUND."""
    await knowledge_index.pool.execute("TRUNCATE chat_log")
    taken = [uuid.uuid4() for _ in range(DELIVERY_BATCH)]
    await pool.execute("INSERT INTO interactions (interaction_id, user_query, bot_response) "
                       "SELECT unnest($1::uuid[]), 'Someone else''s question', 'Someone else''s answer'", taken)
    chatbot, channel = make_chatbot(knowledge_index, RecordingModel(), interactions_address)
    try:
        for n, interaction_id in enumerate(taken):
            _, exchange = logged_exchange(f"Where is my order {n}?", "It left on Monday.", interaction_id)
            await chatbot.outbox.record(exchange)
        assert await chatbot.outbox.deliver_pending() == 0
        assert await knowledge_index.pool.fetchval(
            "SELECT count(*) FROM chat_log WHERE failed_at IS NOT NULL") == DELIVERY_BATCH

        request, newer = logged_exchange("Do you rent tents?", "Yes, for 15 euros a weekend.")
        await chatbot.outbox.record(newer)
        assert await chatbot.outbox.pending() == 1
        assert await chatbot.outbox.deliver_pending() == 1, "the newer exchange was not delivered"
        assert await chatbot.outbox.pending() == 0
        rated = await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(
            interaction_id=request.interaction.interaction_id, rating=ipb.RATING_LIKE))
        assert rated.interaction.user_query == "Do you rent tents?"
    finally:
        await channel.close()


class GatedModel:
    """Answers "answer N" for its Nth call, once the test opens the gate."""

    model_id = "gated"
    leaves_the_machine = False

    def __init__(self) -> None:
        self.calls = 0
        self.entered = [asyncio.Event(), asyncio.Event()]
        self.gate = asyncio.Event()

    async def stream(self, messages, max_tokens):
        self.calls += 1
        self.entered[min(self.calls, 2) - 1].set()
        await self.gate.wait()
        yield f"You can return unused items ({'once' if self.calls == 1 else 'twice'})."


async def test_two_concurrent_calls_with_one_request_id_answer_once(chat, knowledge, knowledge_index, pool,
                                                                    monkeypatch):
    """The second call arrives while the first is still answering: it must not
    answer again, but wait and get the logged answer."""
    stub, chatbot = chat
    await upsert(knowledge, RETURNS)
    model = GatedModel()
    monkeypatch.setattr(chatbot, "answerer", generating(chatbot, model))
    request = pb.ChatRequest(query="Can I send back an item?", request_id=str(uuid.uuid4()))
    first = asyncio.ensure_future(stub.Chat(request))
    await model.entered[0].wait()  # the first call is answering, its answer not yet logged
    missed = asyncio.Event()
    find = chatbot.dedup.find

    async def observed_find(request_id):
        if (stored := await find(request_id)) is None:
            missed.set()
        return stored

    monkeypatch.setattr(chatbot.dedup, "find", observed_find)
    second = asyncio.ensure_future(stub.Chat(request))
    await missed.wait()  # the second call found nothing logged yet
    model.gate.set()
    one, two = await first, await second
    assert one.interaction_id == two.interaction_id == request.request_id
    assert one.answer == two.answer == "You can return unused items (once)." and one == two
    assert model.calls == 1
    assert await chatbot.outbox.pending() == 0
    assert await pool.fetchval("SELECT bot_response FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(request.request_id)) == "You can return unused items (once)."
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM chat_log WHERE interaction_id = $1",
                                               uuid.UUID(request.request_id)) == 1


class BlockingLLM:
    """Stands in for cyllama's LLM inside the real LocalGGUF: yields a first
    piece, then holds the context until released (a slow generation)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def chat(self, messages, config, stream):
        yield "first"
        self.release.wait()
        yield " done"


async def test_the_embedded_model_refuses_at_once_when_its_queue_is_full(chat, knowledge, chat_model, monkeypatch):
    from mendkit.errors import ResourceExhausted
    from mendmodels.chat import local_gguf
    from mendmodels.chat.base import Message

    stub, _ = chat
    await upsert(knowledge, RETURNS)
    llm = BlockingLLM()
    monkeypatch.setattr(chat_model, "_llm", llm)
    messages = [Message("user", "hi")]
    try:
        running = chat_model.stream(messages, 10)
        assert await anext(running) == "first"  # generating, holding the one context
        waiting = [chat_model.stream(messages, 10) for _ in range(local_gguf.MAX_WAITING)]
        queued = [asyncio.ensure_future(anext(stream)) for stream in waiting]
        await asyncio.sleep(0)  # one turn of the loop: each queued call is admitted and waits for the lock
        refused = asyncio.ensure_future(anext(chat_model.stream(messages, 10)))
        await asyncio.sleep(0)  # one turn: admitted (and waiting) or refused at once, not after a wait
        assert refused.done(), "a call beyond the queue waits for the model instead of being refused"
        with pytest.raises(ResourceExhausted, match="the chat model is busy; try again shortly"):
            refused.result()
        # Through the bot, the caller gets a clear status rather than waiting out its deadline.
        await expect_status(stub.Chat(pb.ChatRequest(query="Can I send back an item?")),
                            grpc.StatusCode.RESOURCE_EXHAUSTED, "the chat model is busy")
    finally:
        llm.release.set()
    assert [piece async for piece in running] == [" done"]
    for stream_, first in zip(waiting, queued, strict=True):
        assert await first == "first"
        assert [piece async for piece in stream_] == [" done"]
    # Once the queue has drained, the model takes new work again.
    assert [piece async for piece in chat_model.stream(messages, 10)] == ["first", " done"]


async def test_a_request_id_another_replica_is_answering_waits_for_its_logged_answer(
        knowledge_index, knowledge, interactions_address, monkeypatch):
    """Two bot processes (here two Chatbots, no shared memory) on one database:
    the second waits on the first's claim, then replays the logged answer."""
    await knowledge_index.pool.execute("TRUNCATE chat_log, chat_claims")
    await upsert(knowledge, RETURNS)
    model = GatedModel()
    one, channel_one = make_chatbot(knowledge_index, model, interactions_address)
    two, channel_two = make_chatbot(knowledge_index, model, interactions_address)
    refused = asyncio.Event()
    claim = two.dedup.claim

    async def observed_claim(request_id):
        if not (claimed := await claim(request_id)):
            refused.set()
        return claimed

    monkeypatch.setattr(two.dedup, "claim", observed_claim)
    request_id = uuid.uuid4()

    async def ask(chatbot) -> list[pb.ChatStreamResponse]:
        return [messages.stream_event(e) async for e in chatbot.answer("Can I send back an item?", "", request_id)]

    try:
        first = asyncio.ensure_future(ask(one))
        await model.entered[0].wait()
        second = asyncio.ensure_future(ask(two))
        # Held back by the other replica's claim (the fix), or answering too (the bug).
        waits = [asyncio.ensure_future(event.wait()) for event in (refused, model.entered[1])]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        model.gate.set()
        answered, replayed = await first, await second
    finally:
        await channel_one.close()
        await channel_two.close()
    assert model.calls == 1
    assert "".join(e.delta.text for e in replayed[1:-1]) == "You can return unused items (once)."
    assert replayed[0].start.interaction_id == answered[0].start.interaction_id == str(request_id)
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM chat_claims") == 0


async def test_a_retry_after_the_answering_process_died_is_answered_within_seconds(
        knowledge_index, knowledge, interactions_address):
    """The claim of a process killed mid-answer is no longer renewed: a retry takes
    it over once the short lease lapses (it once waited out a 5-minute lease)."""
    await knowledge_index.pool.execute("TRUNCATE chat_log, chat_claims")
    await upsert(knowledge, RETURNS)
    request_id, stale = uuid.uuid4(), uuid.uuid4()
    # Its owner stopped renewing a minute ago; another claim was left behind two hours ago.
    await knowledge_index.pool.execute(
        "INSERT INTO chat_claims (request_id, claimed_at) VALUES ($1, now() - interval '1 minute'), "
        "($2, now() - interval '2 hours')", request_id, stale)
    model = GatedModel()
    model.gate.set()
    chatbot, channel = make_chatbot(knowledge_index, model, interactions_address)
    try:
        exchange = await asyncio.wait_for(chatbot.reply("Can I send back an item?", "", request_id), 20)
    finally:
        await channel.close()
    assert exchange.answer == "You can return unused items (once)." and model.calls == 1
    # Claims left behind long ago are pruned; none is left by the answered one.
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM chat_claims") == 0


async def test_a_live_answer_longer_than_the_lease_keeps_its_claim(
        knowledge_index, knowledge, interactions_address, monkeypatch):
    """The owner renews its claim while it answers: another replica asking the
    same request id meanwhile waits and replays, even past the lease."""
    from bot import dedup

    monkeypatch.setattr(dedup, "CLAIM_LEASE_S", 1.0)
    monkeypatch.setattr(dedup, "CLAIM_RENEW_S", 0.2)
    await knowledge_index.pool.execute("TRUNCATE chat_log, chat_claims")
    await upsert(knowledge, RETURNS)
    model = GatedModel()
    one, channel_one = make_chatbot(knowledge_index, model, interactions_address)
    two, channel_two = make_chatbot(knowledge_index, model, interactions_address)
    request_id = uuid.uuid4()
    try:
        first = asyncio.ensure_future(one.reply("Can I send back an item?", "", request_id))
        await model.entered[0].wait()
        second = asyncio.ensure_future(two.reply("Can I send back an item?", "", request_id))
        await asyncio.sleep(2.5)  # two and a half leases
        assert model.calls == 1, "the other replica took over a claim that was still being renewed"
        model.gate.set()
        answered, replayed = await first, await second
    finally:
        await channel_one.close()
        await channel_two.close()
    assert model.calls == 1 and answered.answer == replayed.answer == "You can return unused items (once)."

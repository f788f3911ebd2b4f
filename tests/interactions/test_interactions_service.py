"""InteractionsService over a real grpc.aio channel against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from interactions.__main__ import SERVICE_NAME
from interactions.service import ACCESS, NOT_YOURS, InteractionsService
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit import database as mend_database
from mendkit.callers import CALLER_HEADER, PUBLIC
from mendkit.conversation_tokens import ConversationTokens
from mendkit.credentials import BOT, TRAINER
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration
from tests.support import channel, expect_status, serve

LOG = "mend.interactions.v1.InteractionsService"


def exchange(query: str = "Where is my order?", **fields: object) -> pb.Interaction:
    return pb.Interaction(user_query=query, bot_response=f"About '{query}': here is what I know.", **fields)


async def create(stub, query: str = "Where is my order?", **fields: object) -> pb.Interaction:
    response = await stub.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange(query, **fields)))
    return response.interaction


async def create_exact(stub, query: str, answer: str, **fields: object) -> pb.Interaction:
    request = pb.CreateInteractionRequest(interaction=pb.Interaction(user_query=query, bot_response=answer, **fields))
    return (await stub.CreateInteraction(request)).interaction


# --- create and get ---------------------------------------------------------


async def test_create_stores_every_field_and_get_returns_it(interactions, pool):
    chosen = str(uuid.uuid4())
    before = await pool.fetchval("SELECT clock_timestamp()")
    created = await create(
        interactions,
        "How do I return shoes?",
        interaction_id=chosen,
        conversation_id="conv-1",
        sources=[pb.KnowledgeSource(entry_id="kb-returns", title="Returns", score=0.83)],
        generation=pb.GenerationFacts(model="qwen", input_tokens=120, output_tokens=40, retrieval_ms=7,
                                      time_to_first_token_ms=300, total_ms=900),
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )
    assert created.interaction_id == chosen
    assert created.feedback == 0 and not created.processed_for_training
    # Stamped by the database when stored, between two readings of its clock.
    after = await pool.fetchval("SELECT clock_timestamp()")
    assert before <= created.timestamp.ToDatetime(UTC) <= after

    got = (await interactions.GetInteraction(pb.GetInteractionRequest(interaction_id=chosen))).interaction
    assert got == created
    assert got.sources[0].entry_id == "kb-returns" and got.sources[0].score == pytest.approx(0.83)
    assert got.generation.time_to_first_token_ms == 300 and got.generation.model == "qwen"
    assert got.trace_id == "0af7651916cd43dd8448eb211c80319c"


async def test_create_without_id_generates_one(interactions):
    created = await create(interactions)
    assert uuid.UUID(created.interaction_id)


async def test_create_is_idempotent_for_a_retried_request(interactions, pool):
    chosen = str(uuid.uuid4())
    first = await create(interactions, "Retry me", interaction_id=chosen)
    again = await create(interactions, "Retry me", interaction_id=chosen)
    assert again == first
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 1


async def test_create_with_a_reused_id_and_other_content_is_already_exists(interactions):
    chosen = str(uuid.uuid4())
    await create(interactions, "First question", interaction_id=chosen)
    await expect_status(
        create(interactions, "A different question", interaction_id=chosen), grpc.StatusCode.ALREADY_EXISTS, chosen
    )


async def test_a_reused_id_with_other_sources_or_generation_facts_is_already_exists(interactions):
    chosen = str(uuid.uuid4())
    source = pb.KnowledgeSource(entry_id="faq-returns", title="Returns", score=0.71)
    facts = pb.GenerationFacts(model="m", input_tokens=10, output_tokens=20, total_ms=300)
    first = await create(interactions, "Same words", interaction_id=chosen, sources=[source], generation=facts)
    # A retry is the same exchange even from another trace.
    again = await create(interactions, "Same words", interaction_id=chosen, sources=[source], generation=facts,
                         trace_id="ab" * 16)
    assert again == first
    other_source = pb.KnowledgeSource(entry_id="faq-shipping", title="Shipping", score=0.71)
    for changed in ({"sources": [other_source], "generation": facts},
                    {"sources": [source], "generation": pb.GenerationFacts(model="m", input_tokens=11,
                                                                            output_tokens=20, total_ms=300)},
                    {"sources": [], "generation": facts}):
        await expect_status(create(interactions, "Same words", interaction_id=chosen, **changed),
                            grpc.StatusCode.ALREADY_EXISTS, chosen)


async def test_an_answer_the_bot_was_not_sure_of_is_stored_as_such_and_a_reuse_must_agree(interactions):
    """`unsure` (a hedged follow-up) is what the trainer reads to leave its entry's answer alone."""
    chosen = str(uuid.uuid4())
    hedged = await create(interactions, "and what does that cost?", interaction_id=chosen, unsure=True)
    got = (await interactions.GetInteraction(pb.GetInteractionRequest(interaction_id=chosen))).interaction
    assert hedged.unsure and got.unsure and got == hedged
    assert not (await create(interactions, "How do I return something?")).unsure
    assert await create(interactions, "and what does that cost?", interaction_id=chosen, unsure=True) == hedged
    await expect_status(create(interactions, "and what does that cost?", interaction_id=chosen),
                        grpc.StatusCode.ALREADY_EXISTS, chosen)


async def test_a_reused_id_with_another_question_but_the_same_answer_is_already_exists(interactions):
    """A client that reuses an id for a new question must hear so, even when the
    answer text happens to be the same ("I don't know" answers many questions):
    it must not get the earlier question's row back as if its own were stored."""
    chosen = str(uuid.uuid4())
    answer = "I'm sorry, I don't know the answer to that."
    first = await create_exact(interactions, "Do you rent tents?", answer, interaction_id=chosen)
    await expect_status(create_exact(interactions, "Do you sell gift cards?", answer, interaction_id=chosen),
                        grpc.StatusCode.ALREADY_EXISTS, chosen)
    got = (await interactions.GetInteraction(pb.GetInteractionRequest(interaction_id=chosen))).interaction
    assert got == first and got.user_query == "Do you rent tents?"


async def test_concurrent_retries_of_one_create_store_one_row(interactions, pool):
    chosen = str(uuid.uuid4())
    results = await asyncio.gather(*(create(interactions, "Same", interaction_id=chosen) for _ in range(8)))
    assert {r.interaction_id for r in results} == {chosen}
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 1


async def test_trace_id_defaults_to_the_request_trace(interactions, spans):
    spans.clear()
    created = await create(interactions)
    (client,) = [s for s in spans.get_finished_spans()
                 if s.kind.name == "CLIENT" and s.name.endswith("/CreateInteraction")]
    assert created.trace_id == format(client.context.trace_id, "032x")


# --- feedback ---------------------------------------------------------------


async def test_feedback_is_stored_as_plus_and_minus_one(interactions, pool):
    liked, disliked = await create(interactions, "a"), await create(interactions, "b")
    await interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=liked.interaction_id,
                                                               rating=pb.RATING_LIKE))
    response = await interactions.SubmitFeedback(
        pb.SubmitFeedbackRequest(
            interaction_id=disliked.interaction_id, rating=pb.RATING_DISLIKE,
            reason=pb.FEEDBACK_REASON_INCORRECT, comment="Wrong store hours",
        )
    )
    assert response.interaction.feedback == -1
    assert response.interaction.feedback_reason == pb.FEEDBACK_REASON_INCORRECT
    assert response.interaction.feedback_comment == "Wrong store hours"
    assert response.interaction.HasField("feedback_time")
    rows = dict(await pool.fetch("SELECT interaction_id::text, feedback FROM interactions"))
    assert rows == {liked.interaction_id: 1, disliked.interaction_id: -1}


async def test_a_second_vote_replaces_the_first(interactions, pool):
    created = await create(interactions)
    await interactions.SubmitFeedback(
        pb.SubmitFeedbackRequest(interaction_id=created.interaction_id, rating=pb.RATING_DISLIKE,
                                 reason=pb.FEEDBACK_REASON_UNCLEAR, comment="huh?")
    )
    second = await interactions.SubmitFeedback(
        pb.SubmitFeedbackRequest(interaction_id=created.interaction_id, rating=pb.RATING_LIKE)
    )
    assert second.interaction.feedback == 1
    assert second.interaction.feedback_reason == pb.FEEDBACK_REASON_UNSPECIFIED
    assert second.interaction.feedback_comment == ""
    row = await pool.fetchrow("SELECT feedback, feedback_reason FROM interactions")
    assert (row["feedback"], row["feedback_reason"]) == (1, None)


async def test_feedback_on_a_missing_interaction_is_not_found(interactions):
    missing = str(uuid.uuid4())
    await expect_status(
        interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=missing, rating=pb.RATING_LIKE)),
        grpc.StatusCode.NOT_FOUND, missing,
    )


# --- mark processed ---------------------------------------------------------


# --- votes from the public gateway ---------------------------------------------------

TOKENS = ConversationTokens(b"tests-conversation-secret")
AS_PUBLIC = ((CALLER_HEADER, PUBLIC),)  # what Envoy's public listener sets on every request it forwards
CARD = "4111 1111 1111 1111"


@pytest.fixture
async def voting_address(pool, interactions) -> AsyncIterator[str]:
    """The service as deployed: checking votes with the bot's conversation tokens."""
    servicer = InteractionsService(pool, PageTokens(b"tests-page-token-secret"), TOKENS)
    running = await serve(Registration(servicer, pb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME,
                                       ACCESS))
    yield f"127.0.0.1:{running.port}"
    await running.stop(0)


@pytest.fixture
async def voting(voting_address) -> AsyncIterator[pb_grpc.InteractionsServiceStub]:
    """A stub of that service with the admin token."""
    async with channel(voting_address) as admin:
        yield pb_grpc.InteractionsServiceStub(admin)


async def test_a_public_vote_needs_the_token_of_the_rated_conversation(voting, pool):
    theirs = await create(voting, f"My card {CARD} was charged twice", conversation_id="conv-theirs")
    mine = await create(voting, "Where is my order?", conversation_id="conv-mine")
    refusals = set()
    for interaction_id, token in [(theirs.interaction_id, ""), (theirs.interaction_id, TOKENS.issue("conv-mine")),
                                  (theirs.interaction_id, ConversationTokens.random().issue("conv-theirs")),
                                  (str(uuid.uuid4()), TOKENS.issue("conv-mine")), (str(uuid.uuid4()), "")]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await voting.SubmitFeedback(pb.SubmitFeedbackRequest(
                interaction_id=interaction_id, rating=pb.RATING_DISLIKE, conversation_token=token), metadata=AS_PUBLIC)
        refusals.add((refused.value.code(), refused.value.details()))
        assert CARD not in str(refused.value.trailing_metadata()) + str(refused.value.initial_metadata())
    # One answer whether the interaction is someone else's or does not exist: ids cannot be probed.
    assert refusals == {(grpc.StatusCode.PERMISSION_DENIED,
                         "a vote needs the conversation_token the bot returned with this answer")}
    assert await pool.fetchval("SELECT feedback FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(theirs.interaction_id)) == 0
    # The owner votes.
    rated = await voting.SubmitFeedback(pb.SubmitFeedbackRequest(
        interaction_id=mine.interaction_id, rating=pb.RATING_LIKE, conversation_token=TOKENS.issue("conv-mine")),
        metadata=AS_PUBLIC)
    assert rated.interaction.feedback == 1 and rated.interaction.user_query == "Where is my order?"
    # An interaction of no conversation cannot be rated publicly; a token that is no token names the field.
    lone = await create(voting, "A one-off question")
    await expect_status(voting.SubmitFeedback(pb.SubmitFeedbackRequest(
        interaction_id=lone.interaction_id, rating=pb.RATING_LIKE, conversation_token=TOKENS.issue("")),
        metadata=AS_PUBLIC), grpc.StatusCode.PERMISSION_DENIED)
    await expect_status(voting.SubmitFeedback(pb.SubmitFeedbackRequest(
        interaction_id=theirs.interaction_id, rating=pb.RATING_LIKE, conversation_token="not a token"),
        metadata=AS_PUBLIC), grpc.StatusCode.INVALID_ARGUMENT, "conversation_token")


async def test_only_an_admin_votes_without_the_conversations_token(voting, voting_address):
    """A vote straight to the service, not through the gateway, is held to the
    conversation's token like a public one, unless an admin casts it: neither
    an anonymous caller nor a service's token rates another customer's answer."""
    created = await create(voting, "Where is my order?", conversation_id="conv-internal")
    vote = pb.SubmitFeedbackRequest(interaction_id=created.interaction_id, rating=pb.RATING_DISLIKE)
    for identity, metadata in ((None, ()), (None, ((CALLER_HEADER, "internal"),)), (BOT, ()), (TRAINER, ())):
        async with channel(voting_address, identity) as other:
            await expect_status(pb_grpc.InteractionsServiceStub(other).SubmitFeedback(vote, metadata=metadata),
                                grpc.StatusCode.PERMISSION_DENIED, NOT_YOURS)
    assert (await voting.GetInteraction(pb.GetInteractionRequest(
        interaction_id=created.interaction_id))).interaction.feedback == 0
    async with channel(voting_address, None) as anonymous:
        rated = await pb_grpc.InteractionsServiceStub(anonymous).SubmitFeedback(pb.SubmitFeedbackRequest(
            interaction_id=created.interaction_id, rating=pb.RATING_LIKE,
            conversation_token=TOKENS.issue("conv-internal")))
    assert rated.interaction.feedback == 1
    rated = await voting.SubmitFeedback(vote)
    assert rated.interaction.feedback == -1


async def test_mark_processed_records_outcomes_in_order(interactions):
    a, b, c = [await create(interactions, q) for q in ("a", "b", "c")]
    response = await interactions.MarkProcessed(
        pb.MarkProcessedRequest(
            marks=[
                pb.ProcessedMark(interaction_id=c.interaction_id, outcome=pb.TRAINING_OUTCOME_FIXED,
                                 knowledge_entry_id="kb-1", training_run_id="run-1"),
                pb.ProcessedMark(interaction_id=a.interaction_id, outcome=pb.TRAINING_OUTCOME_COVERED,
                                 training_run_id="run-1"),
                pb.ProcessedMark(interaction_id=b.interaction_id, outcome=pb.TRAINING_OUTCOME_FAILED,
                                 training_run_id="run-1"),
            ]
        )
    )
    got = response.interactions
    assert [i.interaction_id for i in got] == [c.interaction_id, a.interaction_id, b.interaction_id]
    assert got[0].processed_for_training and got[0].training_outcome == pb.TRAINING_OUTCOME_FIXED
    assert got[0].knowledge_entry_id == "kb-1" and got[0].training_run_id == "run-1"
    assert got[0].HasField("processed_time")
    assert got[1].processed_for_training and got[1].training_outcome == pb.TRAINING_OUTCOME_COVERED
    # A failed attempt stays in the trainer's queue.
    assert not got[2].processed_for_training and got[2].training_outcome == pb.TRAINING_OUTCOME_FAILED


async def test_mark_processed_is_all_or_nothing(interactions, pool):
    known = await create(interactions)
    missing = str(uuid.uuid4())
    request = pb.MarkProcessedRequest(
        marks=[
            pb.ProcessedMark(interaction_id=known.interaction_id, outcome=pb.TRAINING_OUTCOME_COVERED),
            pb.ProcessedMark(interaction_id=missing, outcome=pb.TRAINING_OUTCOME_COVERED),
        ]
    )
    await expect_status(interactions.MarkProcessed(request), grpc.StatusCode.NOT_FOUND, missing)
    assert await pool.fetchval("SELECT processed_for_training FROM interactions") is False


async def test_mark_processed_twice_is_harmless_and_rollback_overwrites(interactions):
    created = await create(interactions)
    mark = pb.ProcessedMark(interaction_id=created.interaction_id, outcome=pb.TRAINING_OUTCOME_FIXED,
                            knowledge_entry_id="kb-9")
    await interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[mark]))
    await interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[mark]))
    mark.outcome = pb.TRAINING_OUTCOME_ROLLED_BACK
    final = (await interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[mark]))).interactions[0]
    assert final.training_outcome == pb.TRAINING_OUTCOME_ROLLED_BACK and final.processed_for_training


# --- list: pagination and filters --------------------------------------------


async def list_all(stub, **filters: object) -> tuple[list[pb.Interaction], int]:
    """Every page of a listing; returns the items and the number of pages."""
    items, token, pages = [], "", 0
    while True:
        page = await stub.ListInteractions(pb.ListInteractionsRequest(page_token=token, **filters))
        items.extend(page.interactions)
        pages += 1
        token = page.next_page_token
        if not token:
            return items, pages


async def test_pagination_walks_every_row_once_oldest_first(interactions):
    created = [await create(interactions, f"question {n}") for n in range(23)]
    items, pages = await list_all(interactions, page_size=5)
    assert pages == 5
    assert [i.interaction_id for i in items] == [c.interaction_id for c in created]


async def test_default_page_size_is_fifty(interactions, pool):
    await pool.execute(
        "INSERT INTO interactions (interaction_id, user_query, bot_response) "
        "SELECT gen_random_uuid(), 'q' || n, 'a' FROM generate_series(1, 60) AS n"
    )
    page = await interactions.ListInteractions(pb.ListInteractionsRequest())
    assert len(page.interactions) == 50 and page.next_page_token


async def test_filters_by_feedback_and_processed(interactions):
    liked, disliked, done, unrated = [await create(interactions, q) for q in ("liked", "disliked", "done", "unrated")]
    for item, rating in ((liked, pb.RATING_LIKE), (disliked, pb.RATING_DISLIKE), (done, pb.RATING_DISLIKE)):
        await interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=item.interaction_id, rating=rating))
    await interactions.MarkProcessed(pb.MarkProcessedRequest(
        marks=[pb.ProcessedMark(interaction_id=done.interaction_id, outcome=pb.TRAINING_OUTCOME_COVERED)]))

    async def ids(**filters: object) -> list[str]:
        return [i.user_query for i in (await list_all(interactions, page_size=2, **filters))[0]]

    assert await ids(feedback=pb.FEEDBACK_FILTER_LIKED) == ["liked"]
    assert await ids(feedback=pb.FEEDBACK_FILTER_DISLIKED) == ["disliked", "done"]
    assert await ids(feedback=pb.FEEDBACK_FILTER_UNRATED) == ["unrated"]
    assert await ids(processed_for_training=True) == ["done"]
    assert await ids(processed_for_training=False) == ["liked", "disliked", "unrated"]
    # The trainer's query.
    assert await ids(feedback=pb.FEEDBACK_FILTER_DISLIKED, processed_for_training=False) == ["disliked"]


async def test_filters_by_time_range_and_conversation(interactions, pool):
    old = await create(interactions, "old", conversation_id="c1")
    mid = await create(interactions, "mid", conversation_id="c2")
    new = await create(interactions, "new", conversation_id="c1")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for offset, item in enumerate((old, mid, new)):
        await pool.execute('UPDATE interactions SET "timestamp" = $1 WHERE interaction_id = $2',
                           base + timedelta(days=offset), uuid.UUID(item.interaction_id))

    def ts(days: int) -> Timestamp:
        stamp = Timestamp()
        stamp.FromDatetime(base + timedelta(days=days))
        return stamp

    items, _ = await list_all(interactions, start_time=ts(1))
    assert [i.user_query for i in items] == ["mid", "new"]
    items, _ = await list_all(interactions, end_time=ts(1))
    assert [i.user_query for i in items] == ["old"]
    items, _ = await list_all(interactions, start_time=ts(1), end_time=ts(2))
    assert [i.user_query for i in items] == ["mid"]
    items, _ = await list_all(interactions, conversation_id="c1", page_size=1)
    assert [i.user_query for i in items] == ["old", "new"]


async def test_a_page_token_is_bound_to_its_filters(interactions):
    for n in range(3):
        await create(interactions, f"q{n}", conversation_id="c1")
    page = await interactions.ListInteractions(pb.ListInteractionsRequest(page_size=1, conversation_id="c1"))
    await expect_status(
        interactions.ListInteractions(
            pb.ListInteractionsRequest(page_size=1, conversation_id="c2", page_token=page.next_page_token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT, "page_token",
    )


@asynccontextmanager
async def service_whose_planner_sorts(database_url: str) -> AsyncIterator[pb_grpc.InteractionsServiceStub]:
    """The real InteractionsService on its own server, over PostgreSQL sessions
    that may not read an index in order: every listing is a scan and a sort, the
    plan PostgreSQL picks by itself for a selective filter on a big table."""

    async def no_ordered_index_scans(connection) -> None:
        await connection.execute("SET enable_indexscan = off; SET enable_indexonlyscan = off; "
                                 "SET enable_bitmapscan = off")

    pool = await mend_database.create_pool(database_url, 2, init=no_ordered_index_scans)
    running = await serve(Registration(InteractionsService(pool, PageTokens(b"tests-page-token-secret")),
                                       pb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME, ACCESS))
    try:
        async with channel(f"127.0.0.1:{running.port}") as admin:
            yield pb_grpc.InteractionsServiceStub(admin)
    finally:
        await running.stop(0)
        await pool.close()


async def test_rows_stored_in_one_transaction_are_each_listed_once_across_pages(interactions, pool, database_url):
    """Rows written in one transaction share their timestamp (now() is the
    transaction's start): paging through them, a reader such as the trainer
    must still see every row exactly once, none skipped at a page boundary,
    whichever plan PostgreSQL runs the listing with."""
    before = await create(interactions, "before the batch")
    batch = [uuid.uuid4() for _ in range(60)]
    async with pool.acquire() as connection, connection.transaction():
        await connection.executemany(
            "INSERT INTO interactions (interaction_id, user_query, bot_response, feedback) "
            "VALUES ($1, $2, 'I don''t know.', -1)",
            [(interaction_id, f"batched question {n}") for n, interaction_id in enumerate(batch)])
    after = await create(interactions, "after the batch")
    assert await pool.fetchval('SELECT count(DISTINCT "timestamp") FROM interactions WHERE interaction_id = ANY($1)',
                               batch) == 1
    expected = sorted(str(i) for i in batch)

    async with service_whose_planner_sorts(database_url) as sorting:
        for stub in (interactions, sorting):
            items, pages = await list_all(stub, page_size=7)
            ids = [i.interaction_id for i in items]
            assert len(ids) == 62, f"{62 - len(ids)} of 62 rows were not listed (or listed twice)"
            assert pages == 9
            assert ids[0] == before.interaction_id and ids[-1] == after.interaction_id
            assert sorted(ids[1:-1]) == expected
            # The trainer's own listing (disliked, not yet processed) pages the same way.
            queue, _ = await list_all(stub, page_size=7, feedback=pb.FEEDBACK_FILTER_DISLIKED,
                                      processed_for_training=False)
            assert sorted(i.interaction_id for i in queue) == expected


@pytest.mark.parametrize("replayed_with", [{"processed_for_training": True}, {}])
async def test_a_page_token_is_bound_to_the_processed_filter(interactions, replayed_with):
    """The trainer pages through unprocessed interactions; its token replayed
    with another processed filter (or none) is refused, not followed into a
    listing it was never issued for."""
    for n in range(3):
        await create(interactions, f"q{n}")
    page = await interactions.ListInteractions(pb.ListInteractionsRequest(page_size=1, processed_for_training=False))
    assert page.next_page_token
    await expect_status(
        interactions.ListInteractions(
            pb.ListInteractionsRequest(page_size=1, page_token=page.next_page_token, **replayed_with)
        ),
        grpc.StatusCode.INVALID_ARGUMENT, "page_token",
    )
    # With the filter it was issued for, the token goes on.
    following = await interactions.ListInteractions(
        pb.ListInteractionsRequest(page_size=1, processed_for_training=False, page_token=page.next_page_token))
    assert [i.user_query for i in following.interactions] == ["q1"]


async def test_a_tampered_page_token_is_rejected(interactions):
    for n in range(3):
        await create(interactions, f"q{n}")
    token = (await interactions.ListInteractions(pb.ListInteractionsRequest(page_size=1))).next_page_token
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token[:10], "not a token", token + "x"):
        await expect_status(
            interactions.ListInteractions(pb.ListInteractionsRequest(page_size=1, page_token=bad)),
            grpc.StatusCode.INVALID_ARGUMENT, "page_token",
        )


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("interaction", "field"),
    [
        (pb.Interaction(user_query="", bot_response="a"), "interaction.user_query"),
        (pb.Interaction(user_query="   ", bot_response="a"), "interaction.user_query"),
        (pb.Interaction(user_query="q", bot_response=""), "interaction.bot_response"),
        (pb.Interaction(user_query="q" * 4001, bot_response="a"), "interaction.user_query"),
        (pb.Interaction(user_query="q", bot_response="a" * 32001), "interaction.bot_response"),
        (pb.Interaction(user_query="nul\x00byte", bot_response="a"), "interaction.user_query"),
        (pb.Interaction(interaction_id="not-a-uuid", user_query="q", bot_response="a"), "interaction.interaction_id"),
        (pb.Interaction(user_query="q", bot_response="a", trace_id="xyz"), "interaction.trace_id"),
        (pb.Interaction(user_query="q", bot_response="a", conversation_id="c" * 129), "interaction.conversation_id"),
        (pb.Interaction(user_query="q", bot_response="a",
                        sources=[pb.KnowledgeSource(entry_id="")]), "interaction.sources[0].entry_id"),
        (pb.Interaction(user_query="q", bot_response="a",
                        sources=[pb.KnowledgeSource(entry_id="x")] * 21), "interaction.sources"),
        (pb.Interaction(user_query="q", bot_response="a",
                        sources=[pb.KnowledgeSource(entry_id="x", score=float("nan"))]),
         "interaction.sources[0].score"),
    ],
)
async def test_create_rejects_bad_fields_naming_them(interactions, pool, interaction, field):
    await expect_status(
        interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=interaction)),
        grpc.StatusCode.INVALID_ARGUMENT, field,
    )
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 0


async def test_create_without_an_interaction_is_invalid(interactions):
    await expect_status(interactions.CreateInteraction(pb.CreateInteractionRequest()),
                        grpc.StatusCode.INVALID_ARGUMENT, "interaction")


async def test_get_unknown_and_malformed_ids(interactions):
    missing = str(uuid.uuid4())
    await expect_status(interactions.GetInteraction(pb.GetInteractionRequest(interaction_id=missing)),
                        grpc.StatusCode.NOT_FOUND, missing)
    await expect_status(interactions.GetInteraction(pb.GetInteractionRequest(interaction_id="42")),
                        grpc.StatusCode.INVALID_ARGUMENT, "interaction_id")
    await expect_status(interactions.GetInteraction(pb.GetInteractionRequest()),
                        grpc.StatusCode.INVALID_ARGUMENT, "interaction_id")


@pytest.mark.parametrize("size", [-1, 1001])
async def test_page_size_out_of_range(interactions, size):
    await expect_status(interactions.ListInteractions(pb.ListInteractionsRequest(page_size=size)),
                        grpc.StatusCode.INVALID_ARGUMENT, "page_size")


async def test_reversed_time_range_is_invalid(interactions):
    later, earlier = Timestamp(seconds=2_000_000_000), Timestamp(seconds=1_000_000_000)
    await expect_status(
        interactions.ListInteractions(pb.ListInteractionsRequest(start_time=later, end_time=earlier)),
        grpc.StatusCode.INVALID_ARGUMENT, "end_time",
    )


@pytest.mark.parametrize(("field", "value"), [
    ("start_time", Timestamp(seconds=10**12)),
    ("start_time", Timestamp(seconds=-10**12)),
    ("end_time", Timestamp(seconds=1, nanos=-1)),
])
async def test_a_timestamp_protobuf_cannot_convert_is_invalid_argument(interactions, field, value):
    await expect_status(interactions.ListInteractions(pb.ListInteractionsRequest(**{field: value})),
                        grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_unknown_enum_values_are_invalid(interactions):
    created = await create(interactions)
    await expect_status(
        interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=created.interaction_id, rating=9)),
        grpc.StatusCode.INVALID_ARGUMENT, "rating",
    )
    await expect_status(
        interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=created.interaction_id,
                                                             rating=pb.RATING_DISLIKE, reason=42)),
        grpc.StatusCode.INVALID_ARGUMENT, "reason",
    )
    await expect_status(interactions.ListInteractions(pb.ListInteractionsRequest(feedback=17)),
                        grpc.StatusCode.INVALID_ARGUMENT, "feedback")
    await expect_status(
        interactions.MarkProcessed(pb.MarkProcessedRequest(
            marks=[pb.ProcessedMark(interaction_id=created.interaction_id, outcome=99)])),
        grpc.StatusCode.INVALID_ARGUMENT, "marks[0].outcome",
    )


async def test_feedback_without_a_rating_and_oversized_comment(interactions):
    created = await create(interactions)
    await expect_status(
        interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=created.interaction_id)),
        grpc.StatusCode.INVALID_ARGUMENT, "rating",
    )
    await expect_status(
        interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=created.interaction_id,
                                                             rating=pb.RATING_DISLIKE, comment="x" * 2001)),
        grpc.StatusCode.INVALID_ARGUMENT, "comment",
    )


async def test_mark_processed_batch_checks(interactions):
    created = await create(interactions)
    await expect_status(interactions.MarkProcessed(pb.MarkProcessedRequest()),
                        grpc.StatusCode.INVALID_ARGUMENT, "marks")
    twice = pb.ProcessedMark(interaction_id=created.interaction_id, outcome=pb.TRAINING_OUTCOME_COVERED)
    await expect_status(interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[twice, twice])),
                        grpc.StatusCode.INVALID_ARGUMENT, "marks[1].interaction_id")
    await expect_status(
        interactions.MarkProcessed(pb.MarkProcessedRequest(
            marks=[pb.ProcessedMark(interaction_id=created.interaction_id)])),
        grpc.StatusCode.INVALID_ARGUMENT, "marks[0].outcome",
    )

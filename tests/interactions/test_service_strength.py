"""What InteractionsService promises at its edges, each pinned where the mutation
run (scripts/mutate, docs/testing.md) found a change of it that no test noticed:
field names first in every INVALID_ARGUMENT, the exact limits, the clamping of
generation facts, trace ids, page tokens bound to the time range, paging whatever
the server's time zone."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from interactions.service import InteractionsService
from mend.interactions.v1 import interactions_service_pb2 as pb
from mendkit.page_tokens import PageTokens
from tests.support import expect_status

INT4_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1


def exchange(query: str = "Where is my order?", **fields: object) -> pb.Interaction:
    return pb.Interaction(user_query=query, bot_response=f"About '{query}': here is what I know.", **fields)


async def create(stub, query: str = "Where is my order?", **fields: object) -> pb.Interaction:
    response = await stub.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange(query, **fields)))
    return response.interaction


async def invalid(call, message: str) -> None:
    """INVALID_ARGUMENT whose message starts with `message` (the field's path, then what is wrong)."""
    details = await expect_status(call, grpc.StatusCode.INVALID_ARGUMENT)
    assert details.startswith(message), details


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


# --- every refusal names its field first --------------------------------------------


async def test_each_refused_field_is_named_first_in_the_message(interactions):
    created = await create(interactions)
    rated = created.interaction_id
    await invalid(interactions.CreateInteraction(pb.CreateInteractionRequest()), "interaction: is required")
    await invalid(interactions.GetInteraction(pb.GetInteractionRequest(interaction_id="42")), "interaction_id: ")
    await invalid(interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id="42")), "interaction_id: ")
    await invalid(interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=rated)), "rating: ")
    await invalid(interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=rated, rating=pb.RATING_LIKE,
                                                                       reason=42)), "reason: ")
    await invalid(interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=rated, rating=pb.RATING_LIKE,
                                                                       comment="x" * 2001)), "comment: ")
    await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(page_size=-1)), "page_size: ")
    await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(feedback=17)), "feedback: ")
    await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(start_time=Timestamp(seconds=10**12))),
                  "start_time: ")
    await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(end_time=Timestamp(seconds=10**12))),
                  "end_time: ")
    await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(conversation_id="c" * 129)),
                  "conversation_id: ")
    await invalid(interactions.MarkProcessed(pb.MarkProcessedRequest()), "marks: must hold 1 to 1000 marks, got 0")
    twice = pb.ProcessedMark(interaction_id=rated, outcome=pb.TRAINING_OUTCOME_COVERED)
    await invalid(interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[twice, twice])),
                  "marks[1].interaction_id: appears twice in the batch")


async def test_a_reversed_or_empty_time_range_says_what_to_change(interactions):
    moment = Timestamp(seconds=1_700_000_000)
    for end in (moment, Timestamp(seconds=1_600_000_000)):
        await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(start_time=moment, end_time=end)),
                      "end_time: must be later than start_time")


async def test_an_end_time_alone_is_a_filter_whatever_its_date(interactions):
    await create(interactions)
    for seconds in (-86_400, 4_000_000_000):  # the day before 1970, and 2096
        listed = await interactions.ListInteractions(pb.ListInteractionsRequest(end_time=Timestamp(seconds=seconds)))
        assert len(listed.interactions) == (0 if seconds < 0 else 1)


async def test_bad_trace_ids_and_scores_are_refused_saying_what_they_must_be(interactions):
    for trace_id in ("g" * 32, "abc123", "0af7651916cd43dd8448eb211c80319c00"):
        await invalid(interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange(
            trace_id=trace_id))), "interaction.trace_id: must be 32 hexadecimal digits (a W3C trace id)")
    await invalid(interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange(
        sources=[pb.KnowledgeSource(entry_id="kb-1", score=float("nan"))]))),
        "interaction.sources[0].score: must be a finite number")
    # Upper-case hex is a trace id too, stored as W3C writes it.
    created = await create(interactions, trace_id="0AF7651916CD43DD8448EB211C80319C")
    assert created.trace_id == "0af7651916cd43dd8448eb211c80319c"


# --- the exact limits --------------------------------------------------------------------


async def test_twenty_sources_with_titles_of_512_characters_are_accepted_and_no_more(interactions):
    sources = [pb.KnowledgeSource(entry_id=f"kb-{n}", title="t" * 512, score=0.5) for n in range(20)]
    created = await create(interactions, sources=sources)
    assert len(created.sources) == 20 and created.sources[0].title == "t" * 512
    await invalid(interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange(
        sources=[pb.KnowledgeSource(entry_id="kb-1", title="t" * 513)]))), "interaction.sources[0].title: ")
    await invalid(interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange(
        sources=[*sources, pb.KnowledgeSource(entry_id="kb-20")]))), "interaction.sources: has 21 entries")


async def test_a_conversation_filter_and_a_run_id_take_128_characters_and_no_more(interactions):
    created = await create(interactions, conversation_id="c" * 128)
    listed = await interactions.ListInteractions(pb.ListInteractionsRequest(conversation_id="c" * 128))
    assert [i.interaction_id for i in listed.interactions] == [created.interaction_id]
    mark = pb.ProcessedMark(interaction_id=created.interaction_id, outcome=pb.TRAINING_OUTCOME_COVERED)
    mark.training_run_id = "r" * 128
    marked = await interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[mark]))
    assert marked.interactions[0].training_run_id == "r" * 128
    mark.training_run_id = "r" * 129
    await invalid(interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[mark])), "marks[0].training_run_id: ")


async def test_a_batch_of_a_thousand_marks_is_taken(interactions):
    """1,000 marks pass the batch check (the trainer's page is 1,000): these name
    interactions that do not exist, so the batch is NOT_FOUND, not INVALID_ARGUMENT."""
    marks = [pb.ProcessedMark(interaction_id=str(uuid.uuid4()), outcome=pb.TRAINING_OUTCOME_COVERED)
             for _ in range(1000)]
    await expect_status(interactions.MarkProcessed(pb.MarkProcessedRequest(marks=marks)), grpc.StatusCode.NOT_FOUND)
    await invalid(interactions.MarkProcessed(pb.MarkProcessedRequest(marks=[*marks, marks[0]])),
                  "marks: must hold 1 to 1000 marks, got 1001")


async def test_generation_facts_beyond_the_column_are_stored_at_its_maximum(interactions):
    """uint32 on the wire, int4 in the table: a figure too big to store is kept
    as the largest one that fits, never refused, never wrapped."""
    facts = pb.GenerationFacts(model="m", input_tokens=UINT32_MAX, output_tokens=UINT32_MAX, retrieval_ms=UINT32_MAX,
                               time_to_first_token_ms=UINT32_MAX, total_ms=UINT32_MAX)
    created = await create(interactions, generation=facts)
    stored = (await interactions.GetInteraction(pb.GetInteractionRequest(
        interaction_id=created.interaction_id))).interaction.generation
    assert (stored.input_tokens, stored.output_tokens, stored.retrieval_ms, stored.time_to_first_token_ms,
            stored.total_ms) == (INT4_MAX,) * 5
    # Just below the column's maximum, a figure is kept as it is.
    exact = pb.GenerationFacts(input_tokens=INT4_MAX - 1, output_tokens=INT4_MAX - 1, retrieval_ms=INT4_MAX - 1,
                               time_to_first_token_ms=INT4_MAX - 1, total_ms=INT4_MAX)
    kept = (await create(interactions, "another", generation=exact)).generation
    assert (kept.input_tokens, kept.output_tokens, kept.retrieval_ms, kept.time_to_first_token_ms,
            kept.total_ms) == (INT4_MAX - 1,) * 4 + (INT4_MAX,)


# --- trace ids -------------------------------------------------------------------------------


async def test_an_interaction_created_outside_any_trace_has_no_trace_id(pool, interactions):
    """Called with no trace around it (no gRPC server span, no caller's id), the
    interaction records none, rather than a made-up id of zeros."""
    servicer = InteractionsService(pool, PageTokens(b"tests-page-token-secret"))
    response = await servicer.CreateInteraction(pb.CreateInteractionRequest(interaction=exchange()), None)
    assert response.interaction.trace_id == ""
    assert await pool.fetchval("SELECT trace_id FROM interactions WHERE interaction_id = $1",
                               uuid.UUID(response.interaction.interaction_id)) == ""


# --- page tokens and paging ---------------------------------------------------------------------


@pytest.mark.parametrize("moved", ["start_time", "end_time"])
async def test_a_page_token_is_bound_to_the_time_range(interactions, moved):
    now = datetime.now(UTC)
    for n in range(3):
        await create(interactions, f"q{n}")
    window = {"start_time": stamp(now - timedelta(hours=1)), "end_time": stamp(now + timedelta(hours=1))}
    page = await interactions.ListInteractions(pb.ListInteractionsRequest(page_size=1, **window))
    assert page.next_page_token
    other = dict(window, **{moved: stamp(now + timedelta(minutes=30) if moved == "end_time"
                                         else now - timedelta(minutes=30))})
    await invalid(interactions.ListInteractions(pb.ListInteractionsRequest(
        page_size=1, page_token=page.next_page_token, **other)),
        "page_token: was issued for different filters; start again without a token")
    following = await interactions.ListInteractions(pb.ListInteractionsRequest(
        page_size=1, page_token=page.next_page_token, **window))
    assert [i.user_query for i in following.interactions] == ["q1"]


@pytest.fixture
def new_york_time():
    """The process's local time zone set to one that is not UTC, as a server's may be."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_paging_walks_every_row_once_whatever_the_servers_time_zone(interactions, new_york_time):
    created = [(await create(interactions, f"q{n}")).interaction_id for n in range(5)]
    seen, token = [], ""
    for _ in range(10):
        page = await interactions.ListInteractions(pb.ListInteractionsRequest(page_size=2, page_token=token))
        seen += [i.interaction_id for i in page.interactions]
        token = page.next_page_token
        if not token:
            break
    assert seen == created

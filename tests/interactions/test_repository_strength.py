"""The interactions repository's answers when its database is gone, and the
batch refusal that names what is missing, each pinned where the mutation run
(scripts/mutate, docs/testing.md) found a change that no test noticed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from interactions import repository
from mend.interactions.v1 import interactions_service_pb2 as pb
from mendkit.errors import NotFound, Unavailable
from tests.support import expect_status

NEW = repository.NewInteraction(
    interaction_id=uuid.uuid4(), conversation_id="", user_query="q", bot_response="a", sources=[], model="",
    input_tokens=0, output_tokens=0, retrieval_ms=0, time_to_first_token_ms=0, total_ms=0, trace_id="")
ANY = repository.ListFilter(feedback=None, processed_for_training=None, start_time=None, end_time=None,
                            conversation_id="")
CALLS = {
    "create": lambda pool: repository.create(pool, NEW),
    "get": lambda pool: repository.get(pool, uuid.uuid4()),
    "conversation_of": lambda pool: repository.conversation_of(pool, uuid.uuid4()),
    "list_page": lambda pool: repository.list_page(pool, ANY, (datetime.now(UTC), uuid.uuid4()), 10),
    "set_feedback": lambda pool: repository.set_feedback(pool, uuid.uuid4(), 1, None, ""),
    "mark_processed": lambda pool: repository.mark_processed(
        pool, [repository.Mark(uuid.uuid4(), "covered", "", "")]),
    # The retention passes (interactions/retention.py).
    "mask_older_than": lambda pool: repository.mask_older_than(pool, datetime.now(UTC), 10, str.upper),
    "delete_older_than": lambda pool: repository.delete_older_than(pool, datetime.now(UTC), 10),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_an_unreachable_database_is_unavailable_and_named(unreachable, call):
    """UNAVAILABLE (callers retry), saying which database: the operator's first clue."""
    with pytest.raises(Unavailable) as raised:
        await CALLS[call](unreachable)
    assert raised.value.message.startswith("the interactions database is unreachable: "), raised.value.message


@pytest.mark.parametrize(("missing", "listed", "more"), [(10, 10, False), (11, 10, True), (1, 1, False)])
async def test_a_batch_naming_missing_interactions_lists_the_first_ten(pool, interactions, missing, listed, more):
    """The refusal names the missing ids, the first ten of them, and says when there are more."""
    ids = [uuid.uuid4() for _ in range(missing)]
    with pytest.raises(NotFound) as raised:
        await repository.mark_processed(pool, [repository.Mark(i, "covered", "", "") for i in ids])
    expected = "interactions do not exist: " + ", ".join(str(i) for i in ids[:listed]) + (" ..." if more else "")
    assert raised.value.message == expected


async def test_the_refusal_reaches_the_caller_with_every_update_undone(interactions, pool):
    created = (await interactions.CreateInteraction(pb.CreateInteractionRequest(
        interaction=pb.Interaction(user_query="q", bot_response="a")))).interaction
    missing = str(uuid.uuid4())
    marks = [pb.ProcessedMark(interaction_id=created.interaction_id, outcome=pb.TRAINING_OUTCOME_COVERED),
             pb.ProcessedMark(interaction_id=missing, outcome=pb.TRAINING_OUTCOME_COVERED)]
    details = await expect_status(interactions.MarkProcessed(pb.MarkProcessedRequest(marks=marks)),
                                  grpc.StatusCode.NOT_FOUND)
    assert details == f"interactions do not exist: {missing}"
    assert not await pool.fetchval("SELECT processed_for_training FROM interactions WHERE interaction_id = $1",
                                   uuid.UUID(created.interaction_id))


async def old_exchanges(interactions, pool, count: int) -> list[uuid.UUID]:
    """`count` exchanges logged a year ago, oldest first."""
    ids = []
    for n in range(count):
        created = (await interactions.CreateInteraction(pb.CreateInteractionRequest(
            interaction=pb.Interaction(user_query=f"question {n}", bot_response="an answer")))).interaction
        ids.append(uuid.UUID(created.interaction_id))
        await pool.execute('UPDATE interactions SET "timestamp" = $2 WHERE interaction_id = $1', ids[-1],
                           datetime.now(UTC) - timedelta(days=365, minutes=count - n))
    return ids


async def test_a_retention_batch_masks_or_deletes_at_most_its_size_in_one_transaction(interactions, pool):
    """Each transaction of a retention pass holds at most a batch of rows (the
    pass repeats until fewer come back): a backlog never becomes one transaction."""
    ids = await old_exchanges(interactions, pool, 5)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert await repository.mask_older_than(pool, cutoff, 2, str.upper) == 2
    masked = await pool.fetch("SELECT interaction_id, user_query FROM interactions WHERE personal_data_masked "
                              "ORDER BY \"timestamp\"")
    assert [(row["interaction_id"], row["user_query"]) for row in masked] == [(ids[0], "QUESTION 0"),
                                                                               (ids[1], "QUESTION 1")]
    assert await repository.delete_older_than(pool, cutoff, 2) == 2
    left = await pool.fetch('SELECT interaction_id FROM interactions ORDER BY "timestamp"')
    assert [row["interaction_id"] for row in left] == ids[2:]

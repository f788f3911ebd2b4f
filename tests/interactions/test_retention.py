"""Retention on the real table: exchanges older than the period have their
personal data masked once (question, answer, comment) or are deleted; newer
ones stay as the customer wrote them; off by default. And the service process
applies it at start from its settings."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from interactions import retention
from interactions.retention import Retention
from mend.interactions.v1 import interactions_service_pb2 as pb
from tests.support import PYTHON, REPO, answered, grpcurl, start, stop

QUESTION = "Where is order AF-203914? Mail jane.doe@example.com"
COMMENT = "my card 4111 1111 1111 1111 was charged twice"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


async def logged(interactions, pool, days_ago: float) -> str:
    """An exchange with planted personal data, logged `days_ago` days before NOW, disliked with a comment."""
    created = (await interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=pb.Interaction(
        user_query=QUESTION, bot_response="I'm sorry, I can't see order AF-203914.")))).interaction
    await interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=created.interaction_id,
                                                               rating=pb.RATING_DISLIKE, comment=COMMENT))
    await pool.execute('UPDATE interactions SET "timestamp" = $2 WHERE interaction_id = $1',
                       uuid.UUID(created.interaction_id), NOW - timedelta(days=days_ago))
    return created.interaction_id


async def stored(interactions, interaction_id: str) -> pb.Interaction:
    return (await interactions.GetInteraction(pb.GetInteractionRequest(interaction_id=interaction_id))).interaction


async def test_exchanges_past_the_period_are_masked_once_and_newer_ones_kept(interactions, pool):
    old, recent = await logged(interactions, pool, 31), await logged(interactions, pool, 29)
    assert await retention.apply(pool, Retention(30, "mask"), now=NOW) == 1
    masked, kept = await stored(interactions, old), await stored(interactions, recent)
    assert masked.user_query == "Where is order [order number]? Mail [email]"
    assert masked.feedback_comment == "my card [card number] was charged twice"
    assert "AF-203914" not in masked.bot_response
    assert masked.feedback == -1  # the rest of the exchange stays
    assert (kept.user_query, kept.feedback_comment) == (QUESTION, COMMENT)
    # Once: the next pass finds nothing left to do.
    assert await retention.apply(pool, Retention(30, "mask"), now=NOW) == 0


async def test_a_vote_on_a_masked_exchange_has_its_comment_masked_at_the_next_pass(interactions, pool):
    old = await logged(interactions, pool, 31)
    await retention.apply(pool, Retention(30, "mask"), now=NOW)
    await interactions.SubmitFeedback(pb.SubmitFeedbackRequest(interaction_id=old, rating=pb.RATING_DISLIKE,
                                                               comment="call me on +44 7700 900123"))
    assert await retention.apply(pool, Retention(30, "mask"), now=NOW) == 1
    assert (await stored(interactions, old)).feedback_comment == "call me on [phone number]"


async def test_a_failing_pass_does_not_end_retention(pool, monkeypatch):
    """A PostgreSQL restart raises errors of many kinds: the next pass still comes."""
    passes = []

    async def flaky(pool, retention_):
        passes.append(len(passes))
        if len(passes) == 1:
            raise asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")
        if len(passes) == 2:
            raise asyncpg.InterfaceError("connection is closed")
        return 0

    monkeypatch.setattr(retention, "apply", flaky)
    task = asyncio.create_task(retention.keep_applying(pool, Retention(30, "mask"), interval_s=0.01))
    for _ in range(200):
        if len(passes) >= 3:
            break
        await asyncio.sleep(0.01)
    assert len(passes) >= 3 and not task.done()
    task.cancel()


async def test_exchanges_past_the_period_can_be_deleted_instead(interactions, pool):
    old, recent = await logged(interactions, pool, 8), await logged(interactions, pool, 6)
    assert await retention.apply(pool, Retention(7, "delete"), now=NOW) == 1
    assert not await pool.fetchval("SELECT count(*) FROM interactions WHERE interaction_id = $1", uuid.UUID(old))
    assert (await stored(interactions, recent)).user_query == QUESTION


async def test_a_backlog_larger_than_a_batch_is_done_in_one_pass(interactions, pool, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 3)
    ids = [await logged(interactions, pool, 400) for _ in range(7)]
    assert await retention.apply(pool, Retention(365, "mask"), now=NOW) == 7
    assert all(["[email]" in (await stored(interactions, i)).user_query for i in ids])


async def test_without_a_period_everything_is_kept(interactions, pool):
    old = await logged(interactions, pool, 3650)
    assert await retention.apply(pool, Retention(0, "delete"), now=NOW) == 0
    assert (await stored(interactions, old)).user_query == QUESTION


@pytest.mark.parametrize(("variable", "value"), [("INTERACTIONS_RETENTION_DAYS", "-1"),
                                                 ("INTERACTIONS_RETENTION_ACTION", "shred")])
async def test_a_bad_retention_setting_stops_the_service_naming_it(database_url, variable, value):
    process = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "interactions", cwd=REPO, env={**os.environ, "DATABASE_URL": database_url, variable: value},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
    assert process.returncode != 0 and variable in output


async def test_the_service_applies_its_retention_when_it_starts(interactions, pool, database_url):
    old = await logged(interactions, pool, 100)
    process, port = await start({"DATABASE_URL": database_url, "INTERACTIONS_RETENTION_DAYS": "90"})
    try:
        for _ in range(100):
            row = await pool.fetchrow("SELECT user_query FROM interactions WHERE interaction_id = $1",
                                      uuid.UUID(old))
            if row["user_query"] != QUESTION:
                break
            await asyncio.sleep(0.1)
        got = answered(await asyncio.to_thread(grpcurl, port, "-d", json.dumps({"interaction_id": old}),
                                               "mend.interactions.v1.InteractionsService/GetInteraction"))
    finally:
        code, logs = await stop(process)
    assert got["interaction"]["user_query"] == "Where is order [order number]? Mail [email]"
    assert code == 0 and any(line.get("message") == "retention applied" for line in logs)

"""The outbox that delivers every answered exchange to InteractionsService.

`record` stores the exchange in the bot's own `chat_log` table before the
answer is returned; `deliver` sends it (CreateInteraction is idempotent on the
id, so a repeat is harmless) and marks it delivered. While interactions is
down, `run_delivery` keeps retrying oldest first; nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import asyncpg
import grpc

from mend.bot.v1 import bot_service_pb2 as bot_pb
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit.database import database_errors

_log = logging.getLogger("bot.chat_log")
DELIVERY_DEADLINE_S = 2.0
DELIVERY_BATCH = 100
RETENTION = "7 days"


@dataclass(frozen=True)
class Turn:
    query: str
    answer: str


class ChatLog:
    def __init__(self, pool: asyncpg.Pool, interactions: pb_grpc.InteractionsServiceStub) -> None:
        self._pool = pool
        self._interactions = interactions

    async def find(self, interaction_id: uuid.UUID) -> tuple[str, bot_pb.ChatResponse] | None:
        """A stored exchange (its query and response), for idempotent retries."""
        async with database_errors("bot"):
            row = await self._pool.fetchrow("SELECT query, response FROM chat_log WHERE interaction_id = $1",
                                            interaction_id)
        return None if row is None else (row["query"], bot_pb.ChatResponse.FromString(row["response"]))

    async def history(self, conversation_id: str, turns: int) -> list[Turn]:
        """The conversation's last `turns` exchanges, oldest first."""
        async with database_errors("bot"):
            rows = await self._pool.fetch(
                """SELECT query, answer FROM chat_log WHERE conversation_id = $1
                   ORDER BY created_at DESC LIMIT $2""", conversation_id, turns)
        return [Turn(row["query"], row["answer"]) for row in reversed(rows)]

    async def record(self, request: pb.CreateInteractionRequest, response: bot_pb.ChatResponse) -> None:
        interaction = request.interaction
        async with database_errors("bot"):
            await self._pool.execute(
                """INSERT INTO chat_log (interaction_id, conversation_id, query, answer, grounded, request, response)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (interaction_id) DO NOTHING""",
                uuid.UUID(interaction.interaction_id), interaction.conversation_id, interaction.user_query,
                interaction.bot_response, response.grounded, request.SerializeToString(), response.SerializeToString(),
            )

    async def deliver(self, interaction_id: uuid.UUID, request: bytes | None = None, *, patient: bool = False) -> bool:
        """Sends one exchange to interactions; True once it is there. The
        customer's path is impatient (fail fast while interactions is down);
        the background pass is patient (waits for the channel to reconnect)."""
        if request is None:
            request = await self._pool.fetchval("SELECT request FROM chat_log WHERE interaction_id = $1",
                                                interaction_id)
        try:
            await self._interactions.CreateInteraction(pb.CreateInteractionRequest.FromString(request),
                                                       timeout=DELIVERY_DEADLINE_S, wait_for_ready=patient)
        except grpc.aio.AioRpcError as error:
            await self._pool.execute(
                "UPDATE chat_log SET attempts = attempts + 1, last_error = $2 WHERE interaction_id = $1",
                interaction_id, f"{error.code().name}: {error.details()}"[:500])
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                _log.error("interactions refused an exchange", extra={"interaction_id": str(interaction_id),
                                                                       "code": error.code().name})
            return False
        await self._pool.execute("UPDATE chat_log SET delivered_at = now() WHERE interaction_id = $1", interaction_id)
        return True

    async def deliver_pending(self) -> int:
        """Delivers undelivered exchanges, oldest first; stops at the first failure."""
        rows = await self._pool.fetch(
            """SELECT interaction_id, request FROM chat_log WHERE delivered_at IS NULL
               ORDER BY created_at LIMIT $1""", DELIVERY_BATCH)
        delivered = 0
        for row in rows:
            if not await self.deliver(row["interaction_id"], row["request"], patient=True):
                break
            delivered += 1
        return delivered

    async def pending(self) -> int:
        return await self._pool.fetchval("SELECT count(*) FROM chat_log WHERE delivered_at IS NULL")

    async def run_delivery(self, interval_s: float = 2.0) -> None:
        """Forever: deliver what is pending, prune what is old; cancel to stop."""
        while True:
            try:
                delivered = await self.deliver_pending()
                if delivered:
                    _log.info("delivered pending exchanges", extra={"count": delivered})
                await self._pool.execute(
                    f"DELETE FROM chat_log WHERE delivered_at < now() - interval '{RETENTION}'")
            except (OSError, asyncpg.PostgresError) as error:
                _log.warning("delivery pass failed", extra={"error": type(error).__name__})
            await asyncio.sleep(interval_s)

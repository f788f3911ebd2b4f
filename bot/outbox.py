"""The outbox that delivers every answered exchange to InteractionsService.

`record` stores the exchange in the bot's own `chat_log` table before the
answer is returned; `deliver` sends it (CreateInteraction is idempotent on the
id, so a repeat is harmless) and marks it delivered. While interactions is
down, `run_delivery` keeps retrying oldest first; nothing acknowledged is lost.
An exchange interactions refuses for good (e.g. ALREADY_EXISTS: its id names an
interaction with other content) is parked (`failed_at`, the refusal in
`last_error`, an error logged) and the exchanges after it are still delivered.

The rows written here also serve replays (`bot.dedup`) and conversation
history (`bot.conversations`); only the outbox writes them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import grpc

from bot import messages
from bot.exchange import Exchange
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit.database import database_errors

_log = logging.getLogger("bot.outbox")
DELIVERY_DEADLINE_S = 2.0
DELIVERY_BATCH = 100
RETENTION = "7 days"
# Codes that say "not now": the pass stops and retries the same exchange later.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED})
# Codes that refuse this exchange itself: retrying it can never succeed, so it is
# parked. Anything else (INTERNAL, PERMISSION_DENIED, UNIMPLEMENTED, ...) is about
# the service rather than the row: that exchange is skipped for this pass and
# retried on the next, never parked.
REFUSED = frozenset({grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT,
                     grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE})


class Outbox:
    def __init__(self, pool: asyncpg.Pool, interactions: pb_grpc.InteractionsServiceAsyncStub) -> None:
        self._pool = pool
        self._interactions = interactions

    async def send(self, exchange: Exchange, trace_id: str = "") -> None:
        """Durable first, then delivered: the customer's answer never waits on
        interactions being up, and the exchange is never lost."""
        request = await self.record(exchange, trace_id)
        await self.deliver(exchange.interaction_id, request)

    async def record(self, exchange: Exchange, trace_id: str = "") -> bytes:
        """Stores the exchange (once: a second record of its id is ignored);
        returns the serialized CreateInteractionRequest to deliver."""
        request = messages.interaction_request(exchange, trace_id).SerializeToString()
        async with database_errors("bot"):
            await self._pool.execute(
                """INSERT INTO chat_log (interaction_id, conversation_id, query, answer, grounded, request, response)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (interaction_id) DO NOTHING""",
                exchange.interaction_id, exchange.conversation_id, exchange.query, exchange.answer, exchange.grounded,
                request, messages.chat_response(exchange).SerializeToString(),
            )
        return request

    async def deliver(self, interaction_id: uuid.UUID, request: bytes, *,
                      patient: bool = False) -> grpc.StatusCode:
        """Sends one exchange to interactions; OK once it is there, otherwise
        the refusal's code (an exchange refused for good is parked). The
        customer's path is impatient (fail fast while interactions is down);
        the background pass is patient (waits for the channel to reconnect)."""
        try:
            await self._interactions.CreateInteraction(pb.CreateInteractionRequest.FromString(request),
                                                       timeout=DELIVERY_DEADLINE_S, wait_for_ready=patient)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            await self._pool.execute(
                """UPDATE chat_log SET attempts = attempts + 1, last_error = $2,
                          failed_at = CASE WHEN $3 THEN now() END
                   WHERE interaction_id = $1""",
                interaction_id, f"{code.name}: {error.details()}"[:500], code in REFUSED)
            if code in REFUSED:
                _log.error("interactions refused an exchange for good; parked it (chat_log.failed_at)",
                           extra={"interaction_id": str(interaction_id), "code": code.name})
            elif code not in TRANSIENT:
                _log.error("interactions failed an exchange; retrying it on the next pass",
                           extra={"interaction_id": str(interaction_id), "code": code.name})
            return code
        await self._pool.execute("UPDATE chat_log SET delivered_at = now() WHERE interaction_id = $1", interaction_id)
        return grpc.StatusCode.OK

    async def deliver_pending(self) -> int:
        """Delivers undelivered exchanges, oldest first. A transient failure
        (interactions down or overloaded) stops the pass; an exchange refused
        for good is parked and the pass goes on to the next one."""
        rows = await self._pool.fetch(
            """SELECT interaction_id, request FROM chat_log WHERE delivered_at IS NULL AND failed_at IS NULL
               ORDER BY created_at LIMIT $1""", DELIVERY_BATCH)
        delivered = 0
        for row in rows:
            code = await self.deliver(row["interaction_id"], row["request"], patient=True)
            if code == grpc.StatusCode.OK:
                delivered += 1
            elif code in TRANSIENT:
                break
        return delivered

    async def pending(self) -> int:
        """Exchanges still to deliver (parked ones are not pending)."""
        return await self._pool.fetchval(
            "SELECT count(*) FROM chat_log WHERE delivered_at IS NULL AND failed_at IS NULL")

    async def run_delivery(self, interval_s: float = 2.0) -> None:
        """Forever: deliver what is pending, prune what is old; cancel to stop."""
        while True:
            try:
                delivered = await self.deliver_pending()
                if delivered:
                    _log.info("delivered pending exchanges", extra={"count": delivered})
                await self._pool.execute(
                    f"""DELETE FROM chat_log WHERE delivered_at < now() - interval '{RETENTION}'
                        OR failed_at < now() - interval '{RETENTION}'""")
            except (OSError, asyncpg.PostgresError) as error:
                _log.warning("delivery pass failed", extra={"error": type(error).__name__})
            await asyncio.sleep(interval_s)

"""A request id is answered once: a retry, even one arriving while the first
call is still answering (in this process or in another replica), gets the
logged answer instead of a second one.

`chat_claims` holds the request ids being answered right now (`claim` /
`release`); the answers themselves are the outbox's rows in `chat_log`, whose
interaction id is the request id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from bot import messages
from bot.exchange import Exchange
from mendkit.database import database_errors

# How often a call waits to see whether another bot replica has finished
# answering the same request id (the same process is woken without polling).
CLAIM_POLL_S = 0.25
# A claim older than this belongs to a process that died while answering.
CLAIM_LEASE = "5 minutes"


class Dedup:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # Request ids this process is answering now, set when the claim goes.
        self._answering: dict[uuid.UUID, asyncio.Event] = {}

    @asynccontextmanager
    async def answering(self, request_id: uuid.UUID) -> AsyncIterator[Exchange | None]:
        """The logged exchange of `request_id`, to replay; or None: then this call
        holds the request id until the block ends, and answers (and logs) it."""
        while True:
            if (logged := await self.find(request_id)) is not None:
                yield logged
                return
            if (answering := self._answering.get(request_id)) is not None:
                await answering.wait()  # this process is answering it: wait, then look again
                continue
            done = self._answering[request_id] = asyncio.Event()
            try:
                claimed = await self.claim(request_id)
            except BaseException:
                self._let_go(request_id, done)
                raise
            if claimed:
                break
            # Another replica is answering it: look again shortly.
            self._let_go(request_id, done)
            await asyncio.sleep(CLAIM_POLL_S)
        try:
            # Logged by a call that let go between our find and our claim?
            yield await self.find(request_id)
        finally:
            # The answer is logged (or was never given) before the claim goes, so
            # a waiter either finds it or answers itself.
            try:
                await asyncio.shield(self.release(request_id))
            finally:
                self._let_go(request_id, done)

    def _let_go(self, request_id: uuid.UUID, done: asyncio.Event) -> None:
        del self._answering[request_id]
        done.set()

    async def find(self, request_id: uuid.UUID) -> Exchange | None:
        async with database_errors("bot"):
            row = await self._pool.fetchrow("SELECT query, response FROM chat_log WHERE interaction_id = $1",
                                            request_id)
        return None if row is None else messages.logged_exchange(row["query"], row["response"])

    async def claim(self, request_id: uuid.UUID) -> bool:
        """True if this call now owns answering `request_id` (no one else is
        answering it, or the one who was has outlived the lease)."""
        async with database_errors("bot"):
            return await self._pool.fetchval(
                f"""INSERT INTO chat_claims (request_id) VALUES ($1)
                    ON CONFLICT (request_id) DO UPDATE SET claimed_at = now()
                    WHERE chat_claims.claimed_at < now() - interval '{CLAIM_LEASE}'
                    RETURNING true""", request_id) is not None

    async def release(self, request_id: uuid.UUID) -> None:
        async with database_errors("bot"):
            await self._pool.execute("DELETE FROM chat_claims WHERE request_id = $1", request_id)

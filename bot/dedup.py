"""A request id is answered once: a retry, even one arriving while the first
call is still answering (in this process or in another replica), gets the
logged answer instead of a second one.

`chat_claims` holds the request ids being answered right now (`claim` /
`release`); the answers themselves are the outbox's rows in `chat_log`, whose
interaction id is the request id. A claim is a short lease that its owner
renews while it answers: a claim nobody renews belongs to a process that died
(killed mid-answer, or cut off from the database), and a retry takes it over
within seconds instead of waiting out a long fixed lease.
"""

from __future__ import annotations

import asyncio
import logging
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
# A claim not renewed for this long belongs to a process that died while answering.
CLAIM_LEASE_S = 15.0
# How often the owner renews its claim while it answers: well inside the lease,
# so a busy database or event loop does not let a live claim lapse.
CLAIM_RENEW_S = 3.0
# Claims left behind (a crash, a database outage mid-answer) are deleted this long after they lapsed.
CLAIM_PRUNE_AFTER_S = 3600.0
_log = logging.getLogger("bot.dedup")


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
        renewing = asyncio.ensure_future(self._renew(request_id))
        try:
            # Logged by a call that let go between our find and our claim?
            yield await self.find(request_id)
        finally:
            renewing.cancel()
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
        answering it, or the one who was stopped renewing its lease)."""
        async with database_errors("bot"):
            await self._pool.execute("DELETE FROM chat_claims WHERE claimed_at < now() - make_interval(secs => $1)",
                                     CLAIM_LEASE_S + CLAIM_PRUNE_AFTER_S)
            return await self._pool.fetchval(
                """INSERT INTO chat_claims (request_id) VALUES ($1)
                   ON CONFLICT (request_id) DO UPDATE SET claimed_at = now()
                   WHERE chat_claims.claimed_at < now() - make_interval(secs => $2)
                   RETURNING true""", request_id, CLAIM_LEASE_S) is not None

    async def _renew(self, request_id: uuid.UUID) -> None:
        """Keeps this call's claim alive while it answers; cancelled when it is done."""
        while True:
            await asyncio.sleep(CLAIM_RENEW_S)
            try:
                await self._pool.execute("UPDATE chat_claims SET claimed_at = now() WHERE request_id = $1",
                                         request_id)
            except (OSError, asyncpg.PostgresError) as error:
                # The next renewal may get through; if none does, the claim lapses and a retry takes over.
                _log.warning("could not renew a claim", extra={"error": type(error).__name__})

    async def release(self, request_id: uuid.UUID) -> None:
        async with database_errors("bot"):
            await self._pool.execute("DELETE FROM chat_claims WHERE request_id = $1", request_id)

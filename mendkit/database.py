"""The asyncpg pool every service that owns tables uses, and how a service
opens its database at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg

from mendkit import migrations
from mendkit.embedded_postgres import database_url_or_embedded
from mendkit.errors import Unavailable
from mendkit.settings import Shared


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: Mend's pooled connections never keep session state
    (only SET LOCAL inside transactions; no LISTEN, session advisory locks or
    cursors), and asyncpg's default reset costs a round trip on every release."""


async def create_pool(
    url: str, max_size: int, init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
) -> asyncpg.Pool:
    """A pool whose connections decode jsonb to Python values."""

    async def setup(connection: asyncpg.Connection) -> None:
        await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        if init is not None:
            await init(connection)

    return await asyncpg.create_pool(url, min_size=1, max_size=max_size, init=setup, reset=_keep_session)


async def reachable(pool: asyncpg.Pool) -> bool:
    """Whether the database answers now: what a service's readiness follows."""
    try:
        return await pool.fetchval("SELECT true", timeout=2) is True
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False


@contextlib.asynccontextmanager
async def database_errors(what: str) -> AsyncIterator[None]:
    """A database that cannot be reached is UNAVAILABLE (callers retry), not INTERNAL."""
    try:
        yield
    except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.TooManyConnectionsError) as error:
        raise Unavailable(f"the {what} database is unreachable: {type(error).__name__}") from error


@contextlib.asynccontextmanager
async def opened(shared: Shared, *, component: str, migrations_dir: Path, pool_size: int,
                 init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None) -> AsyncIterator[asyncpg.Pool]:
    """A service's database at start-up: `shared.database_url`, or the embedded
    server (started, and stopped again on the way out); `component`'s migrations
    applied when `shared.migrate_on_start`; a pool, closed on the way out."""
    url, embedded = await database_url_or_embedded(shared.database_url, shared.home, shared.embedded_pg_port)
    pool = None
    try:
        if shared.migrate_on_start:
            await migrations.apply_at(url, component, migrations_dir)
        pool = await create_pool(url, pool_size, init)
        yield pool
    finally:
        if pool is not None:
            await pool.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)

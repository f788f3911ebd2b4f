"""A scratch PostgreSQL for a benchmark: the embedded server in a temporary
home, the bot's (and optionally the interactions service's) migrations, and a
pool with pgvector registered; all of it closes with the caller's stack."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import asyncpg
from pgvector.asyncpg import register_vector

from bot.__main__ import migrate as migrate_bot
from interactions.__main__ import migrate as migrate_interactions
from mendkit import database
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database


async def scratch_database(stack: contextlib.AsyncExitStack, prefix: str, port: int, pool_size: int,
                           interactions: bool = True) -> asyncpg.Pool:
    home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    server = EmbeddedPostgres(home=home, port=port)
    url = await asyncio.to_thread(server.start)
    stack.callback(server.stop)
    await ensure_database(url)
    if interactions:
        await migrate_interactions(url)
    await migrate_bot(url)
    pool = await database.create_pool(url, pool_size, init=register_vector)
    stack.push_async_callback(pool.close)
    return pool

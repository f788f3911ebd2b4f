"""Versioned migrations against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from interactions.__main__ import MIGRATIONS
from mendkit import migrations
from mendkit.embedded_postgres import ensure_database


@pytest.fixture
async def scratch_db(postgres_server: str):
    name = f"mend_migrations_{os.getpid()}"
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    await ensure_database(url)
    connection = await asyncpg.connect(url)
    yield connection
    await connection.close()
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.close()


async def test_applying_twice_applies_once_and_records_history(scratch_db):
    assert await migrations.apply(scratch_db, "interactions", MIGRATIONS) == [1, 2, 3]
    assert await migrations.apply(scratch_db, "interactions", MIGRATIONS) == []
    history = await scratch_db.fetch("SELECT component, version, name FROM schema_migrations ORDER BY version")
    assert [tuple(r) for r in history] == [("interactions", 1, "create_interactions"),
                                           ("interactions", 2, "retention"), ("interactions", 3, "unsure")]
    assert await scratch_db.fetchval("SELECT to_regclass('interactions') IS NOT NULL")


async def test_concurrent_migrators_apply_each_file_once(scratch_db, postgres_server):
    url = postgres_server.rsplit("/", 1)[0] + "/" + await scratch_db.fetchval("SELECT current_database()")
    connections = [await asyncpg.connect(url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrations.apply(c, "interactions", MIGRATIONS) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    assert sorted(results) == [[], [], [1, 2, 3]]


async def test_a_changed_applied_migration_is_refused(scratch_db, tmp_path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a int);")
    assert await migrations.apply(scratch_db, "demo", tmp_path) == [1]
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a bigint);")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        await migrations.apply(scratch_db, "demo", tmp_path)


async def test_a_failing_migration_leaves_no_trace(scratch_db, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (a int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half (a int); SELECT no_such_function();")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrations.apply(scratch_db, "demo", tmp_path)
    assert await scratch_db.fetchval("SELECT to_regclass('half') IS NULL")
    versions = await scratch_db.fetch("SELECT version FROM schema_migrations WHERE component = 'demo'")
    assert [r["version"] for r in versions] == [1]


def test_badly_named_files_are_refused(tmp_path):
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_description.sql"):
        migrations.load(tmp_path)


async def test_the_trainer_query_uses_the_partial_index(pool):
    # With planner statistics of an empty table PostgreSQL could pick a seq scan;
    # forbid that to check the index matches the query's predicate at all.
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await connection.fetch(
            """EXPLAIN SELECT interaction_id FROM interactions
               WHERE feedback = -1 AND processed_for_training = false
               ORDER BY "timestamp", interaction_id LIMIT 100"""))
    assert "interactions_training_queue" in plan

"""`python -m interactions` as a real process: the embedded default database,
reflection through grpcurl, fail-fast settings and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import asyncpg
import pytest

from tests.support import PYTHON, REPO, free_port, grpcurl, start, stop


async def test_grpcurl_lists_services_and_calls_through_reflection(database_url):
    process, port = await start({"DATABASE_URL": database_url})
    try:
        listed = grpcurl(port, "list")
        assert listed.returncode == 0, listed.stderr
        assert set(listed.stdout.split()) >= {
            "mend.interactions.v1.InteractionsService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        body = json.dumps({"interaction": {"user_query": "Do you ship to Norway?", "bot_response": "Yes."}})
        created = grpcurl(port, "-d", body, "mend.interactions.v1.InteractionsService/CreateInteraction")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["interaction"]["user_query"] == "Do you ship to Norway?"
        health = grpcurl(port, "grpc.health.v1.Health/Check")
        assert json.loads(health.stdout) == {"status": "SERVING"}
        bad = grpcurl(port, "-d", '{"page_size": 5000}', "mend.interactions.v1.InteractionsService/ListInteractions")
        assert "InvalidArgument" in bad.stderr and "page_size" in bad.stderr
    finally:
        code, logs = await stop(process)
    assert code == 0
    messages = [line["message"] for line in logs]
    assert messages[-2:] == ["shutting down", "stopped"]
    # The log carries the RPC and, for the create, the trace it ran under.
    create_logs = [line for line in logs if line.get("rpc.method", "").endswith("/CreateInteraction")]
    assert create_logs and create_logs[0]["rpc.code"] == "OK" and len(create_logs[0]["trace_id"]) == 32
    assert "Norway" not in json.dumps(logs)  # chat text stays out of the logs


async def test_embedded_default_starts_reuses_and_stops_postgres(tmp_path):
    env = {"DATABASE_URL": "", "MEND_HOME": str(tmp_path), "MEND_PG_PORT": str(free_port())}
    process, port = await start(env)
    body = json.dumps({"interaction": {"interaction_id": "5f0c8a52-3c1b-4e0c-9a57-8f5b1d1b7c11",
                                       "user_query": "Remember me", "bot_response": "Noted."}})
    assert grpcurl(port, "-d", body, "mend.interactions.v1.InteractionsService/CreateInteraction").returncode == 0
    code, _ = await stop(process)
    assert code == 0
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "postgres" / "postmaster.pid").exists(), "PostgreSQL was not stopped"

    process, port = await start(env)
    try:
        got = grpcurl(port, "-d", '{"interaction_id": "5f0c8a52-3c1b-4e0c-9a57-8f5b1d1b7c11"}',
                      "mend.interactions.v1.InteractionsService/GetInteraction")
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["interaction"]["user_query"] == "Remember me"
    finally:
        code, _ = await stop(process)
    assert code == 0


async def test_migrate_command_migrates_a_new_database_then_is_idempotent(postgres_server):
    from mendkit.embedded_postgres import ensure_database

    name = f"mend_interactions_migrate_{os.getpid()}"
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    await ensure_database(url)
    env = {**os.environ, "DATABASE_URL": url}

    def migrate() -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-m", "interactions", "migrate"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    first, second = migrate(), migrate()
    admin = await asyncpg.connect(postgres_server)
    try:
        connection = await asyncpg.connect(url)
        try:
            table = await connection.fetchval("SELECT to_regclass('public.interactions')::text")
        finally:
            await connection.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout and "migration(s)" in first.stdout
    assert second.returncode == 0 and "up to date" in second.stdout
    assert table == "interactions"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("INTERACTIONS_PORT", "not-a-port", "INTERACTIONS_PORT must be an integer"),
        ("MEND_PAGE_TOKEN_SECRET", "short", "MEND_PAGE_TOKEN_SECRET must be at least 16 characters"),
        ("MEND_MIGRATE_ON_START", "perhaps", "MEND_MIGRATE_ON_START must be true or false"),
    ],
)
def test_bad_settings_stop_the_process_naming_the_variable(variable, value, message):
    run = subprocess.run([PYTHON, "-m", "interactions"], env={**os.environ, variable: value}, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert message in run.stderr


async def test_a_taken_port_is_reported_plainly(database_url):
    process, port = await start({"DATABASE_URL": database_url})
    try:
        second = await asyncio.to_thread(
            subprocess.run, [PYTHON, "-m", "interactions"], cwd=REPO, capture_output=True, text=True, timeout=60,
            env={**os.environ, "DATABASE_URL": database_url, "INTERACTIONS_PORT": str(port)})
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    finally:
        await stop(process)

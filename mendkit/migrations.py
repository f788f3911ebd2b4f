"""Versioned SQL migrations, applied by an explicit command (and at start-up in
the embedded default).

Each service keeps its files in its own folder as `NNNN_description.sql` and
its history in `schema_migrations` under its own component name, because the
services may share one database but never one another's tables. Applying is
idempotent and safe to run from several processes at once: an advisory lock
serialises them and each file runs in its own transaction together with its
history row. A file changed after it was applied is refused, not re-run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from mendkit.settings import Shared

_log = logging.getLogger("mendkit.migrations")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every migrating process.
_LOCK_KEY = 0x6D656E64  # "mend"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_description.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{directory}: two migrations share a version number")
    return migrations


async def apply(connection: asyncpg.Connection, component: str, directory: Path) -> list[int]:
    """Applies the pending migrations of `component`; returns the versions applied now."""
    migrations = load(directory)
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        rows = await connection.fetch(
            "SELECT version, checksum FROM schema_migrations WHERE component = $1", component
        )
        applied = {row["version"]: row["checksum"] for row in rows}
        done = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"{component} migration {migration.version:04d}_{migration.name} was changed after it was "
                        "applied; add a new migration instead of editing an applied one"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                    component, migration.version, migration.name, migration.checksum,
                )
            _log.info("applied migration",
                      extra={"component": component, "version": migration.version, "migration": migration.name})
            done.append(migration.version)
        return done
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def apply_at(url: str, component: str, directory: Path) -> list[int]:
    """`apply` over a connection of its own to `url`."""
    connection = await asyncpg.connect(url)
    try:
        return await apply(connection, component, directory)
    finally:
        await connection.close()


async def migrate_command(shared: Shared, component: str, directory: Path) -> None:
    """What `python -m <service> migrate` does: migrate (the embedded database
    when no URL is given, stopped again afterwards) and say what was applied."""
    from mendkit.embedded_postgres import database_url_or_embedded

    url, embedded = await database_url_or_embedded(shared.database_url, shared.home, shared.embedded_pg_port)
    try:
        applied = await apply_at(url, component, directory)
        print(f"applied {len(applied)} migration(s): {applied}" if applied else "database is up to date")
    finally:
        if embedded is not None:
            import asyncio

            await asyncio.to_thread(embedded.stop)

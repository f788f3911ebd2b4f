"""`python -m bot [serve|migrate|ingest PATH...]`: runs the bot (today: the
knowledge admin service), applies its migrations, or loads a knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from pgvector.asyncpg import register_vector

from bot.embeddings.local_minilm import LocalMiniLM
from bot.knowledge import Knowledge
from bot.knowledge_service import KnowledgeService
from bot.settings import Settings
from bot.vectorstores.pgvector_store import PgVectorStore
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import database, migrations
from mendkit.embedded_postgres import database_url_or_embedded
from mendkit.logs import setup_logging
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, serve_until_signalled
from mendkit.settings import SettingsError
from mendkit.telemetry import setup_telemetry

KNOWLEDGE_SERVICE = pb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"
_log = logging.getLogger("bot")


async def migrate(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        return await migrations.apply(connection, "bot", MIGRATIONS)
    finally:
        await connection.close()


@asynccontextmanager
async def open_knowledge(settings: Settings) -> AsyncIterator[Knowledge]:
    """The database (embedded unless DATABASE_URL), migrated, and the index on it."""
    url, embedded = await database_url_or_embedded(settings.database_url, settings.home, settings.embedded_pg_port)
    pool = None
    try:
        await migrate(url)
        pool = await database.create_pool(url, settings.pool_max_size, init=register_vector)
        embedder = LocalMiniLM()
        store = PgVectorStore(pool, embedder.model_id, embedder.dimension)
        await store.prepare()
        yield Knowledge(pool, store, embedder)
    finally:
        if pool is not None:
            await pool.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def serve(settings: Settings) -> None:
    async with open_knowledge(settings) as knowledge:
        servicer = KnowledgeService(knowledge, PageTokens(settings.page_token_secret))
        registration = Registration(servicer, pb_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE)
        await serve_until_signalled([registration], settings.address)


async def ingest_command(settings: Settings, paths: list[Path], source: str) -> None:
    from bot.ingest import ingest

    async with open_knowledge(settings) as knowledge:
        count = await ingest(knowledge, paths, source)
    print(f"ingested {count} entries from {', '.join(map(str, paths))} (source {source!r})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", "ingest"])
    parser.add_argument("paths", nargs="*", type=Path, help="for ingest: files or folders (.md, .csv, .jsonl)")
    parser.add_argument("--source", default="sample-kb", help="for ingest: the entries' source label")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"bot: {error}", file=sys.stderr)
        return 2
    setup_logging("bot", settings.log_level)
    shutdown_telemetry = setup_telemetry("bot")
    try:
        if args.command == "serve":
            asyncio.run(serve(settings))
        elif args.command == "ingest":
            if not args.paths:
                parser.error("ingest needs at least one path")
            asyncio.run(ingest_command(settings, args.paths, args.source))
        else:
            async def migrate_only() -> None:
                url, embedded = await database_url_or_embedded(
                    settings.database_url, settings.home, settings.embedded_pg_port)
                try:
                    applied = await migrate(url)
                    print(f"applied {len(applied)} migration(s): {applied}" if applied else "database is up to date")
                finally:
                    if embedded is not None:
                        await asyncio.to_thread(embedded.stop)
            asyncio.run(migrate_only())
    except (OSError, ValueError) as error:
        _log.error(str(error))
        return 1
    finally:
        shutdown_telemetry()
    return 0


if __name__ == "__main__":
    sys.exit(main())

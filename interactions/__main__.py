"""`python -m interactions [serve|migrate]`: runs the interactions service, or
applies its migrations and exits (the explicit command for managed databases)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from interactions.service import InteractionsService
from interactions.settings import Settings
from interactions import repository
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit import migrations
from mendkit.embedded_postgres import database_url_or_embedded
from mendkit.entrypoint import run_command
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, serve_until_signalled

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(url: str) -> list[int]:
    return await migrations.apply_at(url, "interactions", MIGRATIONS)


async def serve(settings: Settings) -> None:
    url, embedded = await database_url_or_embedded(settings.database_url, settings.home, settings.embedded_pg_port)
    try:
        if settings.migrate_on_start:
            await migrate(url)
        pool = await repository.create_pool(url, settings.pool_max_size)
        servicer = InteractionsService(pool, PageTokens(settings.page_token_secret))
        registration = Registration(servicer, pb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME)
        await serve_until_signalled([registration], settings.address, on_shutdown=pool.close)
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def migrate_command(settings: Settings) -> None:
    await migrations.migrate_command(settings.database_url, settings.home, settings.embedded_pg_port,
                                     "interactions", MIGRATIONS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interactions", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    return run_command("interactions", Settings.from_env, serve if args.command == "serve" else migrate_command)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m interactions [serve|migrate]`: runs the interactions service, or
applies its migrations and exits (the explicit command for managed databases)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from functools import partial
from pathlib import Path

from interactions import retention
from interactions.service import ACCESS, InteractionsService
from interactions.settings import Settings
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit import conversation_tokens, database, migrations
from mendkit.credentials import Verifier
from mendkit.entrypoint import run_command
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, serve_until_signalled
from mendkit.settings import MigrateSettings

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(url: str) -> list[int]:
    return await migrations.apply_at(url, "interactions", MIGRATIONS)


async def serve(settings: Settings) -> None:
    async with database.opened(settings.shared, component="interactions", migrations_dir=MIGRATIONS,
                               pool_size=settings.pool_max_size) as pool:
        servicer = InteractionsService(pool, PageTokens(settings.shared.page_token_secret),
                                       conversation_tokens.ConversationTokens(
                                           conversation_tokens.secret_from_env(settings.shared.home)))
        registration = Registration(servicer, pb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME,
                                    ACCESS)
        pruning = asyncio.create_task(retention.keep_applying(pool, settings.retention))
        try:
            await serve_until_signalled([registration], settings.listen.address,
                                        ready=partial(database.reachable, pool), verifier=Verifier.of(settings.callers))
        finally:
            pruning.cancel()  # before the pool closes under it
            with contextlib.suppress(asyncio.CancelledError):
                await pruning


async def migrate_command(settings: MigrateSettings) -> None:
    await migrations.migrate_command(settings.shared, "interactions", MIGRATIONS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interactions", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    if args.command == "migrate":  # reads the database settings alone
        return run_command("interactions", MigrateSettings.from_env, migrate_command)
    return run_command("interactions", Settings.from_env, serve)


if __name__ == "__main__":
    sys.exit(main())

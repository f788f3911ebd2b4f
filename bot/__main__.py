"""`python -m bot [serve|migrate|ingest PATH...|prepare-model]`: runs the bot
(ChatService and the KnowledgeService admin surface), applies its migrations,
loads a knowledge base, or prepares the embedded chat model."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import asynccontextmanager
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from pgvector.asyncpg import register_vector

from bot import adapters
from bot.chat import Chatbot, Retrieval
from bot.chat_log import ChatLog
from bot.chat_service import ChatService
from bot.llm.local_gguf import prepare
from bot.persona import Persona
from mend.interactions.v1 import interactions_service_pb2 as interactions_pb
from mend.interactions.v1 import interactions_service_pb2_grpc as interactions_grpc
from mendkit import clients

from bot.knowledge import Knowledge
from bot.knowledge_service import KnowledgeService
from bot.settings import Settings
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import database, migrations
from mendkit.entrypoint import run_command
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, serve_until_signalled

KNOWLEDGE_SERVICE = pb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
CHAT_SERVICE = pb.DESCRIPTOR.services_by_name["ChatService"].full_name
INTERACTIONS_SERVICE = interactions_pb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(url: str) -> list[int]:
    return await migrations.apply_at(url, "bot", MIGRATIONS)


@asynccontextmanager
async def open_knowledge(settings: Settings, closers: list[adapters.Closer]) -> AsyncIterator[Knowledge]:
    """The database (embedded unless DATABASE_URL), migrated, and the index on it."""
    async with database.opened(settings.database_url, settings.home, settings.embedded_pg_port, component="bot",
                               migrations_dir=MIGRATIONS, pool_size=settings.pool_max_size,
                               init=register_vector) as pool:
        try:
            embedder = adapters.embedder(settings, closers)
            store = adapters.vector_store(settings, pool, embedder, closers)
            await store.prepare()
            yield Knowledge(pool, store, embedder)
        finally:
            for close in reversed(closers):
                await close()


def build_chatbot(settings: Settings, knowledge: Knowledge, interactions: grpc.aio.Channel,
                  closers: list[adapters.Closer]) -> Chatbot:
    model = adapters.chat_model(settings, closers)
    persona = Persona(brand=settings.brand, bot_name=settings.bot_name, tone=settings.tone,
                      handoff=settings.handoff, system_prompt=settings.system_prompt)
    log = ChatLog(knowledge.pool, interactions_grpc.InteractionsServiceStub(interactions))
    retrieval = Retrieval(k=settings.retrieval_k, threshold=settings.similarity_threshold)
    return Chatbot(knowledge, model, log, persona, retrieval, record_text=settings.record_chat_text)


async def serve(settings: Settings) -> None:
    closers: list[adapters.Closer] = []
    async with open_knowledge(settings, closers) as knowledge:
        interactions = clients.insecure_channel(
            settings.interactions_address, [(INTERACTIONS_SERVICE, "CreateInteraction")])
        chatbot = await asyncio.to_thread(build_chatbot, settings, knowledge, interactions, closers)
        delivery = asyncio.create_task(chatbot.log.run_delivery())
        registrations = [
            Registration(ChatService(chatbot), pb_grpc.add_ChatServiceServicer_to_server, CHAT_SERVICE),
            Registration(KnowledgeService(knowledge, PageTokens(settings.page_token_secret)),
                         pb_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE),
        ]
        try:
            await serve_until_signalled(registrations, settings.address)
        finally:
            delivery.cancel()
            await interactions.close()


async def ingest_command(settings: Settings, paths: list[Path], source: str) -> None:
    from bot.ingest import ingest

    async with open_knowledge(settings, []) as knowledge:
        count = await ingest(knowledge, paths, source)
    print(f"ingested {count} entries from {', '.join(map(str, paths))} (source {source!r})")


async def migrate_command(settings: Settings) -> None:
    await migrations.migrate_command(settings.database_url, settings.home, settings.embedded_pg_port, "bot", MIGRATIONS)


async def prepare_command(settings: Settings) -> None:
    path = await asyncio.to_thread(prepare, settings.home / "models")
    print(f"model ready: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", "ingest", "prepare-model"])
    parser.add_argument("paths", nargs="*", type=Path, help="for ingest: files or folders (.md, .csv, .jsonl)")
    parser.add_argument("--source", default="sample-kb", help="for ingest: the entries' source label")
    args = parser.parse_args(argv)
    if args.command == "ingest" and not args.paths:
        parser.error("ingest needs at least one path")
    commands = {
        "serve": serve,
        "migrate": migrate_command,
        "prepare-model": prepare_command,
        "ingest": lambda settings: ingest_command(settings, args.paths, args.source),
    }
    return run_command("bot", Settings.from_env, commands[args.command])


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bot [serve|migrate|ingest PATH...|prepare-model]`: runs the bot
(ChatService and the KnowledgeService admin surface), applies its migrations,
loads a knowledge base, or prepares the embedded chat model."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from bot import chat_service, knowledge_service
from bot.chat import Answerer, Chatbot, Retrieval
from bot.chat_service import ChatService
from bot.conversations import Conversations
from bot.dedup import Dedup
from bot.generating import Generating
from bot.knowledge import Knowledge
from bot.knowledge_service import KnowledgeService
from bot.outbox import Outbox
from bot.persona import Persona
from bot.quoting import Quoting
from bot.relevance import Relevance
from bot.settings import Settings
from bot.vectorstores.select import vector_store
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mend.interactions.v1 import interactions_service_pb2 as interactions_pb
from mend.interactions.v1 import interactions_service_pb2_grpc as interactions_grpc
from mendkit import clients, conversation_tokens, database, migrations
from mendkit.credentials import Verifier
from mendkit.entrypoint import run_command
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, serve_until_signalled
from mendkit.settings import MigrateSettings
from mendmodels import select
from mendmodels.chat.local_gguf import prepare

KNOWLEDGE_SERVICE = pb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
CHAT_SERVICE = pb.DESCRIPTOR.services_by_name["ChatService"].full_name
INTERACTIONS_SERVICE = interactions_pb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(url: str) -> list[int]:
    return await migrations.apply_at(url, "bot", MIGRATIONS)


async def open_database(settings: Settings, stack: AsyncExitStack) -> asyncpg.Pool:
    """The database (embedded unless DATABASE_URL), migrated when the shared
    rule says so; it closes with `stack`."""
    return await stack.enter_async_context(database.opened(
        settings.shared, component="bot", migrations_dir=MIGRATIONS, pool_size=settings.pool_max_size,
        init=register_vector))


async def open_knowledge(settings: Settings, pool: asyncpg.Pool, stack: AsyncExitStack) -> Knowledge:
    """The index on the database; what it opened closes with `stack`."""
    embedder = select.embedder(settings.embedder, stack)
    store = vector_store(settings, pool, embedder, stack)
    await store.prepare()
    return Knowledge(pool, store, embedder)


def build_chatbot(settings: Settings, knowledge: Knowledge, pool: asyncpg.Pool, outbox: Outbox,
                  stack: AsyncExitStack) -> Chatbot:
    persona = Persona(brand=settings.brand, bot_name=settings.bot_name, tone=settings.tone,
                      handoff=settings.handoff, system_prompt=settings.system_prompt, greeting=settings.greeting)
    quoting = Quoting(knowledge.embedder, persona)
    answerer: Answerer = quoting
    if settings.answer_mode == "generate":  # only then is a chat model loaded
        answerer = Generating(select.chat_model(settings.chat, settings.shared.home, stack), persona, quoting)
    retrieval = Retrieval(k=settings.retrieval_k, relevance=Relevance(min_score=settings.similarity_threshold))
    return Chatbot(knowledge, answerer, persona, outbox, Dedup(pool), Conversations(pool), retrieval,
                   record_text=settings.record_chat_text)


async def serve(settings: Settings) -> None:
    async with AsyncExitStack() as stack:
        pool = await open_database(settings, stack)
        knowledge = await open_knowledge(settings, pool, stack)
        interactions = await stack.enter_async_context(clients.insecure_channel(
            settings.interactions_address, [(INTERACTIONS_SERVICE, "CreateInteraction")],
            token=settings.token.token()))
        outbox = Outbox(pool, interactions_grpc.InteractionsServiceStub(interactions))
        chatbot = await asyncio.to_thread(build_chatbot, settings, knowledge, pool, outbox, stack)
        delivery = asyncio.create_task(outbox.run_delivery())
        stack.callback(delivery.cancel)
        registrations: list[Registration[Any]] = [
            Registration(ChatService(chatbot, conversation_tokens.ConversationTokens(
                conversation_tokens.secret_from_env(settings.shared.home))),
                pb_grpc.add_ChatServiceServicer_to_server, CHAT_SERVICE, chat_service.ACCESS),
            Registration(KnowledgeService(knowledge, PageTokens(settings.shared.page_token_secret),
                                          chatbot.retrieval.relevance),
                         pb_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE, knowledge_service.ACCESS),
        ]
        await serve_until_signalled(registrations, settings.listen.address, ready=partial(database.reachable, pool),
                                    verifier=Verifier.of(settings.callers))


async def ingest_command(settings: Settings, paths: list[Path], source: str) -> None:
    from bot.ingest import ingest

    async with AsyncExitStack() as stack:
        pool = await open_database(settings, stack)
        knowledge = await open_knowledge(settings, pool, stack)
        count = await ingest(knowledge, paths, source)
    print(f"ingested {count} entries from {', '.join(map(str, paths))} (source {source!r})")


async def migrate_command(settings: MigrateSettings) -> None:
    await migrations.migrate_command(settings.shared, "bot", MIGRATIONS)


async def prepare_command(settings: Settings) -> None:
    path = await asyncio.to_thread(prepare, settings.shared.home / "models")
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
        "prepare-model": prepare_command,
        "ingest": lambda settings: ingest_command(settings, args.paths, args.source),
    }
    if args.command == "migrate":  # reads the database settings alone
        return run_command("bot", MigrateSettings.from_env, migrate_command)
    return run_command("bot", Settings.from_env, commands[args.command])


if __name__ == "__main__":
    sys.exit(main())

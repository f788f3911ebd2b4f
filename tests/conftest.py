"""Shared fixtures: one real PostgreSQL for the session (the embedded server in a
temporary folder, or `MEND_TEST_DATABASE_URL`), the interactions service on a
real grpc.aio server, and an in-memory span exporter installed before any gRPC
object exists (the instrumentors patch constructors)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mendkit.telemetry import setup_telemetry

SPANS = InMemorySpanExporter()
setup_telemetry("mend-tests", exporter=SPANS)

from interactions import repository  # noqa: E402
from interactions.__main__ import SERVICE_NAME, migrate  # noqa: E402
from interactions.service import InteractionsService  # noqa: E402
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc  # noqa: E402
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database  # noqa: E402
from mendkit.page_tokens import PageTokens  # noqa: E402
from mendkit.server import Registration, start_server  # noqa: E402

BRAND = "Alder & Finch"  # the teacher's brand in these runs

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server's `postgres` database."""
    external = os.environ.get("MEND_TEST_DATABASE_URL")
    if external:
        yield external.rsplit("/", 1)[0] + "/postgres"
        return
    server = EmbeddedPostgres(home=tmp_path_factory.mktemp("mend-home"), port=free_port())
    url = server.start()
    yield url.rsplit("/", 1)[0] + "/postgres"
    server.stop()


@pytest.fixture(scope="session")
async def database_url(postgres_server: str) -> str:
    """A fresh, migrated database for this test session."""
    url = postgres_server.rsplit("/", 1)[0] + f"/mend_test_{os.getpid()}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "mend_test_{os.getpid()}"')
    finally:
        await admin.close()
    await ensure_database(url)
    await migrate(url)
    return url


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await repository.create_pool(database_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def interactions_address(pool: asyncpg.Pool) -> AsyncIterator[str]:
    servicer = InteractionsService(pool, PageTokens(b"tests-page-token-secret"))
    running = await start_server(
        [Registration(servicer, pb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME)], "127.0.0.1:0"
    )
    yield f"127.0.0.1:{running.port}"
    await running.stop(1)


@pytest.fixture
async def interactions(interactions_address: str, pool: asyncpg.Pool) -> AsyncIterator[pb_grpc.InteractionsServiceStub]:
    """A stub over a real channel, with an empty table."""
    await pool.execute("TRUNCATE interactions")
    async with grpc.aio.insecure_channel(interactions_address) as channel:
        yield pb_grpc.InteractionsServiceStub(channel)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    SPANS.clear()
    return SPANS


async def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


# --- the bot's knowledge index ---------------------------------------------------


@pytest.fixture(scope="session")
def embedder():
    from mendmodels.embeddings.local_minilm import LocalMiniLM

    return LocalMiniLM()


@pytest.fixture(scope="session")
async def knowledge_index(database_url: str, embedder):
    """The real index: pgvector in the test database, the real local embedder."""
    from pgvector.asyncpg import register_vector

    from bot.__main__ import migrate as migrate_bot
    from bot.knowledge import Knowledge
    from bot.vectorstores.pgvector_store import PgVectorStore
    from mendkit import database

    await migrate_bot(database_url)
    pool = await database.create_pool(database_url, 5, init=register_vector)
    store = PgVectorStore(pool, embedder.model_id, embedder.dimension)
    await store.prepare()
    yield Knowledge(pool, store, embedder)
    await pool.close()


@pytest.fixture(scope="session")
async def knowledge_address(knowledge_index) -> AsyncIterator[str]:
    from bot.__main__ import KNOWLEDGE_SERVICE
    from bot.knowledge_service import KnowledgeService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    servicer = KnowledgeService(knowledge_index, PageTokens(b"tests-page-token-secret"))
    running = await start_server(
        [Registration(servicer, bot_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE)], "127.0.0.1:0"
    )
    yield f"127.0.0.1:{running.port}"
    await running.stop(1)


@pytest.fixture
async def knowledge(knowledge_address: str, knowledge_index):
    """A KnowledgeService stub over a real channel, with an empty index."""
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    await knowledge_index.pool.execute("TRUNCATE knowledge_entries CASCADE")
    async with grpc.aio.insecure_channel(knowledge_address) as channel:
        yield bot_grpc.KnowledgeServiceStub(channel)


# --- the bot's chat ----------------------------------------------------------------


@pytest.fixture(scope="session")
def chat_model():
    """The real embedded chat model (Qwen2.5 0.5B on llama.cpp)."""
    from mendmodels.chat.local_gguf import LocalGGUF, prepare
    from mendkit.embedded_postgres import DEFAULT_HOME

    return LocalGGUF(prepare(DEFAULT_HOME / "models"), temperature=0.0)


def make_chatbot(knowledge_index, chat_model, interactions_address: str):
    from bot.chat import Chatbot
    from bot.chat_log import ChatLog
    from bot.persona import Persona
    from mend.interactions.v1 import interactions_service_pb2_grpc as interactions_grpc
    from mendkit import clients

    channel = clients.insecure_channel(interactions_address)
    persona = Persona(brand="Alder & Finch", bot_name="Mend", tone="warm", handoff="email care@alderandfinch.example")
    log = ChatLog(knowledge_index.pool, interactions_grpc.InteractionsServiceStub(channel))
    return Chatbot(knowledge_index, chat_model, log, persona), channel


@pytest.fixture
async def chat(knowledge_index, chat_model, interactions_address, pool):
    """A ChatService stub over a real channel; the bot logs to the real interactions service."""
    from bot.__main__ import CHAT_SERVICE
    from bot.chat_service import ChatService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    await knowledge_index.pool.execute("TRUNCATE knowledge_entries CASCADE; TRUNCATE chat_log")
    await pool.execute("TRUNCATE interactions")
    chatbot, interactions_channel = make_chatbot(knowledge_index, chat_model, interactions_address)
    running = await start_server(
        [Registration(ChatService(chatbot), bot_grpc.add_ChatServiceServicer_to_server, CHAT_SERVICE)], "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield bot_grpc.ChatServiceStub(channel), chatbot
    await running.stop(1)
    await interactions_channel.close()


# --- the trainer's admin service ---------------------------------------------------


@pytest.fixture
async def trainer_setup(database_url, pool, interactions_address, knowledge_address, interactions, knowledge):
    """TrainerService on a real server, over the real interactions and knowledge
    services; the test sets `teacher` and `policy` on the returned Trainer."""
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc
    from mend.interactions.v1 import interactions_service_pb2_grpc as interactions_grpc
    from mend.trainer.v1 import trainer_service_pb2_grpc as trainer_grpc
    from mendkit import migrations as mend_migrations
    from trainer.__main__ import MIGRATIONS, TRAINER
    from trainer.loop import Policy
    from trainer.runs import Trainer
    from trainer.service import TrainerService

    async with pool.acquire() as connection:
        await mend_migrations.apply(connection, "trainer", MIGRATIONS)
    await pool.execute("TRUNCATE trainer_runs, trainer_fixes")
    async with grpc.aio.insecure_channel(interactions_address) as ichannel, \
            grpc.aio.insecure_channel(knowledge_address) as kchannel:
        trainer = Trainer(pool, interactions_grpc.InteractionsServiceStub(ichannel),
                          bot_grpc.KnowledgeServiceStub(kchannel), None, Policy(2, "review", 0.8, 0.7, BRAND))
        servicer = TrainerService(trainer, PageTokens(b"tests-page-token-secret"))
        running = await start_server(
            [Registration(servicer, trainer_grpc.add_TrainerServiceServicer_to_server, TRAINER)], "127.0.0.1:0")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield trainer_grpc.TrainerServiceStub(channel), trainer
        for task in list(servicer.background):
            await task
        await running.stop(1)

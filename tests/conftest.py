"""Shared fixtures: one real PostgreSQL for the session (the embedded server in a
temporary folder, or `MEND_TEST_DATABASE_URL`), the interactions service on a
real grpc.aio server, the bot's knowledge index and embedded chat model, the
OpenAI-compatible test server, and an in-memory span exporter installed before
any gRPC object exists (the instrumentors patch constructors). Every server
checks bearer tokens as deployed; the stubs the fixtures yield carry the admin
token, and the tests' tokens are in the environment of every process a test
starts (tests/support.py: TOKENS). Fixtures that one part alone uses are in that
part's conftest.py; builders and helpers are in tests/support.py."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mendkit.telemetry import setup_telemetry

SPANS = InMemorySpanExporter()
setup_telemetry("mend-tests", exporter=SPANS)

# After setup_telemetry on purpose (hence E402): see the docstring.
from interactions import repository  # noqa: E402
from interactions.__main__ import SERVICE_NAME, migrate  # noqa: E402
from interactions.service import ACCESS, InteractionsService  # noqa: E402
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc  # noqa: E402
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database  # noqa: E402
from mendkit.page_tokens import PageTokens  # noqa: E402
from mendkit.server import Registration  # noqa: E402
from tests.support import DIMENSION, PYTHON, REPO, TOKEN_ENV, Peer, channel, free_port, serve  # noqa: E402

# The processes tests start (`python -m trainer run`, the services) send and accept the tests' tokens.
os.environ.update(TOKEN_ENV)


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
    running = await serve(Registration(servicer, pb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME,
                                       ACCESS))
    yield f"127.0.0.1:{running.port}"
    await running.stop(1)


@pytest.fixture
async def interactions(interactions_address: str, pool: asyncpg.Pool) -> AsyncIterator[pb_grpc.InteractionsServiceStub]:
    """A stub over a real channel, with the admin token, and an empty table."""
    await pool.execute("TRUNCATE interactions")
    async with channel(interactions_address) as admin:
        yield pb_grpc.InteractionsServiceStub(admin)


@pytest.fixture
async def unreachable() -> asyncpg.Pool:
    """A pool whose database does not answer (nothing listens on its port)."""
    pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/mend", min_size=0, max_size=1)
    yield pool
    await pool.close()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    SPANS.clear()
    return SPANS


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
    from bot.knowledge_service import ACCESS as KNOWLEDGE_ACCESS
    from bot.knowledge_service import KnowledgeService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    servicer = KnowledgeService(knowledge_index, PageTokens(b"tests-page-token-secret"))
    running = await serve(Registration(servicer, bot_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE,
                                       KNOWLEDGE_ACCESS))
    yield f"127.0.0.1:{running.port}"
    await running.stop(1)


@pytest.fixture
async def knowledge(knowledge_address: str, knowledge_index):
    """A KnowledgeService stub over a real channel, with the admin token, and an empty index."""
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    await knowledge_index.pool.execute("TRUNCATE knowledge_entries, knowledge_revisions CASCADE")
    async with channel(knowledge_address) as admin:
        yield bot_grpc.KnowledgeServiceStub(admin)


# --- the bot's chat model -----------------------------------------------------------


@pytest.fixture(scope="session")
def chat_model():
    """The real embedded chat model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, on llama.cpp)."""
    from mendkit.embedded_postgres import DEFAULT_HOME
    from mendmodels.chat.local_gguf import LocalGGUF, prepare

    return LocalGGUF(prepare(DEFAULT_HOME / "models"), temperature=0.0)


# --- the OpenAI-compatible test server (the model adapters' and the bot's peer) ------------


@pytest.fixture(scope="session")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """tests/doubles/openai_server.py as its own process on a free port."""
    folder = tmp_path_factory.mktemp("openai-server")
    port = free_port()
    with open(folder / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [PYTHON, str(REPO / "tests" / "doubles" / "openai_server.py"), "--port", str(port),
             "--log", str(folder / "requests.jsonl"), "--dimension", str(DIMENSION)],
            stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the test server did not start: {(folder / 'stderr.txt').read_text()}") from None
            time.sleep(0.05)
    yield Peer(f"http://127.0.0.1:{port}/v1", folder / "requests.jsonl")
    process.terminate()
    process.wait(10)

"""What the tests share, in one place: paths, free ports, process starters,
the edge and the mesh, builders and sample data. Test modules import these
from here (never from another test module or from conftest.py); the fixtures
themselves are in conftest.py. Nothing here creates a gRPC channel or server
when imported, so conftest.py can install telemetry first."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
import httpx
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit import clients
from mendkit.credentials import ADMIN, BOT, TRAINER, Verifier, token_file, token_variable

# --- paths, the interpreter, tools -------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GRPCURL = shutil.which("grpcurl") or str(REPO / ".venv" / "bin" / "grpcurl")
CHAT_PAGE = REPO / "tests" / "browser" / "chat_page.mjs"  # drives the page in Chromium (node)

BRAND = "Alder & Finch"  # the brand in these runs: the bot's persona and the teacher's prompts
DIMENSION = 16  # the embedding dimension of the OpenAI-compatible test server (tests/doubles/openai_server.py)


# --- ports --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (the OS may hand the same free port out twice)."""
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(free_port())
    return sorted(chosen)


PORT_WAIT_S = 30.0  # how long a starting process gets to open its port


async def wait_for_port(port: int) -> None:
    """Returns once 127.0.0.1:`port` accepts connections; raises OSError after PORT_WAIT_S."""
    deadline = asyncio.get_running_loop().time() + PORT_WAIT_S
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


# --- credentials -------------------------------------------------------------------------
# Every service these tests start checks bearer tokens (mendkit.access), as
# deployed: these are the tokens of the three identities. conftest.py puts them
# into the environment, so `python -m <service>` processes accept and send them.

TOKENS = {ADMIN: "tests-admin-token-0123456789abcdefghijk",
          BOT: "tests-bot-token-0123456789abcdefghijklmn",
          TRAINER: "tests-trainer-token-0123456789abcdefghij"}
TOKEN_ENV = {token_variable(identity): token for identity, token in TOKENS.items()}
# A token of the right shape that belongs to no one.
STRANGER = "tests-stranger-token-0123456789abcdefghi"
NO_TOKENS = dict.fromkeys(TOKEN_ENV, "")  # unset: a process falls back to the tokens kept in MEND_HOME


def verifier() -> Verifier:
    """What the tests' servers check tokens with: the three identities above."""
    return Verifier.of_tokens(TOKENS)


def bearer(identity: str = ADMIN) -> tuple[tuple[str, str]]:
    """Call metadata carrying `identity`'s token."""
    return (("authorization", f"Bearer {TOKENS[identity]}"),)


def channel(address: str, identity: str | None = ADMIN, interceptors=()) -> grpc.aio.Channel:
    """A plain channel (no deadline, no retries) whose calls carry `identity`'s
    token (None: no token), through `interceptors` first."""
    sends = clients.bearer(TOKENS[identity]) if identity else []
    return grpc.aio.insecure_channel(address, interceptors=[*interceptors, *sends])


async def serve(*registrations, address: str = "127.0.0.1:0"):
    """The registrations on a real server (on a free port unless `address` says),
    checking tokens as `python -m <service>` does. Returns the RunningServer."""
    from mendkit.server import start_server

    return await start_server(list(registrations), address, verifier=verifier())


def kept_admin_token(home: Path) -> str:
    """The admin token a mesh made under its MEND_HOME."""
    return (Path(home) / token_file(ADMIN)).read_text().strip()


# --- gRPC -----------------------------------------------------------------------------


async def expect_status(call, code: grpc.StatusCode, *in_message: str) -> str:
    """Awaits `call`, which must fail with `code` and mention each of `in_message`; returns the details."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == code, raised.value.details()
    for text in in_message:
        assert text in raised.value.details()
    return raised.value.details()


# --- service processes (`python -m <service>`) -----------------------------------------


async def start(env: dict[str, str], module: str = "interactions",
                port_variable: str = "INTERACTIONS_PORT") -> tuple[asyncio.subprocess.Process, int]:
    """`python -m <module>` on a free port, once it accepts connections. Its
    output goes to a file, never a pipe: a pipe nobody reads while a test runs
    fills up, and the service then hangs on its next log line."""
    port = free_port()
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
    process = await asyncio.create_subprocess_exec(
        PYTHON, "-m", module,
        env={**os.environ, port_variable: str(port), **env},
        cwd=REPO, stdout=output, stderr=asyncio.subprocess.STDOUT,
    )
    _OUTPUTS[process.pid] = output
    try:
        await wait_for_port(port)
    except OSError:
        process.kill()
        await process.wait()
        print(_output_of(process))
        raise
    return process, port


_OUTPUTS: dict[int, IO[bytes]] = {}


def _output_of(process: asyncio.subprocess.Process) -> str:
    output = _OUTPUTS.pop(process.pid)
    output.seek(0)
    text = output.read().decode(errors="replace")
    output.close()
    return text


async def stop(process: asyncio.subprocess.Process) -> tuple[int, list[dict]]:
    """SIGTERM, then the exit code and the JSON log lines the process wrote."""
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 30)
    return code, [json.loads(line) for line in _output_of(process).splitlines() if line.startswith("{")]


def grpcurl(port: int, *args: str, token: str | None = TOKENS[ADMIN]) -> subprocess.CompletedProcess:
    """grpcurl against 127.0.0.1:`port` with the admin token (as README's examples
    call; None: no token); the last argument is the method (or `list`)."""
    header = ["-H", f"authorization: Bearer {token}"] if token else []
    return subprocess.run([GRPCURL, "-plaintext", *header, *args[:-1], f"127.0.0.1:{port}", args[-1]],
                          capture_output=True, text=True, timeout=30)


def snake(value):
    """grpcurl names fields as the descriptors it got say; compare in snake_case."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): snake(item) for key, item in value.items()}
    return [snake(item) for item in value] if isinstance(value, list) else value


def answered(reply: subprocess.CompletedProcess) -> dict:
    """A grpcurl call's answer (which must have succeeded), in snake_case."""
    assert reply.returncode == 0, reply.stderr
    return snake(json.loads(reply.stdout))


# --- the mesh (README's run command) ----------------------------------------------------


async def start_mesh(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, list[str]]:
    # The README's run command itself: its set-up step finds everything in place
    # (the test command ran it), then it execs `python -m mesh`.
    process = await asyncio.create_subprocess_exec(
        str(REPO / "scripts" / "up"), cwd=REPO, env={**os.environ, "DATABASE_URL": "", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, "mesh exited early:\n" + "".join(lines)
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return process, lines


async def interrupt(process: asyncio.subprocess.Process) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stdout.read(), 60)).decode()
    return await process.wait(), rest


def mesh_env(home) -> dict[str, str]:
    """Every port the mesh opens, free, and a home of its own, where it makes
    its own tokens as on a first run (`kept_admin_token(home)` reads the admin's)."""
    ports = ("MEND_PG_PORT", "INTERACTIONS_PORT", "BOT_PORT", "TRAINER_PORT", "WEB_PORT", "GATEWAY_PORT",
             "GATEWAY_ADMIN_PORT")
    chosen = free_ports(len(ports))
    return {"MEND_HOME": str(home), **NO_TOKENS,
            **{name: str(port) for name, port in zip(ports, chosen, strict=True)}}


# --- the edge: Envoy and the page's static server ----------------------------------------
# The real edge for tests and benchmarks: Envoy (`python -m gateway_envoy run`,
# the same command the mesh runs) and the page's static server, on free ports,
# in front of whatever upstream addresses are given.


@dataclass
class Edge:
    port: int
    admin_port: int
    access_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines()


async def _wait(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(150):
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@asynccontextmanager
async def running_edge(home: Path, *, bot: str, interactions: str, **settings: str) -> AsyncIterator[Edge]:
    """Envoy + the page server. `settings` are extra environment variables
    (GATEWAY_RATE_LIMIT_PER_SECOND=..., GATEWAY_RATE_LIMIT_PER_CLIENT_PER_SECOND=...,
    OTEL_EXPORTER_OTLP_ENDPOINT=...)."""
    web_port, port, admin_port = free_ports(3)
    env = {**os.environ, "MEND_HOME": str(home), "WEB_PORT": str(web_port), "WEB_ADDR": f"127.0.0.1:{web_port}",
           "GATEWAY_PORT": str(port), "GATEWAY_ADMIN_PORT": str(admin_port), "BOT_ADDR": bot,
           "INTERACTIONS_ADDR": interactions, "OTEL_EXPORTER_OTLP_ENDPOINT": "", **settings}
    access_log = home / f"envoy-{port}.log"
    web = await asyncio.create_subprocess_exec(sys.executable, "-m", "mesh.static_site", cwd=REPO, env=env,
                                               stdout=asyncio.subprocess.DEVNULL)
    with open(access_log, "wb") as log:  # noqa: ASYNC230 - opening a local file for the child's stdout
        envoy = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway_envoy", "run", cwd=REPO,
                                                     env=env, stdout=log)
    try:
        await _wait(f"http://127.0.0.1:{web_port}/", web, "the page server")
        await _wait(f"http://127.0.0.1:{admin_port}/ready", envoy, "envoy")
        yield Edge(port, admin_port, access_log)
    finally:
        await _stop(envoy)
        await _stop(web)


# --- the bot: a chatbot and sample knowledge ------------------------------------------------


def generating(chatbot, model):
    """An answerer for `chatbot` in generate mode (MEND_ANSWER_MODE=generate) with `model`."""
    from bot.generating import Generating
    from bot.quoting import Quoting

    return Generating(model, chatbot.persona, Quoting(chatbot.knowledge.embedder, chatbot.persona))


class RecordingModel:
    """Records the prompt it is given and answers with a fixed sentence: for
    checking what the bot sends a model, not what a model writes."""

    model_id = "recording"
    leaves_the_machine = False  # a model in this process: it sees what the customer wrote

    def __init__(self) -> None:
        self.prompts: list[list] = []

    async def stream(self, messages, max_tokens):
        self.prompts.append(list(messages))
        for piece in ["You can ", "return ", "unused items."]:
            yield piece


def logged_exchange(query: str, answer: str, interaction_id=None):
    """An answered exchange as the outbox stores it (an `Exchange`), and the
    CreateInteractionRequest it delivers."""
    import uuid

    from bot import messages
    from bot.exchange import Exchange, Facts

    exchange = Exchange(interaction_id=interaction_id or uuid.uuid4(), conversation_id="conv-outbox", query=query,
                        answer=answer, sources=(), grounded=False, facts=Facts())
    return messages.interaction_request(exchange), exchange


def make_chatbot(knowledge_index, chat_model, interactions_address: str):
    """A Chatbot over the given index, logging to interactions at the address (with the bot's token);
    it generates with `chat_model`, or quotes the knowledge (the embedded
    default) when that is None. Returns it and the channel to close."""
    from bot.chat import Chatbot
    from bot.conversations import Conversations
    from bot.dedup import Dedup
    from bot.outbox import Outbox
    from bot.persona import Persona
    from mend.interactions.v1 import interactions_service_pb2_grpc as interactions_grpc

    channel = clients.insecure_channel(interactions_address, token=TOKENS[BOT])  # the bot logs as itself
    persona = Persona(brand=BRAND, bot_name="Mend", tone="warm", handoff="email care@alderandfinch.example")
    pool = knowledge_index.pool
    outbox = Outbox(pool, interactions_grpc.InteractionsServiceStub(channel))
    from bot.quoting import Quoting

    chatbot = Chatbot(knowledge_index, Quoting(knowledge_index.embedder, persona), persona, outbox, Dedup(pool),
                      Conversations(pool))
    if chat_model is not None:
        chatbot.answerer = generating(chatbot, chat_model)
    return chatbot, channel


RETURNS = bpb.KnowledgeEntry(
    entry_id="faq-returns", kind=bpb.ENTRY_KIND_QA, source="test-kb",
    content="You can return unused items within 60 days for a full refund.",
    questions=["How do I return something?", "What is your return policy?", "Can I send back an item?"],
)
SHIPPING = bpb.KnowledgeEntry(
    entry_id="faq-shipping", kind=bpb.ENTRY_KIND_QA, source="test-kb",
    content="Standard shipping takes 3-5 business days and is free over 75 euros.",
    questions=["How long does delivery take?", "When will my parcel arrive?"],
)
ARTICLE = bpb.KnowledgeEntry(
    entry_id="care:1", kind=bpb.ENTRY_KIND_ARTICLE, source="test-kb", title="Caring for down sleeping bags",
    content="Wash down sleeping bags rarely, with a down-specific soap, and tumble dry on low heat with dryer balls.",
)


async def upsert(stub, *entries: bpb.KnowledgeEntry) -> list[bpb.KnowledgeEntry]:
    return list((await stub.UpsertEntries(bpb.UpsertEntriesRequest(entries=entries))).entries)


# --- the trainer: a teacher double and disliked questions ------------------------------------


class ScriptedModel:
    """A chat model for the bot (in production a cloud one, or the embedded model)
    that writes the given text, a word at a time."""

    model_id = "scripted"
    leaves_the_machine = False

    def __init__(self, text: str) -> None:
        self.text = text

    async def stream(self, messages, max_tokens):
        for word in self.text.split(" "):
            if word:
                yield word + " "


class Teacher:
    """Deterministic: the improved answer names the question it answers."""

    model_id = "teacher-double"

    def __init__(self, fail_on: str = "") -> None:
        self.fail_on = fail_on
        self.asked: list[str] = []

    async def stream(self, messages, max_tokens):
        question = messages[-1].content.split("\n")[0].removeprefix("A customer asked: ")
        self.asked.append(question)
        if self.fail_on and self.fail_on in question:
            raise RuntimeError("teacher unavailable")
        for piece in ["Yes, ", "we rent tents ", "for 15 euros a weekend."]:
            yield piece


async def dislike(interactions, *questions: str) -> list[str]:
    """Logs each question with an unhelpful answer and a dislike; returns their interaction ids."""
    ids = []
    for question in questions:
        created = (await interactions.CreateInteraction(ipb.CreateInteractionRequest(
            interaction=ipb.Interaction(user_query=question, bot_response="I don't know.")))).interaction
        await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(
            interaction_id=created.interaction_id, rating=ipb.RATING_DISLIKE, comment="not helpful"))
        ids.append(created.interaction_id)
    return ids


async def processed(interactions) -> dict[str, ipb.Interaction]:
    """Every stored interaction, by id."""
    page = await interactions.ListInteractions(ipb.ListInteractionsRequest(page_size=1000))
    return {i.interaction_id: i for i in page.interactions}


# --- the OpenAI-compatible test server --------------------------------------------------------


@dataclass
class Peer:
    url: str  # the base URL, ending in /v1
    log: Path

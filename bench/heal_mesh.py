"""The real services of the healing benchmark, in this process, each built the
way its own `python -m <service>` builds it: its settings from the environment
(a scratch database in DATABASE_URL, migrations applied on start), its own
database pool, its own gRPC server on a free port, reaching the others through
their addresses. Two things can be swapped for doubles, and only through the
model layer's `select.chat_model` (so every other choice the services make
stays theirs): the bot's chat model, and the trainer's teacher.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

import grpc

from bot import __main__ as bot_main
from bot.chat_service import ChatService
from bot.knowledge_service import KnowledgeService
from bot.outbox import Outbox
from bot.settings import Settings as BotSettings
from interactions import __main__ as interactions_main
from interactions.service import InteractionsService
from interactions.settings import Settings as InteractionsSettings
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mend.trainer.v1 import trainer_service_pb2_grpc as tpb_grpc
from mendkit import clients, database
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, RunningServer, start_server
from mendmodels import select
from mendmodels.chat.base import Message
from trainer import __main__ as trainer_main
from trainer.service import TrainerService
from trainer.settings import Settings as TrainerSettings

PAGE_TOKEN_SECRET = "heal-bench-page-token-secret"


class InstantTeacher:
    """The trainer's teacher double: answers at once, with a text that names the
    question it was given (so proposals differ), never a reference answer."""

    model_id = "instant-teacher-double"
    concurrency = 4

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        self.calls += 1
        asked = messages[-1].content.splitlines()[0][:200] if messages else ""
        yield f"A drafted answer (teacher double) for: {asked}"


class BotModelDouble:
    """The bot's chat-model double, for when the bot has no setting that serves a
    Q&A entry's answer as written: it repeats the first fact it is given, so the
    answer text is the answering entry's content, as that mode would give."""

    model_id = "bot-model-double"
    concurrency = 64

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        self.calls += 1
        prompt = messages[-1].content if messages else ""
        facts = prompt.split("\n\nQuestion: ")[0].removeprefix("Facts:\n")
        first = facts.split("\n[2] ")[0].removeprefix("[1] ")
        # "[1] title: content": the title is the entry's first question, which may hold ": " itself,
        # and the benchmark's answers start with "Answer for ", so cut there when it is present.
        at = first.find("Answer for ")
        yield first[at:] if at >= 0 else first.split(": ", 1)[-1]


def answer_mode_setting() -> str:
    """The name of the bot's setting that decides how an answer is written (the
    lead's answer mode), or "" while the bot has none."""
    names = [f.name for f in dataclasses.fields(BotSettings)]
    return next((name for name in names if "answer" in name and "mode" in name), "")


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ while settings are read, the old values after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Mesh:
    chat: bpb_grpc.ChatServiceAsyncStub
    knowledge: bpb_grpc.KnowledgeServiceAsyncStub
    interactions: ipb_grpc.InteractionsServiceAsyncStub
    trainer: tpb_grpc.TrainerServiceAsyncStub
    bot_model: str  # what answers in the bot: "double", or the bot's own setting
    teacher_model: str
    judge: str
    instant_teacher: InstantTeacher | None
    bot_double: BotModelDouble | None


def describe(judge: object) -> str:
    """The judge's class, and its threshold when it has one."""
    threshold = getattr(judge, "threshold", None)
    return type(judge).__name__ + (f"({threshold})" if threshold is not None else "")


def _doubling(model: Any) -> Any:
    """Patches the model layer's chat-model factory to return `model`."""
    return mock.patch.object(select, "chat_model", lambda *args, **kwargs: model)


async def _database(stack: AsyncExitStack, database_url: str) -> str:
    """`database_url` (an empty scratch database), or a fresh embedded PostgreSQL."""
    if database_url:
        await ensure_database(database_url)
        return database_url
    home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mend-heal-bench-")))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = EmbeddedPostgres(home=home, port=port)
    url = await asyncio.to_thread(server.start)
    stack.callback(server.stop)
    await ensure_database(url)
    return url


async def _serve(stack: AsyncExitStack, registrations: list[Registration[Any]], pool: Any) -> RunningServer:
    running = await start_server(registrations, "127.0.0.1:0", ready=partial(database.reachable, pool))
    stack.push_async_callback(running.stop, 1)
    return running


@contextlib.asynccontextmanager
async def running_mesh(database_url: str = "", teacher: str = "instant", bot_model: str = "auto",
                       log_level: str = "WARNING") -> AsyncIterator[Mesh]:
    """interactions, the bot (ChatService and KnowledgeService) and the trainer's
    TrainerService, each on its own server. `teacher`: "instant" (InstantTeacher)
    or "embedded" (the trainer's own choice: the embedded GGUF model). `bot_model`:
    "double" (BotModelDouble), "settings" (the bot's own choice) or "auto" (the
    bot's own choice once it has an answer-mode setting, the double before)."""
    async with AsyncExitStack() as stack:
        url = await _database(stack, database_url)
        env = {"DATABASE_URL": url, "MEND_MIGRATE_ON_START": "true", "MEND_PAGE_TOKEN_SECRET": PAGE_TOKEN_SECRET,
               "LOG_LEVEL": log_level}

        with environment(env):
            interactions_settings = InteractionsSettings.from_env()
        pool = await stack.enter_async_context(database.opened(
            interactions_settings.shared, component="interactions", migrations_dir=interactions_main.MIGRATIONS,
            pool_size=interactions_settings.pool_max_size))
        interactions_server = await _serve(stack, [Registration(
            InteractionsService(pool, PageTokens(interactions_settings.shared.page_token_secret)),
            ipb_grpc.add_InteractionsServiceServicer_to_server, interactions_main.SERVICE_NAME)], pool)
        interactions_address = f"127.0.0.1:{interactions_server.port}"

        setting = answer_mode_setting()
        use_double = bot_model == "double" or (bot_model == "auto" and not setting)
        bot_env = {**env, "INTERACTIONS_ADDR": interactions_address}
        if use_double and setting:  # the double answers only where the bot has a model write the answer
            bot_env[f"MEND_{setting.upper()}"] = "generate"
        with environment(bot_env):
            bot_settings = BotSettings.from_env()
        bot_pool = await bot_main.open_database(bot_settings, stack)
        knowledge = await bot_main.open_knowledge(bot_settings, bot_pool, stack)
        to_interactions = await stack.enter_async_context(clients.insecure_channel(
            bot_settings.interactions_address, [(bot_main.INTERACTIONS_SERVICE, "CreateInteraction")]))
        outbox = Outbox(bot_pool, ipb_grpc.InteractionsServiceStub(to_interactions))
        bot_double = BotModelDouble() if use_double else None
        with _doubling(bot_double) if bot_double is not None else contextlib.nullcontext():
            chatbot = await asyncio.to_thread(bot_main.build_chatbot, bot_settings, knowledge, bot_pool, outbox, stack)
        delivery = asyncio.create_task(outbox.run_delivery())
        stack.callback(delivery.cancel)
        bot_server = await _serve(stack, [
            Registration(ChatService(chatbot), bpb_grpc.add_ChatServiceServicer_to_server, bot_main.CHAT_SERVICE),
            Registration(KnowledgeService(knowledge, PageTokens(bot_settings.shared.page_token_secret),
                                          chatbot.retrieval.relevance),
                         bpb_grpc.add_KnowledgeServiceServicer_to_server, bot_main.KNOWLEDGE_SERVICE)], bot_pool)
        bot_address = f"127.0.0.1:{bot_server.port}"
        bot_label = ("model double" if bot_double is not None else "the bot's own settings") + (
            f" ({setting}={getattr(bot_settings, setting)})" if setting else "")

        with environment({**env, "INTERACTIONS_ADDR": interactions_address, "BOT_ADDR": bot_address}):
            trainer_settings = TrainerSettings.from_env()
        instant = InstantTeacher() if teacher == "instant" else None
        with _doubling(instant) if instant is not None else contextlib.nullcontext():
            trainer = await stack.enter_async_context(trainer_main.open_trainer(trainer_settings))
        servicer = TrainerService(trainer, PageTokens(trainer_settings.shared.page_token_secret))
        trainer_server = await _serve(stack, [Registration(
            servicer, tpb_grpc.add_TrainerServiceServicer_to_server, trainer_main.TRAINER)], trainer.pool)

        async def background() -> None:  # a run still going when the benchmark stops
            for task in list(servicer.background):
                task.cancel()
            await asyncio.gather(*servicer.background, return_exceptions=True)

        stack.push_async_callback(background)
        channels = [await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
                    for server in (bot_server, interactions_server, trainer_server)]
        yield Mesh(chat=bpb_grpc.ChatServiceStub(channels[0]), knowledge=bpb_grpc.KnowledgeServiceStub(channels[0]),
                   interactions=ipb_grpc.InteractionsServiceStub(channels[1]),
                   trainer=tpb_grpc.TrainerServiceStub(channels[2]), bot_model=bot_label,
                   teacher_model=trainer.teacher.model_id,
                   judge=describe(trainer.judge),
                   instant_teacher=instant, bot_double=bot_double)

"""Fixtures for the trainer's tests alone (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import grpc
import pytest

from mendkit import credentials
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, start_server
from tests.support import BRAND
from tests.support import channel as with_token


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
    async with with_token(interactions_address, credentials.TRAINER) as ichannel, \
            with_token(knowledge_address, credentials.TRAINER) as kchannel:
        trainer = Trainer(pool, interactions_grpc.InteractionsServiceStub(ichannel),
                          bot_grpc.KnowledgeServiceStub(kchannel), None, Policy(2, "review", 0.8, 0.7, BRAND))
        servicer = TrainerService(trainer, PageTokens(b"tests-page-token-secret"))
        running = await start_server(
            [Registration(servicer, trainer_grpc.add_TrainerServiceServicer_to_server, TRAINER)], "127.0.0.1:0")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield trainer_grpc.TrainerServiceStub(channel), trainer
        # A teacher the test held (HeldTeacher, PausingTeacher) is released whatever the test did:
        # the runs are waited for below, and a run waiting on a teacher that a failed assertion never
        # released would hang the suite instead of failing the test.
        if (release := getattr(trainer.teacher, "release", None)) is not None:
            release.set()
        for task in list(servicer.background):
            await task
        await running.stop(1)

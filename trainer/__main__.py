"""`python -m trainer [serve|run|migrate]`: the TrainerService admin server;
one run of the self-healing loop as the scheduled Job runs it (exit status 0
when the run finished, even with nothing to do or when another run already
holds the lock; 1 when it failed); or the trainer's database migrations alone
(what the Helm hook runs, without loading any model)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mend.trainer.v1 import trainer_service_pb2 as tpb
from mend.trainer.v1 import trainer_service_pb2_grpc as tpb_grpc
from mendkit import clients, database, migrations
from mendkit.credentials import Verifier
from mendkit.entrypoint import run_command
from mendkit.errors import FailedPrecondition
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, serve_until_signalled
from mendkit.settings import MigrateSettings
from mendmodels import select
from mendmodels.chat.base import ChatModel
from trainer.judge import Judge, ModelJudge, SimilarityJudge
from trainer.loop import Policy
from trainer.runs import Trainer
from trainer.service import ACCESS, TrainerService
from trainer.settings import Settings

INTERACTIONS = ipb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
KNOWLEDGE = bpb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
TRAINER = tpb.DESCRIPTOR.services_by_name["TrainerService"].full_name
MIGRATIONS = Path(__file__).parent / "migrations"


SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def models(settings: Settings, stack: AsyncExitStack) -> tuple[ChatModel, Judge]:
    """The teacher and the judge, from the model layer (MEND_LLM and its
    variables). The embedded model cannot judge reliably, so with it the judge
    is a similarity threshold."""
    chat, home = settings.chat, settings.shared.home
    if chat.provider == "local":
        return select.chat_model(chat, home, stack), SimilarityJudge(settings.covered_similarity)
    bedrock = chat.provider == "bedrock"
    teacher = settings.teacher_model or (SONNET if bedrock else "")
    judge = settings.judge_model or (HAIKU if bedrock else "")
    return (select.chat_model(chat, home, stack, model=teacher),
            ModelJudge(select.chat_model(chat, home, stack, model=judge)))


def policy(settings: Settings) -> Policy:
    return Policy(settings.feedback_threshold, settings.publish_policy, settings.covered_similarity,
                  settings.duplicate_similarity, settings.brand, reinforce=settings.liked_as_phrasings)


@asynccontextmanager
async def open_trainer(settings: Settings) -> AsyncIterator[Trainer]:
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(database.opened(
            settings.shared, component="trainer", migrations_dir=MIGRATIONS, pool_size=5))
        teacher, judge = await asyncio.to_thread(models, settings, stack)
        interactions = await stack.enter_async_context(clients.insecure_channel(
            settings.interactions_address, [(INTERACTIONS, "ListInteractions"), (INTERACTIONS, "MarkProcessed")],
            deadline_s=30, token=settings.token.token()))
        knowledge = await stack.enter_async_context(clients.insecure_channel(
            settings.bot_address, [(KNOWLEDGE, "BatchSearchKnowledge"), (KNOWLEDGE, "UpsertEntries"),
                                   (KNOWLEDGE, "GetEntry"), (KNOWLEDGE, "ListEntries"), (KNOWLEDGE, "ReplayKnowledge"),
                                   # A retried restore that already landed finds the entry restored: no new revision.
                                   (KNOWLEDGE, "ListRevisions"), (KNOWLEDGE, "RestoreRevision")],
            deadline_s=30, token=settings.token.token()))
        yield Trainer(pool, ipb_grpc.InteractionsServiceStub(interactions), bpb_grpc.KnowledgeServiceStub(knowledge),
                      teacher, policy(settings), judge)


async def run(settings: Settings) -> int:
    async with open_trainer(settings) as trainer:
        try:
            started, task = await trainer.start(uuid.uuid4(), "schedule", force=False)
        except FailedPrecondition as busy:
            # Another run (one started by an admin, say) is already working
            # through the same queue; this schedule's work is being done, so
            # the Job succeeded rather than failing and being retried.
            print(f"trainer: skipped: {busy}")
            return 0
        if task is not None:
            await task
        run = await trainer.get_run(started.run_id)
    counts = run.counts
    print(f"trainer: run {run.run_id} {run.state}: read {counts.get('read', 0)}, gated {counts.get('gated', 0)}, "
          f"covered {counts.get('covered', 0)}, fixed {counts.get('fixed', 0)}, proposed {counts.get('proposed', 0)}, "
          f"failed {counts.get('failed', 0)}; triaged: gap {counts.get('gap', 0)}, "
          f"misrouted {counts.get('misrouted', 0)}, wrong {counts.get('wrong', 0)}, "
          f"no action {counts.get('no_action', 0)}"
          + (f" ({run.error_message})" if run.error_message else ""))
    return 1 if run.state == "failed" else 0


async def serve(settings: Settings) -> int:
    async with open_trainer(settings) as trainer:
        servicer = TrainerService(trainer, PageTokens(settings.shared.page_token_secret))
        await serve_until_signalled([Registration(servicer, tpb_grpc.add_TrainerServiceServicer_to_server,
                                                  TRAINER, ACCESS)], settings.listen.address,
                                    ready=partial(database.reachable, trainer.pool),
                                    verifier=Verifier.of(settings.callers))
    return 0


async def migrate(settings: MigrateSettings) -> int:
    await migrations.migrate_command(settings.shared, "trainer", MIGRATIONS)
    return 0


COMMANDS = {"serve": serve, "run": run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=[*COMMANDS, "migrate"])
    args = parser.parse_args(argv)
    if args.command == "migrate":  # reads the database settings alone: no model is chosen or loaded
        return run_command("trainer", MigrateSettings.from_env, migrate)
    return run_command("trainer", Settings.from_env, COMMANDS[args.command])


if __name__ == "__main__":
    sys.exit(main())

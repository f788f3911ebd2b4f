"""`python -m trainer run`: one run of the self-healing loop, as the scheduled
Job runs it. Exit status 0 when the run finished (even if it had nothing to
do), 1 when it failed. The TrainerService admin server is not built yet."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.settings import Settings as BotSettings
from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit import clients
from mendkit.logs import setup_logging
from mendkit.settings import SettingsError
from mendkit.telemetry import setup_telemetry
from trainer.loop import Policy, run_once
from trainer.settings import Settings

_log = logging.getLogger("trainer")
INTERACTIONS = ipb.DESCRIPTOR.services_by_name["InteractionsService"].full_name
KNOWLEDGE = bpb.DESCRIPTOR.services_by_name["KnowledgeService"].full_name


async def run(settings: Settings) -> int:
    from bot import adapters

    closers: list = []
    # The teacher uses the bot's chat-model adapters (same settings: MEND_LLM and its variables).
    teacher = await asyncio.to_thread(adapters.chat_model, BotSettings.from_env(), closers)
    policy = Policy(settings.feedback_threshold, settings.publish_policy, settings.covered_similarity,
                    settings.duplicate_similarity)
    async with clients.insecure_channel(settings.interactions_address,
                                        [(INTERACTIONS, "ListInteractions"), (INTERACTIONS, "MarkProcessed")],
                                        deadline_s=30) as interactions, \
            clients.insecure_channel(settings.bot_address, [(KNOWLEDGE, "SearchKnowledge"),
                                                            (KNOWLEDGE, "UpsertEntries")],
                                     deadline_s=30) as knowledge:
        try:
            counts = await run_once(ipb_grpc.InteractionsServiceStub(interactions),
                                    bpb_grpc.KnowledgeServiceStub(knowledge), teacher, policy)
        finally:
            for close in closers:
                await close()
    print(f"trainer: read {counts.read}, gated {counts.gated}, covered {counts.covered}, fixed {counts.fixed}, "
          f"proposed {counts.proposed}, failed {counts.failed}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"trainer: {error}", file=sys.stderr)
        return 2
    setup_logging("trainer", settings.log_level)
    shutdown_telemetry = setup_telemetry("trainer")
    try:
        return asyncio.run(run(settings))
    except Exception:  # noqa: BLE001 - the Job's exit status must say it failed
        _log.exception("the run failed")
        return 1
    finally:
        shutdown_telemetry()


if __name__ == "__main__":
    sys.exit(main())

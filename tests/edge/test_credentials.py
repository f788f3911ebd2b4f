"""Who may call what, on the services as they run (`python -m interactions`,
`python -m bot`, `python -m trainer`, each with the tests' tokens in its
environment, on the test PostgreSQL): every RPC of every contract, without a
token, with each service's token, with a token of no one and with the admin's.
The expected rights are written out here, not read from the services'
declarations, so that loosening one fails this test."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as tpb
from mendkit import access
from mendkit.credentials import ADMIN, BOT, TRAINER
from tests.support import STRANGER, TOKENS, answered, grpcurl

ANYONE = "anyone"
INTERACTIONS = "mend.interactions.v1.InteractionsService"
CHAT = "mend.bot.v1.ChatService"
KNOWLEDGE = "mend.bot.v1.KnowledgeService"
TRAINER_SERVICE = "mend.trainer.v1.TrainerService"
# Who may call each method besides the admin (who may call every one).
EXPECTED: dict[str, dict[str, set[str] | str]] = {
    INTERACTIONS: {"CreateInteraction": {BOT}, "GetInteraction": set(), "ListInteractions": {TRAINER},
                   "SubmitFeedback": ANYONE, "MarkProcessed": {TRAINER}},
    CHAT: {"Chat": ANYONE, "ChatStream": ANYONE},
    # A stolen bot token writes, deletes or lists no knowledge; the trainer's does what its runs and reviews need.
    KNOWLEDGE: {"SearchKnowledge": set(), "BatchSearchKnowledge": {TRAINER}, "ReplayKnowledge": {TRAINER},
                "UpsertEntries": {TRAINER}, "GetEntry": {TRAINER}, "ListEntries": {TRAINER},
                "UpdateEntry": {TRAINER}, "DeleteEntry": {TRAINER}, "ListRevisions": {TRAINER},
                "RestoreRevision": {TRAINER}},
    # No service calls the trainer: every method is the admin's.
    TRAINER_SERVICE: {method: set() for method in
                      tpb.DESCRIPTOR.services_by_name["TrainerService"].methods_by_name},
}
FILES = {INTERACTIONS: ipb, CHAT: bpb, KNOWLEDGE: bpb, TRAINER_SERVICE: tpb}
PORTS = {INTERACTIONS: "interactions", CHAT: "bot", KNOWLEDGE: "bot", TRAINER_SERVICE: "trainer"}
# Requests the handlers refuse (or answer) without changing anything: a call the
# check lets through is seen to reach its handler. Empty unless said here.
REQUESTS = {"StartRun": tpb.StartRunRequest(request_id="not-a-uuid").SerializeToString()}


def test_every_method_of_every_contract_is_expected_here():
    for service, methods in EXPECTED.items():
        declared = FILES[service].DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]].methods_by_name
        assert set(methods) == set(declared), service


async def outcome(address: str, path: str, authorization: str | None) -> str:
    """"served" when the call reached its handler (whatever that answered), else the check's refusal."""
    metadata = (("authorization", authorization),) if authorization else ()
    async with grpc.aio.insecure_channel(address) as plain:
        request = REQUESTS.get(path.rsplit("/", 1)[1], b"")
        try:
            if path.endswith("/ChatStream"):
                async for _ in plain.unary_stream(path)(request, metadata=metadata, timeout=30):
                    pass
            else:
                await plain.unary_unary(path)(request, metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as error:
            details = error.details() or ""
            if details in (access.NEEDS_TOKEN, access.BAD_HEADER, access.UNKNOWN_TOKEN, access.NOT_PUBLIC) or \
                    " credential may not call " in details:
                for token in (*TOKENS.values(), STRANGER):
                    assert token not in details
                return error.code().name
    return "served"


@pytest.mark.parametrize(("service", "method"), [(s, m) for s, methods in EXPECTED.items() for m in methods],
                         ids=[f"{s.rsplit('.', 1)[1]}/{m}" for s, methods in EXPECTED.items() for m in methods])
async def test_each_method_admits_exactly_its_callers(services, service, method):
    address = f"127.0.0.1:{services[PORTS[service]]}"
    path = f"/{service}/{method}"
    allowed = EXPECTED[service][method]
    seen = {who: await outcome(address, path, f"Bearer {TOKENS[who]}") for who in (ADMIN, BOT, TRAINER)}
    seen["nobody"] = await outcome(address, path, None)
    seen["stranger"] = await outcome(address, path, f"Bearer {STRANGER}")
    expected = {ADMIN: "served", "stranger": "UNAUTHENTICATED",
                "nobody": "served" if allowed == ANYONE else "UNAUTHENTICATED",
                **{who: "served" if allowed == ANYONE or who in allowed else "PERMISSION_DENIED"
                   for who in (BOT, TRAINER)}}
    assert seen == expected


async def test_the_services_call_one_another_with_their_own_tokens(services, pool):
    """The bot logs an exchange to interactions as the bot; a trainer run reads
    interactions and the bot's knowledge as the trainer."""
    await pool.execute("TRUNCATE interactions")
    chat = await asyncio.to_thread(grpcurl, services["bot"], "-d", '{"query": "What is the capital city of Peru?"}',
                                   f"{CHAT}/Chat", token=None)
    interaction_id = answered(chat)["interaction_id"]
    for _ in range(100):  # the bot's outbox delivers just after the answer
        got = await asyncio.to_thread(grpcurl, services["interactions"], "-d",
                                      json.dumps({"interaction_id": interaction_id}), f"{INTERACTIONS}/GetInteraction")
        if got.returncode == 0:
            break
        await asyncio.sleep(0.1)
    assert "feedback" not in answered(got)["interaction"]  # nothing disliked: the run needs no teacher
    run = answered(await asyncio.to_thread(grpcurl, services["trainer"], "-d", '{"force": true}',
                                           f"{TRAINER_SERVICE}/StartRun"))["run"]
    for _ in range(150):
        got = await asyncio.to_thread(grpcurl, services["trainer"], "-d", json.dumps({"run_id": run["run_id"]}),
                                      f"{TRAINER_SERVICE}/GetRun")
        run = answered(got)["run"]
        if run["state"] != "RUN_STATE_RUNNING":
            break
        await asyncio.sleep(0.2)
    assert run["state"] == "RUN_STATE_SUCCEEDED", run

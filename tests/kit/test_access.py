"""Credentials, checked once in the kit (mendkit/access.py, mendkit/credentials.py):
tokens from the environment or kept in MEND_HOME, compared in constant time;
UNAUTHENTICATED without a valid credential, PERMISSION_DENIED with one that
lacks the right or on a call the public gateway forwarded; health and
reflection open; every method of a served contract needs a declared rule; no
token in a message, a log line or a span. On the real interactions service
(tests/conftest.py's `interactions_address`, which checks tokens as deployed);
every RPC of every service is in tests/edge/test_credentials.py."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from interactions.__main__ import SERVICE_NAME
from interactions.service import ACCESS, NOT_YOURS, InteractionsService
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit import access, credentials
from mendkit.callers import CALLER_HEADER, PUBLIC
from mendkit.credentials import ADMIN, BOT, TRAINER, Credential, Verifier, token_file
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, start_server
from mendkit.settings import SettingsError
from tests.support import GRPCURL, STRANGER, TOKENS, bearer, channel, expect_status, verifier

LIST = "/mend.interactions.v1.InteractionsService/ListInteractions"
FEEDBACK = "/mend.interactions.v1.InteractionsService/SubmitFeedback"


# --- tokens from the environment ----------------------------------------------------------


def test_a_token_or_its_digest_comes_from_the_environment(tmp_path):
    token = "a-token-of-the-right-shape-0123456789"
    digest = hashlib.sha256(token.encode()).hexdigest()
    given = Credential.from_env(BOT, tmp_path, {"MEND_BOT_TOKEN": token})
    assert given.token() == token and given.digest().hex() == digest
    checked_only = Credential.from_env(BOT, tmp_path, {"MEND_BOT_TOKEN_SHA256": digest.upper()})
    assert checked_only.digest().hex() == digest
    with pytest.raises(SettingsError, match="MEND_BOT_TOKEN is required to call as bot"):
        checked_only.token()  # a digest lets a service check a token, never present it
    assert Credential.from_env(BOT, tmp_path, {"MEND_BOT_TOKEN": token, "MEND_BOT_TOKEN_SHA256": digest}).token()
    assert token not in repr(given) and digest not in repr(checked_only)
    assert list(tmp_path.iterdir()) == []  # nothing kept when the environment gives it


@pytest.mark.parametrize(("environ", "named"), [
    ({"MEND_ADMIN_TOKEN": "short"}, "MEND_ADMIN_TOKEN must be at least 32"),
    ({"MEND_ADMIN_TOKEN": "spaces are not allowed in a bearer token at all"}, "MEND_ADMIN_TOKEN must be"),
    ({"MEND_ADMIN_TOKEN_SHA256": "abc"}, "MEND_ADMIN_TOKEN_SHA256 must be the SHA-256"),
    ({"MEND_ADMIN_TOKEN": "a-token-of-the-right-shape-0123456789", "MEND_ADMIN_TOKEN_SHA256": "0" * 64},
     "MEND_ADMIN_TOKEN and MEND_ADMIN_TOKEN_SHA256 disagree"),
])
def test_a_malformed_token_setting_stops_the_service_naming_it(tmp_path, environ, named):
    with pytest.raises(SettingsError, match=named) as raised:
        Credential.from_env(ADMIN, tmp_path, environ)
    assert not any(value in str(raised.value) for value in environ.values())  # the value itself is not repeated


def test_unset_a_token_is_kept_in_mend_home_for_its_owner_only(tmp_path):
    home = tmp_path / "home"
    admin = Credential.from_env(ADMIN, home, {})
    assert not home.exists()  # reading the settings makes nothing: only using the token does
    token = admin.token()
    assert credentials.is_token(token)
    assert (home / token_file(ADMIN)).stat().st_mode & 0o077 == 0
    assert Credential.from_env(ADMIN, home, {}).digest() == hashlib.sha256(token.encode()).digest()
    assert Credential.from_env(BOT, home, {}).token() != token  # each identity its own
    assert sorted(p.name for p in home.iterdir()) == [token_file(ADMIN), token_file(BOT)]
    assert Credential.from_env(ADMIN, tmp_path / "other", {}).token() != token


def test_a_token_is_compared_in_constant_time_with_every_identity(monkeypatch):
    """Every check compares digests of equal length with hmac.compare_digest, with
    every identity's, whichever matches: its time says nothing about the token."""
    compared = []
    real = credentials.hmac.compare_digest

    def recording(a, b):
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", recording)
    checks = verifier()
    for token, identity in ((TOKENS[ADMIN], ADMIN), (TOKENS[TRAINER], TRAINER), (STRANGER, None)):
        compared.clear()
        assert checks.identify(token) == identity
        assert compared == [(32, 32)] * len(TOKENS), compared


# --- the check, on the real interactions service ----------------------------------------------


async def test_without_a_token_an_admin_method_is_unauthenticated_unparsed(interactions_address):
    async with channel(interactions_address, identity=None) as anonymous:
        stub = pb_grpc.InteractionsServiceStub(anonymous)
        details = await expect_status(stub.ListInteractions(pb.ListInteractionsRequest()),
                                      grpc.StatusCode.UNAUTHENTICATED, "authorization: Bearer <token>")
        assert details == access.NEEDS_TOKEN
        # Bytes that do not parse: refused before anything reads them (no INVALID_ARGUMENT naming the message).
        await expect_status(anonymous.unary_unary(LIST)(b"\xff\xff\xff\xff", timeout=10),
                            grpc.StatusCode.UNAUTHENTICATED)
        # With the admin's token the same call is served.
        assert (await stub.ListInteractions(pb.ListInteractionsRequest(), metadata=bearer(ADMIN))) is not None


@pytest.mark.parametrize("authorization", [
    [f"Basic {TOKENS[ADMIN]}"], ["Bearer"], [f"Bearer  {STRANGER}"], ["Bearer short"],
    [f"Bearer {TOKENS[ADMIN]}x"], [f"Bearer {TOKENS[ADMIN]}", f"Bearer {TOKENS[ADMIN]}"]])
async def test_a_malformed_or_unknown_credential_is_unauthenticated(interactions_address, authorization):
    metadata = tuple(("authorization", value) for value in authorization)
    async with grpc.aio.insecure_channel(interactions_address) as plain:
        stub = pb_grpc.InteractionsServiceStub(plain)
        for call in (stub.ListInteractions(pb.ListInteractionsRequest(), metadata=metadata),
                     # A public method too: a credential that is no good is never taken for none.
                     stub.SubmitFeedback(pb.SubmitFeedbackRequest(), metadata=metadata)):
            details = await expect_status(call, grpc.StatusCode.UNAUTHENTICATED)
            assert details in (access.BAD_HEADER, access.UNKNOWN_TOKEN)
            assert TOKENS[ADMIN] not in details and STRANGER not in details


async def test_a_valid_token_without_the_right_is_permission_denied(interactions_address):
    async with channel(interactions_address, BOT) as bot:
        stub = pb_grpc.InteractionsServiceStub(bot)
        details = await expect_status(stub.ListInteractions(pb.ListInteractionsRequest()),
                                      grpc.StatusCode.PERMISSION_DENIED)
        assert details == "the bot credential may not call ListInteractions"
        created = await stub.CreateInteraction(pb.CreateInteractionRequest(interaction=pb.Interaction(
            user_query="Do you ship to Norway?", bot_response="Yes.")))  # what the bot may do
    async with channel(interactions_address, TRAINER) as trainer:
        await expect_status(pb_grpc.InteractionsServiceStub(trainer).GetInteraction(pb.GetInteractionRequest(
            interaction_id=created.interaction.interaction_id)), grpc.StatusCode.PERMISSION_DENIED)


async def test_a_call_the_gateway_forwarded_reaches_public_methods_only_whatever_its_token(interactions_address,
                                                                                           interactions):
    created = (await interactions.CreateInteraction(pb.CreateInteractionRequest(interaction=pb.Interaction(
        user_query="Do you ship to Norway?", bot_response="Yes.", conversation_id="conv-gw")))).interaction
    public = ((CALLER_HEADER, PUBLIC),)
    async with channel(interactions_address, ADMIN) as admin:
        stub = pb_grpc.InteractionsServiceStub(admin)
        await expect_status(stub.ListInteractions(pb.ListInteractionsRequest(), metadata=public),
                            grpc.StatusCode.PERMISSION_DENIED, access.NOT_PUBLIC)
        # The public method is served, as to a customer: the admin's trust does not come through the gateway.
        await expect_status(stub.SubmitFeedback(pb.SubmitFeedbackRequest(
            interaction_id=created.interaction_id, rating=pb.RATING_LIKE), metadata=public),
            grpc.StatusCode.PERMISSION_DENIED, NOT_YOURS)
        rated = await stub.SubmitFeedback(pb.SubmitFeedbackRequest(
            interaction_id=created.interaction_id, rating=pb.RATING_LIKE))
        assert rated.interaction.feedback == 1


async def test_health_and_reflection_stay_open(interactions_address):
    async with channel(interactions_address, identity=None) as anonymous:
        health = health_pb2_grpc.HealthStub(anonymous)
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=10)).status == \
            health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
    # In a thread: the server runs on this test's event loop.
    listed = await asyncio.to_thread(subprocess.run, [GRPCURL, "-plaintext", interactions_address, "list"],
                                     capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and SERVICE_NAME in listed.stdout.split(), listed.stderr


async def test_every_method_a_server_checks_needs_a_declared_rule(pool):
    servicer = InteractionsService(pool, PageTokens(b"tests-page-token-secret"))
    add = pb_grpc.add_InteractionsServiceServicer_to_server
    partial = {name: rule for name, rule in ACCESS.items() if name != "MarkProcessed"}
    for rules, problem in ((None, "declares no access rules"), (partial, "no access rule for MarkProcessed"),
                           ({**ACCESS, "DropTable": access.PUBLIC}, "methods it does not have: DropTable")):
        with pytest.raises(ValueError, match=problem):
            await start_server([Registration(servicer, add, SERVICE_NAME, rules)], "127.0.0.1:0", verifier=verifier())
    # A rule that admits an identity whose token the server is not given.
    with pytest.raises(ValueError, match="admits bot, whose token this server does not check"):
        await start_server([Registration(servicer, add, SERVICE_NAME, ACCESS)], "127.0.0.1:0",
                           verifier=Verifier.of_tokens({ADMIN: TOKENS[ADMIN], TRAINER: TOKENS[TRAINER]}))


async def test_no_token_reaches_a_log_line_a_span_or_a_message(interactions_address, spans, caplog):
    caplog.set_level(logging.INFO)
    seen = []
    for identity in (None, ADMIN, BOT, TRAINER):
        async with channel(interactions_address, identity) as caller:
            stub = pb_grpc.InteractionsServiceStub(caller)
            try:
                await stub.ListInteractions(pb.ListInteractionsRequest(page_size=1))
            except grpc.aio.AioRpcError as refused:
                seen.append(str(refused) + str(refused.trailing_metadata()))
    async with grpc.aio.insecure_channel(interactions_address) as plain:
        try:
            await plain.unary_unary(LIST)(b"", metadata=(("authorization", f"Bearer {STRANGER}"),), timeout=10)
        except grpc.aio.AioRpcError as refused:
            seen.append(str(refused))
    codes = {record.__dict__.get("rpc.code") for record in caplog.records}
    assert {"OK", "UNAUTHENTICATED", "PERMISSION_DENIED"} <= codes  # every answer was logged...
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    finished = spans.get_finished_spans()
    assert any(span.name == LIST for span in finished)
    traced = "\n".join(f"{span.name} {dict(span.attributes)} {span.status} {span.events}" for span in finished)
    for token in (*TOKENS.values(), STRANGER):  # ...and traced, with no token anywhere
        assert token not in logged and token not in traced and token not in "".join(seen)

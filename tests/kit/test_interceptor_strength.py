"""What the kit's error interceptor tells a caller, for every kind of failure a
handler can end in, and what it logs: pinned where the mutation run
(scripts/mutate, docs/testing.md) found a change that no test noticed. The
handlers here are a test service's, on a real grpc.aio server with the
interceptor every Mend service uses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from mend.interactions.v1 import interactions_service_pb2 as pb
from mendkit import errors
from mendkit.interceptors import ErrorAndLogInterceptor

Message = pb.GetInteractionRequest  # any message does: the test service echoes its text field


def peer_error(code: grpc.StatusCode, details: str | None) -> grpc.aio.AioRpcError:
    """What a call to another service raises when that service fails."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


FAILURES: dict[str, Callable[[], BaseException]] = {
    "invalid": lambda: errors.InvalidArgument("entry.title", "is too long"),
    "not_found": lambda: errors.NotFound("entry 'x' does not exist"),
    "exists": lambda: errors.AlreadyExists("request_id r was already used"),
    "precondition": lambda: errors.FailedPrecondition("fix f is published"),
    "exhausted": lambda: errors.ResourceExhausted("the chat model is busy"),
    "unavailable": lambda: errors.Unavailable("the bot database is unreachable: OSError"),
    "denied": lambda: errors.PermissionDenied("not your conversation"),
    "mend": lambda: errors.MendError("a domain error of no particular kind"),
    "peer_unavailable": lambda: peer_error(grpc.StatusCode.UNAVAILABLE, "connection refused"),
    "peer_deadline": lambda: peer_error(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"),
    "peer_invalid": lambda: peer_error(grpc.StatusCode.INVALID_ARGUMENT, "query: is required"),
    "peer_not_found": lambda: peer_error(grpc.StatusCode.NOT_FOUND, None),
    "peer_denied": lambda: peer_error(grpc.StatusCode.PERMISSION_DENIED, "no"),
    "peer_long": lambda: peer_error(grpc.StatusCode.INTERNAL, "e" * 600),
    "unimplemented": lambda: NotImplementedError("m" * 300),
    "bug": lambda: KeyError("a bug"),
}


async def fail(request: Message, context) -> Message:
    raise FAILURES[request.interaction_id]()


async def echo(request: Message, context) -> Message:
    return Message(interaction_id=f"echo {request.interaction_id}")


async def metadata(request: Message, context) -> Message:
    """Answers with a header of the call: the handler gets the call's own context."""
    return Message(interaction_id=dict(context.invocation_metadata()).get("x-test-header", ""))


async def generated(request: Message, context) -> AsyncIterator[Message]:
    for n in range(3):
        yield Message(interaction_id=f"{request.interaction_id} {n}")
    if request.interaction_id in FAILURES:
        raise FAILURES[request.interaction_id]()


async def written(request: Message, context) -> None:
    """A streaming handler that sends with context.write, as the health library's Watch does."""
    for n in range(2):
        await context.write(Message(interaction_id=f"{request.interaction_id} written {n}"))


def unary(handler, deserializer=Message.FromString):
    return grpc.unary_unary_rpc_method_handler(handler, deserializer, Message.SerializeToString)


def streaming(handler):
    return grpc.unary_stream_rpc_method_handler(handler, Message.FromString, Message.SerializeToString)


def plain_deserializer(data: bytes) -> Message:  # a function, not a message class's bound FromString
    return Message.FromString(data)


@pytest.fixture(scope="module")
async def address() -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[ErrorAndLogInterceptor()])
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler("test.Failing", {
            "Fail": unary(fail), "Echo": unary(echo), "Plain": unary(echo, plain_deserializer),
            "Metadata": unary(metadata),
            "Generated": streaming(generated), "Written": streaming(written)}),
        # Services named like the health and reflection services, whose calls go unlogged.
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": unary(echo)}),
        grpc.method_handlers_generic_handler("grpc.reflection.v1alpha.ServerReflection", {"Info": unary(echo)}),
    ])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def channel(address) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(address) as opened:
        yield opened


def call(channel, method: str):
    return channel.unary_unary(method, request_serializer=Message.SerializeToString,
                               response_deserializer=Message.FromString)


async def status_of(channel, failure: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(channel, "/test.Failing/Fail")(Message(interaction_id=failure), timeout=10)
    return raised.value.code(), raised.value.details()


PEER = "a service this one depends on"
EXPECTED = {
    "invalid": (grpc.StatusCode.INVALID_ARGUMENT, "entry.title: is too long"),
    "not_found": (grpc.StatusCode.NOT_FOUND, "entry 'x' does not exist"),
    "exists": (grpc.StatusCode.ALREADY_EXISTS, "request_id r was already used"),
    "precondition": (grpc.StatusCode.FAILED_PRECONDITION, "fix f is published"),
    "exhausted": (grpc.StatusCode.RESOURCE_EXHAUSTED, "the chat model is busy"),
    "unavailable": (grpc.StatusCode.UNAVAILABLE, "the bot database is unreachable: OSError"),
    "denied": (grpc.StatusCode.PERMISSION_DENIED, "not your conversation"),
    "mend": (grpc.StatusCode.INTERNAL, "a domain error of no particular kind"),
    "peer_unavailable": (grpc.StatusCode.UNAVAILABLE, f"{PEER} is unavailable: UNAVAILABLE: connection refused"),
    "peer_deadline": (grpc.StatusCode.UNAVAILABLE, f"{PEER} is unavailable: DEADLINE_EXCEEDED: deadline"),
    "peer_invalid": (grpc.StatusCode.INVALID_ARGUMENT,
                     f"{PEER} refused the request: INVALID_ARGUMENT: query: is required"),
    "peer_not_found": (grpc.StatusCode.NOT_FOUND, f"{PEER} refused the request: NOT_FOUND: "),
    "peer_denied": (grpc.StatusCode.FAILED_PRECONDITION, f"{PEER} refused the request: PERMISSION_DENIED: no"),
    "peer_long": (grpc.StatusCode.FAILED_PRECONDITION, f"{PEER} refused the request: INTERNAL: " + "e" * 500),
    "unimplemented": (grpc.StatusCode.UNIMPLEMENTED, ("not implemented: " + "m" * 300)[:200]),
    "bug": (grpc.StatusCode.INTERNAL, "internal error; see the server log"),
}


@pytest.mark.parametrize("failure", list(EXPECTED))
async def test_each_failure_reaches_the_caller_as_its_status_and_message(channel, failure):
    assert await status_of(channel, failure) == EXPECTED[failure]


async def test_a_failed_call_to_another_service_is_logged_with_its_code_and_details(channel, caplog):
    caplog.set_level(logging.INFO, logger="mendkit.rpc")
    await status_of(channel, "peer_denied")
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == "a call to another service failed"
    assert (getattr(record, "rpc.peer_code"), record.error) == ("PERMISSION_DENIED", "no")


async def test_an_unexpected_error_is_logged_with_its_traceback(channel, caplog):
    caplog.set_level(logging.INFO, logger="mendkit.rpc")
    await status_of(channel, "bug")
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "unhandled error"
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)


async def test_every_call_is_logged_once_but_health_and_reflection(channel, caplog):
    caplog.set_level(logging.INFO, logger="mendkit.rpc")
    assert (await call(channel, "/test.Failing/Echo")(Message(interaction_id="hi"))).interaction_id == "echo hi"
    await call(channel, "/grpc.health.v1.Health/Check")(Message())
    await call(channel, "/grpc.reflection.v1alpha.ServerReflection/Info")(Message())
    stream = channel.unary_stream("/test.Failing/Generated", request_serializer=Message.SerializeToString,
                                  response_deserializer=Message.FromString)
    assert len([m async for m in stream(Message(interaction_id="s"))]) == 3
    finished = [(getattr(r, "rpc.method"), getattr(r, "rpc.code")) for r in caplog.records
                if r.getMessage() == "rpc finished"]
    assert finished == [("/test.Failing/Echo", "OK"), ("/test.Failing/Generated", "OK")]


@pytest.mark.parametrize("method", ["/test.Failing/Echo", "/test.Failing/Plain"])
async def test_request_bytes_that_do_not_parse_are_invalid_argument_naming_the_message(channel, method):
    garbage = channel.unary_unary(method, request_serializer=lambda raw: raw, response_deserializer=Message.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await garbage(b"\xff\xff\xff", timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    expected = "mend.interactions.v1.GetInteractionRequest" if method.endswith("Echo") else "request message"
    assert raised.value.details() == f"the request is not a valid {expected}: its bytes do not parse"
    # A handler whose deserializer is a plain function still answers what parses.
    assert (await call(channel, method)(Message(interaction_id="ok"))).interaction_id == "echo ok"


async def test_streaming_handlers_of_both_kinds_stream_what_they_send(channel):
    generated_stream = channel.unary_stream("/test.Failing/Generated", request_serializer=Message.SerializeToString,
                                            response_deserializer=Message.FromString)
    assert [m.interaction_id async for m in generated_stream(Message(interaction_id="g"))] == ["g 0", "g 1", "g 2"]
    written_stream = channel.unary_stream("/test.Failing/Written", request_serializer=Message.SerializeToString,
                                          response_deserializer=Message.FromString)
    assert [m.interaction_id async for m in written_stream(Message(interaction_id="w"))] == ["w written 0",
                                                                                             "w written 1"]


async def test_a_stream_that_fails_after_some_messages_ends_with_the_errors_status(channel):
    stream = channel.unary_stream("/test.Failing/Generated", request_serializer=Message.SerializeToString,
                                  response_deserializer=Message.FromString)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for message in stream(Message(interaction_id="exhausted"), timeout=10):
            received.append(message.interaction_id)
    assert received == ["exhausted 0", "exhausted 1", "exhausted 2"]
    assert (raised.value.code(), raised.value.details()) == EXPECTED["exhausted"]


async def test_a_handler_gets_the_calls_own_context(channel):
    answer = await call(channel, "/test.Failing/Metadata")(Message(), metadata=(("x-test-header", "from the caller"),))
    assert answer.interaction_id == "from the caller"


class _Aborted(Exception):
    pass


class _Context:
    """A servicer context whose abort ends the call, as grpc's does."""

    async def abort(self, code, details):
        raise _Aborted(code, details)


async def test_a_public_failure_is_logged_with_its_code_and_the_detail_and_answered_plainly(caplog):
    from mendkit.interceptors import PLAIN_MESSAGES, _abort

    caplog.set_level(logging.INFO, logger="mendkit.rpc")
    with pytest.raises(_Aborted) as aborted:
        await _abort(_Context(), grpc.StatusCode.UNAVAILABLE, "model server 10.0.0.7:8000 refused", public=True)
    assert aborted.value.args == (grpc.StatusCode.UNAVAILABLE, PLAIN_MESSAGES[grpc.StatusCode.UNAVAILABLE])
    (record,) = [r for r in caplog.records if r.getMessage() == "a public call failed"]
    assert (record.levelno, getattr(record, "rpc.code"), record.error) == (
        logging.WARNING, "UNAVAILABLE", "model server 10.0.0.7:8000 refused")

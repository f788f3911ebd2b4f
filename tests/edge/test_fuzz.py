"""Every RPC of every contract, fuzzed on the services as they run: requests
built by hypothesis from each method's request descriptor (any field, any
value its type allows: unknown enum numbers, out-of-range timestamps, huge and
hostile strings, odd maps and masks) and raw bytes that may not parse at all.
Whatever comes in, a call ends in time with a canonical status that is the
caller's to act on, never INTERNAL or UNKNOWN (a fault or a crash), and every
service is still serving afterwards.

The admin's token is sent, so a request reaches its handler rather than
stopping at the credential check. The health service's Watch streams until the
client leaves, and reflection is a bidirectional stream: Watch is checked on every
service below (and on shutdown in tests/kit/test_health.py), reflection by grpcurl."""

from __future__ import annotations

import os
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as tpb
from tests.support import bearer

SERVICES = {"bot": [bpb.DESCRIPTOR.services_by_name["ChatService"],
                    bpb.DESCRIPTOR.services_by_name["KnowledgeService"]],
            "interactions": [ipb.DESCRIPTOR.services_by_name["InteractionsService"]],
            "trainer": [tpb.DESCRIPTOR.services_by_name["TrainerService"]]}
HEALTH = descriptor_pool.Default().FindServiceByName("grpc.health.v1.Health")
METHODS = [(port, method) for port, services in SERVICES.items() for service in services
           for method in service.methods] + \
          [(port, HEALTH.methods_by_name[name]) for port in SERVICES for name in ("Check", "List")]
# A fault, a crash or a hang, whatever the request.
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
         grpc.StatusCode.DEADLINE_EXCEEDED}
# Requests per method; MEND_FUZZ_EXAMPLES=1000 runs a longer fuzz by hand.
EXAMPLES = int(os.environ.get("MEND_FUZZ_EXAMPLES", "40"))
# Long enough for a chat answered by the embedded defaults or a write of a few entries.
DEADLINE_S = 60

# Strings a hostile or careless client sends: empty, blank, huge, control
# characters, other scripts, ids of the wrong shape, SQL and path tricks.
HOSTILE_TEXT = ["", " ", "\t\n", "a" * 5000, "é" * 4001, "\x00", "\x00abc\x00", "\ud7ff\ue000\U0010ffff",
                "💥" * 300, "' OR 1=1 --", "../../etc/passwd", "%00%ff", "null", "-1", "0" * 64,
                "00000000-0000-0000-0000-000000000000", "b5f1e0b2-1f7e-4b55-9d3e-1c2f3a4b5c6d", "*", "/",
                "Bearer x", "\u202e", "SELECT pg_sleep(100)"]
_INTS = {FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
         FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
         FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
         FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
         FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1)}


def texts() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_TEXT))


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    # The edges, small numbers (page sizes, counts) and anything in between.
    return st.one_of(st.sampled_from([low, high, 0, 1, -1 if low < 0 else 2]), st.integers(-3, 1000)
                     .filter(lambda n: low <= n <= high), st.integers(low, high))


def value_of(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        return texts()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64)
    if field.type == FieldDescriptor.TYPE_ENUM:
        # Known values and numbers the contract does not define (proto3 enums are open).
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-5, 50))
    return integers(*_INTS[field.type])


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of this type with any subset of their fields set to anything their types allow."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth > 3:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            fields[field.name] = st.dictionaries(value_of(key, depth), value_of(value, depth), max_size=4)
        elif field.is_repeated:
            fields[field.name] = st.lists(value_of(field, depth), max_size=4)
        else:
            fields[field.name] = value_of(field, depth)
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: cls(**values))


def requests(method: Any) -> st.SearchStrategy[bytes]:
    """Serialized requests of the method's type, or bytes that may be anything."""
    built = messages(method.input_type).map(lambda message: message.SerializeToString())
    return st.one_of(built, built, built, st.binary(max_size=256))


def call(channel: grpc.Channel, method: Any, request: bytes) -> grpc.StatusCode:
    # A blocking channel: hypothesis drives plain functions, and the services are other processes.
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.server_streaming:
            for _ in channel.unary_stream(path)(request, metadata=bearer(), timeout=DEADLINE_S):
                pass
        else:
            channel.unary_unary(path)(request, metadata=bearer(), timeout=DEADLINE_S)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def channels(services):
    opened = {name: grpc.insecure_channel(f"127.0.0.1:{port}") for name, port in services.items()}
    yield opened
    for channel in opened.values():
        channel.close()


def test_every_service_of_every_contract_is_fuzzed():
    contracts = {service.full_name for module in (bpb, ipb, tpb)
                 for service in module.DESCRIPTOR.services_by_name.values()}
    assert {service.full_name for services in SERVICES.values() for service in services} == contracts


@pytest.mark.parametrize(("port", "method"), METHODS,
                         ids=[f"{m.containing_service.name}/{m.name}@{port}" for port, m in METHODS])
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_makes_a_service_fail_or_hang(channels, port, method, data):
    # Each example is a fresh call; the services keep what earlier ones wrote.
    request = data.draw(requests(method), label="request")
    code = call(channels[port], method, request)
    assert code not in NEVER, code
    for name, channel in channels.items():
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING, name


@pytest.mark.parametrize("port", list(SERVICES))
def test_health_watch_streams_serving_on_every_service(channels, port):
    """Client-side health checking watches each service: it must see SERVING, not an error."""
    watch = health_pb2_grpc.HealthStub(channels[port]).Watch(health_pb2.HealthCheckRequest(), timeout=10)
    try:
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        watch.cancel()

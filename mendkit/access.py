"""Who may call what, checked once for every call, before any handler runs.

Each service declares a rule for every method of its contract (`Registration.access`):
`PUBLIC` (anyone: what customers call through the gateway), `ADMIN_ONLY`, or
`allow(BOT, ...)` (those service identities, and admin). `AccessInterceptor`
reads the call's `authorization: Bearer <token>` metadata, asks the `Verifier`
whose token it is, and lets the call through or answers:

- UNAUTHENTICATED: a method that is not public, called without a token; or a
  token that is malformed or belongs to no one;
- PERMISSION_DENIED: a valid token whose identity the rule does not name; or a
  call the public gateway forwarded (`x-mend-caller: public`, see
  `mendkit.callers`) to a method that is not public: whatever token such a call
  carries is ignored, so the gateway only ever reaches public methods.

Health (`grpc.health.v1`) and reflection stay open, so probes and `grpcurl list`
work without a token. The caller's identity is available to the handler as
`caller()` (a vote by an admin needs no conversation token, say). Neither the
token nor anything derived from it is logged, traced or put into a message.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc.aio import ServerInterceptor

from mendkit.callers import marked_public
from mendkit.credentials import ADMIN, Verifier, is_token

# Open to every caller: probes, client-side health checking, `grpcurl list`.
OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                 "grpc.reflection.v1.ServerReflection")
AUTHORIZATION = "authorization"
NEEDS_TOKEN = "this method needs a credential: send the metadata `authorization: Bearer <token>`"
BAD_HEADER = "the authorization metadata must be one `Bearer <token>`"
UNKNOWN_TOKEN = "the bearer token is not valid here"
NOT_PUBLIC = "this method is not served to public callers"


@dataclass(frozen=True)
class Rule:
    """Who may call a method: anyone (`public`), or admin and `identities`."""

    public: bool = False
    identities: frozenset[str] = frozenset()

    def admits(self, identity: str) -> bool:
        return self.public or identity == ADMIN or identity in self.identities


PUBLIC = Rule(public=True)
ADMIN_ONLY = Rule()


def allow(*identities: str) -> Rule:
    """Admin and these service identities."""
    return Rule(identities=frozenset(identities))


@dataclass(frozen=True)
class Caller:
    """Who is calling: an identity whose token was checked, or None (anonymous);
    `via_gateway` when the public gateway forwarded the call."""

    identity: str | None = None
    via_gateway: bool = False


ANONYMOUS = Caller()
_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("mend_caller", default=None)


def caller() -> Caller:
    """The caller of the RPC being handled (anonymous outside one)."""
    return _CALLER.get() or ANONYMOUS


def is_admin() -> bool:
    return caller().identity == ADMIN


def method_rules(service_name: str, access: Mapping[str, Rule]) -> dict[str, Rule]:
    """`access` (method name -> rule) as full method paths, once it names every
    method of the service's contract and nothing else."""
    methods = {method.name for method in descriptor_pool.Default().FindServiceByName(service_name).methods}
    if missing := methods - set(access):
        raise ValueError(f"{service_name}: no access rule for {', '.join(sorted(missing))}")
    if unknown := set(access) - methods:
        raise ValueError(f"{service_name}: access rules for methods it does not have: {', '.join(sorted(unknown))}")
    return {f"/{service_name}/{name}": rule for name, rule in access.items()}


class _Refusal(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _identify(metadata: Any, verifier: Verifier) -> Caller:
    """The caller a call's metadata shows; a _Refusal when its credential is no good."""
    if marked_public(metadata):
        return Caller(via_gateway=True)  # whatever token came with it: a public caller stays one
    given = [value for key, value in metadata or () if key == AUTHORIZATION]
    if not given:
        return Caller()
    scheme, _, token = (given[0] if isinstance(given[0], str) else "").partition(" ")
    token = token.strip()
    if len(given) > 1 or scheme.lower() != "bearer" or not token:
        raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, BAD_HEADER)
    identity = verifier.identify(token) if is_token(token) else None
    if identity is None:
        raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, UNKNOWN_TOKEN)
    return Caller(identity)


def _decide(rule: Rule, who: Caller, method: str) -> None:
    if rule.public:
        return
    if who.via_gateway:
        raise _Refusal(grpc.StatusCode.PERMISSION_DENIED, NOT_PUBLIC)
    if who.identity is None:
        raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, NEEDS_TOKEN)
    if not rule.admits(who.identity):
        raise _Refusal(grpc.StatusCode.PERMISSION_DENIED,
                       f"the {who.identity} credential may not call {method.rsplit('/', 1)[-1]}")


def _service_of(method: str) -> str:
    return method.lstrip("/").split("/", 1)[0]


def _ignore_request(data: bytes) -> None:
    """A refused call's request is never parsed."""


def _refusing(handler: grpc.RpcMethodHandler[Any, Any], refusal: _Refusal) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as `handler` that answers `refusal`."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(refusal.code, refusal.message)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(refusal.code, refusal.message)
        yield  # never reached: abort raises

    serializer = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(refuse, _ignore_request, serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, _ignore_request, serializer)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(refuse, _ignore_request, serializer)
    return grpc.stream_stream_rpc_method_handler(refuse_stream, _ignore_request, serializer)


def _as(handler: grpc.RpcMethodHandler[Any, Any], who: Caller) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler`, with `caller()` saying `who` while it runs."""
    if handler.unary_unary:
        # grpc's stubs type handlers as synchronous; on a grpc.aio server they are coroutine functions.
        inner: Callable[..., Any] = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            reset = _CALLER.set(who)
            try:
                return await inner(request, context)
            finally:
                _CALLER.reset(reset)

        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer,
                                                   handler.response_serializer)
    if handler.unary_stream and inspect.isasyncgenfunction(handler.unary_stream):
        inner_stream: Callable[..., Any] = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # Set for the whole stream: each step of a generator runs in the task iterating it.
            _CALLER.set(who)
            async for response in inner_stream(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer,
                                                    handler.response_serializer)
    # A stream sent with `context.write` (the health library's Watch, which is open
    # anyway) and client- or bidi-streaming calls (none in Mend's contracts) as they are.
    return handler


class AccessInterceptor(ServerInterceptor):
    """Checks every call against `rules` (full method path -> Rule) with `verifier`.
    A method with no rule, other than those of the open services, is admin-only.

    Without a verifier it checks nothing and takes every caller for admin, except
    what the public gateway forwarded: the trust of an internal network, for the
    in-process servers of benchmarks (`start_server` without a verifier); a
    service process never runs so."""

    def __init__(self, rules: Mapping[str, Rule], verifier: Verifier | None) -> None:
        self._rules = dict(rules)
        self._verifier = verifier
        for method, rule in self._rules.items():
            if verifier is not None and (unknown := rule.identities - verifier.identities):
                raise ValueError(f"{method} admits {', '.join(sorted(unknown))}, whose token this server does not "
                                 "check")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or _service_of(method) in OPEN_SERVICES:
            return handler
        metadata = handler_call_details.invocation_metadata
        if self._verifier is None:
            return _as(handler, Caller(via_gateway=True) if marked_public(metadata) else Caller(ADMIN))
        try:
            who = _identify(metadata, self._verifier)
            _decide(self._rules.get(method, ADMIN_ONLY), who, method)
        except _Refusal as refusal:
            return _refusing(handler, refusal)
        return _as(handler, who)

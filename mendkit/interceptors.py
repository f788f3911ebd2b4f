"""Server interceptors: domain errors to canonical status codes (and request
bytes that do not parse to INVALID_ARGUMENT), with plain messages for callers
from the public gateway, and one log line per RPC.
grpc.aio interceptors see only the handler, so both wrap the handler's
behaviour function."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import ServerInterceptor
from opentelemetry import trace

from mendkit.callers import marked_public
from mendkit.errors import MendError

_log = logging.getLogger("mendkit.rpc")


class _Undecodable:
    """Stands in for a request whose bytes do not parse. grpc would answer such
    a call UNKNOWN before any handler runs; this lets the handler answer
    INVALID_ARGUMENT, naming the message it expected."""

    def __init__(self, expected: str) -> None:
        self.message = f"the request is not a valid {expected}: its bytes do not parse"


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)
    expected = getattr(getattr(message_class, "DESCRIPTOR", None), "full_name", "request message")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, or whatever a parser raises
            return _Undecodable(expected)

    return deserialize


async def _refuse_undecodable(request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, _Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)


# A call to another service that failed with one of these: that service is down or slow.
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Codes of another service's answer that are the caller's to see as they are.
_PASSED_ON = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


# Codes whose message is about the caller's own request (a field, an id, a
# right): a customer sees it as it is. Any other message may name a model
# server, a model or an upstream's words, which are for the operator's eyes.
_ABOUT_THE_REQUEST = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
                      grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                      grpc.StatusCode.OUT_OF_RANGE)
_TRY_AGAIN = "The assistant cannot answer right now; please try again in a moment."
PLAIN_MESSAGES = {grpc.StatusCode.UNAVAILABLE: _TRY_AGAIN, grpc.StatusCode.DEADLINE_EXCEEDED: _TRY_AGAIN,
                  grpc.StatusCode.RESOURCE_EXHAUSTED: "The assistant is busy; please try again in a moment."}
PLAIN_MESSAGE = "Something went wrong on our side; please try again later."


def _trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, detail: str, public: bool) -> None:
    """Ends the call with `code`: with `detail`, or for a caller from the public
    gateway with a plain message and the trace id, the detail going to the log
    (whose line carries the same trace id)."""
    if not public or code in _ABOUT_THE_REQUEST:
        await context.abort(code, detail)
    _log.warning("a public call failed", extra={"rpc.code": code.name, "error": detail})
    trace_id = _trace_id()
    plain = PLAIN_MESSAGES.get(code, PLAIN_MESSAGE)
    await context.abort(code, f"{plain} (trace {trace_id})" if trace_id else plain)


async def _abort_for(error: BaseException, context: grpc.aio.ServicerContext, public: bool) -> None:
    if isinstance(error, MendError):
        await _abort(context, error.code, error.message, public)
    if isinstance(error, grpc.aio.AioRpcError):
        # A service this one called failed: UNAVAILABLE (callers retry) when it could not
        # be reached in time; otherwise its refusal, with its details, rather than INTERNAL.
        code, details = error.code(), (error.details() or "")[:500]
        _log.warning("a call to another service failed", extra={"rpc.peer_code": code.name, "error": details})
        if code in _UNREACHABLE:
            await _abort(context, grpc.StatusCode.UNAVAILABLE,
                         f"a service this one depends on is unavailable: {code.name}: {details}", public)
        await _abort(context, code if code in _PASSED_ON else grpc.StatusCode.FAILED_PRECONDITION,
                     f"a service this one depends on refused the request: {code.name}: {details}", public)
    if isinstance(error, NotImplementedError):
        # How a generated servicer base class says a method is not implemented
        # (e.g. the health library's List): that is UNIMPLEMENTED, not a fault.
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"not implemented: {error}"[:200])
    _log.exception("unhandled error")
    await _abort(context, grpc.StatusCode.INTERNAL, "internal error; see the server log", public)


def _log_rpc(method: str, started: float, context: grpc.aio.ServicerContext) -> None:
    if not _log.isEnabledFor(logging.INFO):
        return
    code = context.code() or grpc.StatusCode.OK
    if isinstance(code, int):  # context.code() may hold a raw integer after abort
        code = next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    _log.info(
        "rpc finished",
        extra={"rpc.method": method, "rpc.code": code.name,
               "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
    )


class _WriteToQueue:
    """The call's context, but `write` hands each message to the wrapping generator."""

    def __init__(self, context: grpc.aio.ServicerContext, queue: asyncio.Queue[Any]) -> None:
        self._context = context
        self._queue = queue

    async def write(self, message: Any) -> None:
        await self._queue.put(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _writes_as_yields(
    handler: Callable[[Any, Any], Awaitable[None]],
) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
    """A `context.write` streaming handler as an async generator of its messages."""

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)  # the handler waits for each send
        task = asyncio.ensure_future(handler(request, _WriteToQueue(context, queue)))
        getting: asyncio.Future[Any] | None = None
        try:
            while True:
                getting = asyncio.ensure_future(queue.get())
                await asyncio.wait({getting, task}, return_when=asyncio.FIRST_COMPLETED)
                if getting.done():
                    yield getting.result()
                    continue
                getting.cancel()
                while not queue.empty():
                    yield queue.get_nowait()
                task.result()  # the handler's own error, if it failed
                return
        finally:
            task.cancel()  # the client went away, or the stream ended
            if getting is not None:
                getting.cancel()

    return stream


class ErrorAndLogInterceptor(ServerInterceptor):
    """Turns `MendError`s into their status code, a failed call to another service
    into UNAVAILABLE or that service's refusal, and anything else into INTERNAL
    (never a crash or a hung call), then logs the method, code and duration."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        public = marked_public(handler_call_details.invocation_metadata)
        # Health checks would drown every other line; they are not logged.
        quiet = method.startswith("/grpc.health.") or method.startswith("/grpc.reflection.")

        if handler.unary_unary:
            # grpc's stubs type handlers as synchronous; on a grpc.aio server they are coroutine functions.
            inner_uu: Callable[..., Any] = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    await _refuse_undecodable(request, context)
                    return await inner_uu(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as error:  # noqa: BLE001 - every error must map to a status
                    await _abort_for(error, context, public)
                finally:
                    if not quiet:
                        _log_rpc(method, started, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, _tolerant(handler.request_deserializer), handler.response_serializer
            )

        if handler.unary_stream:
            inner_us: Callable[..., Any] = handler.unary_stream
            # A streaming handler is an async generator, or a coroutine that sends with
            # `context.write` (the health library's Watch); the tracing instrumentation
            # around this interceptor iterates, so both are served as a generator.
            stream = inner_us if inspect.isasyncgenfunction(inner_us) else _writes_as_yields(inner_us)

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    await _refuse_undecodable(request, context)
                    async for response in stream(request, context):
                        yield response
                except grpc.aio.AbortError:
                    raise
                except Exception as error:  # noqa: BLE001 - every error must map to a status
                    await _abort_for(error, context, public)
                finally:
                    if not quiet:
                        _log_rpc(method, started, context)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, _tolerant(handler.request_deserializer), handler.response_serializer
            )

        # Client- and bidi-streaming RPCs: none in Mend's contracts except reflection.
        return handler

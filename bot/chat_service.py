"""RPC handlers of ChatService (customer-facing): validate, run the chatbot."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.chat import Chatbot
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import validation

MAX_QUERY_CHARS = validation.MAX_QUESTION_CHARS


def _checked(request: pb.ChatRequest | pb.ChatStreamRequest):  # noqa: ANN202
    query = validation.text("query", request.query, max_chars=MAX_QUERY_CHARS, required=True)
    conversation_id = validation.text("conversation_id", request.conversation_id, max_chars=128)
    request_id = validation.uuid_field("request_id", request.request_id, required=False)
    return query, conversation_id, request_id


class ChatService(pb_grpc.ChatServiceServicer):
    def __init__(self, chatbot: Chatbot) -> None:
        self._chatbot = chatbot

    async def Chat(self, request: pb.ChatRequest, context: object) -> pb.ChatResponse:
        response = pb.ChatResponse()
        parts: list[str] = []
        async for event in self._chatbot.answer(*_checked(request)):
            kind = event.WhichOneof("event")
            if kind == "start":
                response.interaction_id = event.start.interaction_id
                response.conversation_id = event.start.conversation_id
                response.sources.extend(event.start.sources)
            elif kind == "delta":
                parts.append(event.delta.text)
            else:
                response.grounded = event.end.grounded
                response.generation.CopyFrom(event.end.generation)
        response.answer = "".join(parts).strip()
        if not response.grounded:
            del response.sources[:]
        return response

    async def ChatStream(self, request: pb.ChatStreamRequest, context: object) -> AsyncIterator[pb.ChatStreamResponse]:
        checked = _checked(request)
        async for event in self._chatbot.answer(*checked):
            yield event

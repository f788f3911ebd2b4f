"""RPC handlers of ChatService (customer-facing): validate, run the chatbot,
convert its answer with `bot.messages`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc

from bot import messages
from bot.chat import Chatbot
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import validation

MAX_QUERY_CHARS = validation.MAX_QUESTION_CHARS


def _checked(request: pb.ChatRequest | pb.ChatStreamRequest) -> tuple[str, str, uuid.UUID | None]:
    query = validation.text("query", request.query, max_chars=MAX_QUERY_CHARS, required=True)
    conversation_id = validation.text("conversation_id", request.conversation_id, max_chars=128)
    request_id = validation.uuid_field("request_id", request.request_id, required=False)
    return query, conversation_id, request_id


class ChatService(pb_grpc.ChatServiceServicer):
    def __init__(self, chatbot: Chatbot) -> None:
        self._chatbot = chatbot

    async def Chat(self, request: pb.ChatRequest, context: grpc.aio.ServicerContext) -> pb.ChatResponse:
        return messages.chat_response(await self._chatbot.reply(*_checked(request)))

    async def ChatStream(self, request: pb.ChatStreamRequest,
                         context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ChatStreamResponse]:
        checked = _checked(request)
        async for event in self._chatbot.answer(*checked):
            yield messages.stream_event(event)

"""RPC handlers of ChatService (customer-facing): validate, make sure the
caller may continue the conversation it names, run the chatbot, convert its
answer with `bot.messages`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import cast

import grpc

from bot import messages
from bot.chat import Chatbot
from bot.exchange import Event, Start
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import access, validation
from mendkit.conversation_tokens import ConversationTokens
from mendkit.errors import PermissionDenied

MAX_QUERY_CHARS = validation.MAX_QUESTION_CHARS
NOT_YOURS = "this conversation belongs to another client; start a new one"
# Customers chat, through the gateway: no credential (a conversation's own token guards its turns).
ACCESS = {"Chat": access.PUBLIC, "ChatStream": access.PUBLIC}


def _checked(request: pb.ChatRequest | pb.ChatStreamRequest) -> tuple[str, str, uuid.UUID | None]:
    query = validation.text("query", request.query, max_chars=MAX_QUERY_CHARS, required=True)
    conversation_id = validation.text("conversation_id", request.conversation_id, max_chars=128)
    request_id = validation.uuid_field("request_id", request.request_id, required=False)
    return query, conversation_id, request_id


class ChatService(pb_grpc.ChatServiceServicer):
    def __init__(self, chatbot: Chatbot, tokens: ConversationTokens | None = None) -> None:
        self._chatbot = chatbot
        # None: tokens this servicer alone accepts (a lone bot in a test); the
        # service is given the secret it shares with interactions.
        self._tokens = tokens or ConversationTokens.random()

    async def _owned(self, request: pb.ChatRequest | pb.ChatStreamRequest) -> tuple[str, str, uuid.UUID | None]:
        """The checked request, once the conversation it names is the caller's:
        one with turns already (besides this request's own, for a retry) needs
        its token, so another client's turns never reach the prompt."""
        query, conversation_id, request_id = _checked(request)
        owned = self._tokens.valid(conversation_id, request.conversation_token)
        if conversation_id and not owned and await self._chatbot.conversations.started(conversation_id, request_id):
            raise PermissionDenied(NOT_YOURS)
        return query, conversation_id, request_id

    def _token(self, named: str, answered: str) -> str:
        """The token of the conversation answered in. A request id replayed from
        another conversation than the one the request named is refused."""
        if named and answered != named:
            raise PermissionDenied(NOT_YOURS)
        return self._tokens.issue(answered)

    async def Chat(self, request: pb.ChatRequest, context: grpc.aio.ServicerContext) -> pb.ChatResponse:
        query, conversation_id, request_id = await self._owned(request)
        exchange = await self._chatbot.reply(query, conversation_id, request_id)
        return messages.chat_response(exchange, self._token(conversation_id, exchange.conversation_id))

    async def ChatStream(self, request: pb.ChatStreamRequest,
                         context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ChatStreamResponse]:
        query, conversation_id, request_id = await self._owned(request)
        # Closed at once when a refusal ends the stream, so the request id's claim is let go.
        answer = cast(AsyncGenerator[Event, None], self._chatbot.answer(query, conversation_id, request_id))
        async with aclosing(answer) as events:
            async for event in events:
                token = self._token(conversation_id, event.conversation_id) if isinstance(event, Start) else ""
                yield messages.stream_event(event, token)

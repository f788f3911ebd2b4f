"""Fixtures for the bot's tests alone (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import grpc
import pytest

from mendkit.server import Registration, start_server
from tests.support import make_chatbot


@pytest.fixture
async def chat(knowledge_index, chat_model, interactions_address, pool):
    """A ChatService stub over a real channel; the bot logs to the real interactions service."""
    from bot.__main__ import CHAT_SERVICE
    from bot.chat_service import ChatService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    await knowledge_index.pool.execute("TRUNCATE knowledge_entries CASCADE; TRUNCATE chat_log")
    await pool.execute("TRUNCATE interactions")
    chatbot, interactions_channel = make_chatbot(knowledge_index, chat_model, interactions_address)
    running = await start_server(
        [Registration(ChatService(chatbot), bot_grpc.add_ChatServiceServicer_to_server, CHAT_SERVICE)], "127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield bot_grpc.ChatServiceStub(channel), chatbot
    await running.stop(1)
    await interactions_channel.close()

"""Fixtures for the bot's tests alone (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from mendkit.server import Registration
from tests.support import channel, make_chatbot, serve


@pytest.fixture
async def chat(knowledge_index, chat_model, interactions_address, pool):
    """A ChatService stub over a real channel, as a customer calls (no token);
    the bot logs to the real interactions service (with the bot's token)."""
    from bot.__main__ import CHAT_SERVICE
    from bot.chat_service import ACCESS, ChatService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc

    await knowledge_index.pool.execute("TRUNCATE knowledge_entries, knowledge_revisions CASCADE; TRUNCATE chat_log")
    await pool.execute("TRUNCATE interactions")
    chatbot, interactions_channel = make_chatbot(knowledge_index, chat_model, interactions_address)
    running = await serve(Registration(ChatService(chatbot), bot_grpc.add_ChatServiceServicer_to_server, CHAT_SERVICE,
                                       ACCESS))
    async with channel(f"127.0.0.1:{running.port}", identity=None) as customer:
        yield bot_grpc.ChatServiceStub(customer), chatbot
    await running.stop(1)
    await interactions_channel.close()

"""The history of a conversation: its last exchanges, which the prompt carries
so that a follow-up question is read in context, and whether it has begun (then
only its owner may continue it). They are the outbox's rows in `chat_log`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from mendkit.database import database_errors


@dataclass(frozen=True)
class Turn:
    query: str
    answer: str


class Conversations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def history(self, conversation_id: str, turns: int) -> list[Turn]:
        """The conversation's last `turns` exchanges, oldest first."""
        async with database_errors("bot"):
            rows = await self._pool.fetch(
                """SELECT query, answer FROM chat_log WHERE conversation_id = $1
                   ORDER BY created_at DESC LIMIT $2""", conversation_id, turns)
        return [Turn(row["query"], row["answer"]) for row in reversed(rows)]

    async def started(self, conversation_id: str, besides: uuid.UUID | None = None) -> bool:
        """Whether the conversation has turns already, other than the one logged
        under `besides` (a retried request's own earlier answer)."""
        async with database_errors("bot"):
            return bool(await self._pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM chat_log WHERE conversation_id = $1
                                  AND interaction_id IS DISTINCT FROM $2)""", conversation_id, besides))

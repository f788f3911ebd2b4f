"""The history of a conversation: its last exchanges whole, which the prompt
carries so that a follow-up question is read in context, a bounded summary of
the exchanges before them (what was asked, and which entry answered), and
whether it has begun (then only its owner may continue it). They are the
outbox's rows in `chat_log`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from bot import messages
from bot.exchange import Source
from mendkit.database import database_errors

# The summary covers at most this many exchanges before the last turns, in at
# most this many characters (the newest kept): a long conversation costs the
# prompt no more than a short one.
SUMMARY_TURNS = 10
SUMMARY_CHARS = 600


@dataclass(frozen=True)
class Turn:
    query: str
    answer: str
    # The entries the answer came from, best first; none when the bot did not know.
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class History:
    """What the next answer knows of the conversation."""

    # The last exchanges, oldest first.
    turns: tuple[Turn, ...] = ()
    # The exchanges before those, oldest first, bounded (SUMMARY_TURNS, and
    # SUMMARY_CHARS of `summary`'s lines, each question with its entry's title).
    earlier: tuple[Turn, ...] = ()

    def summary(self) -> str:
        """The earlier exchanges in a line: each question and the entry that answered it."""
        return "; ".join(_line(turn) for turn in self.earlier)


def _line(turn: Turn) -> str:
    if not turn.sources:
        answered = "not answered"
    else:
        answered = f"answered from: {turn.sources[0].title}" if turn.sources[0].title else "answered"
    return f'"{turn.query}" ({answered})'


class Conversations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def history(self, conversation_id: str, turns: int) -> History:
        """The conversation's last `turns` exchanges, and the summary's before them."""
        async with database_errors("bot"):
            rows = await self._pool.fetch(
                """SELECT query, response FROM chat_log WHERE conversation_id = $1
                   ORDER BY created_at DESC LIMIT $2""", conversation_id, turns + SUMMARY_TURNS)
        logged = [messages.logged_exchange(row["query"], row["response"]) for row in rows]
        last = [Turn(exchange.query, exchange.answer, exchange.sources) for exchange in logged[:turns]]
        earlier: list[Turn] = []
        chars = 0
        for exchange in logged[turns:]:
            turn = Turn(exchange.query, "", exchange.sources)
            chars += len(_line(turn))
            if chars > SUMMARY_CHARS:
                break
            earlier.append(turn)
        return History(tuple(reversed(last)), tuple(reversed(earlier)))

    async def started(self, conversation_id: str, besides: uuid.UUID | None = None) -> bool:
        """Whether the conversation has turns already, other than the one logged
        under `besides` (a retried request's own earlier answer)."""
        async with database_errors("bot"):
            return bool(await self._pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM chat_log WHERE conversation_id = $1
                                  AND interaction_id IS DISTINCT FROM $2)""", conversation_id, besides))

"""Answering by generation: a chat model writes the answer from the retrieved
facts, and each sentence is checked against them (bot/support.py) before it is
streamed. A sentence the facts do not support ends the answer there; when it is
the first, the best entry's own text is served instead (bot/quoting.py), so a
customer never reads a claim the knowledge does not make."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from bot import persona as prompts
from bot.conversations import History
from bot.exchange import Tally
from bot.knowledge import Hit
from bot.persona import Persona
from bot.quoting import Quoting
from bot.support import Support, claims
from mendkit.personal_data import mask
from mendmodels.chat.base import ChatModel, Message

_log = logging.getLogger("bot.generating")
# A sentence ends at ., ! or ? followed by a space, or at a line break.
_END = re.compile(r"[.!?](?=\s)\s*|\n+")
# The model saying it cannot answer from the facts.
DONT_KNOW = re.compile(r"\b(?:don'?t|do not|doesn'?t|does not) (?:know|have (?:that|this|any) information)\b"
                       r"|\bnot sure\b", re.IGNORECASE)


class Generating:
    def __init__(self, model: ChatModel, persona: Persona, fallback: Quoting, max_tokens: int = 200) -> None:
        self.model = model
        self.persona = persona
        self.fallback = fallback
        self.max_tokens = max_tokens

    async def pieces(self, query: str, hits: Sequence[Hit], history: History,
                     tally: Tally) -> AsyncIterator[str]:
        support = Support([f"{hit.entry.title}. {hit.entry.content}" for hit in hits], query, self.persona.brand)
        said = False
        declined = False
        buffer = ""
        # Sentences with nothing to check ("Yes!", "Of course.") wait for the next one
        # that has: "Yes!" before an unsupported sentence is itself the claim.
        held: list[str] = []
        stream = self.model.stream(self._prompt(query, hits, history), self.max_tokens)
        try:
            async for piece in _sentences(stream, tally):
                buffer = piece
                if not said and DONT_KNOW.search(piece):
                    declined = True  # the model found no answer in the facts: so does the bot
                    break
                if not support.supports(piece):
                    tally.unsupported = True
                    break
                if not claims(piece):
                    held.append(piece)
                    continue
                tally.model = self.model.model_id
                said = True
                for earlier in held:
                    yield earlier
                held.clear()
                yield piece
            else:
                buffer = ""
                if said:
                    for earlier in held:  # a closing "Happy to help!"
                        yield earlier
        finally:
            # Stops the generation when the answer ends early (an unsupported sentence).
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        if declined:
            _log.info("the model said the facts do not answer the question")
            return
        if tally.unsupported or not said:
            _log.info("a generated sentence was not supported by the sources; the answer ends before it",
                      extra={"replaced": not said, "chars": len(buffer)})
            if not said:
                async for piece in self.fallback.pieces(query, hits, history):
                    yield piece


    def _prompt(self, query: str, hits: Sequence[Hit], history: History) -> list[Message]:
        """The chat for the model; for a model off this machine with the customer's own
        words (this question and the earlier ones) masked. The knowledge stays as it is:
        the brand's own contact details are its to give."""
        if self.model.leaves_the_machine:
            query = mask(query)
            history = History(tuple(replace(turn, query=mask(turn.query)) for turn in history.turns),
                              tuple(replace(turn, query=mask(turn.query)) for turn in history.earlier))
        return prompts.messages(self.persona, hits, history, query)


async def _sentences(stream: AsyncIterator[str], tally: Tally) -> AsyncIterator[str]:
    """The model's text cut at sentence ends, each sentence with the space after it."""
    buffer = ""
    async for piece in stream:
        tally.output_tokens += 1
        buffer += piece
        while (end := _END.search(buffer)) is not None and end.end() < len(buffer):
            yield buffer[:end.end()]
            buffer = buffer[end.end():]
    if buffer.strip():
        yield buffer

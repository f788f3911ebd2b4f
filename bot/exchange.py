"""What answering a question produces, in the bot's own terms: the events of an
answer as it streams (`Start`, then `Delta`s, then `End`) and the `Exchange` it
ends with. `bot.messages` alone turns these into wire messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """A knowledge entry an answer was drawn from."""

    entry_id: str
    title: str
    snippet: str
    score: float
    source: str


@dataclass(frozen=True)
class Facts:
    """How an answer was generated (zeros when no model was asked)."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    retrieval_ms: int = 0
    time_to_first_token_ms: int = 0
    total_ms: int = 0


@dataclass
class Tally:
    """What writing one answer cost, filled in while it streams: the model that
    wrote what was streamed (empty when the knowledge was quoted), its pieces,
    and whether a generated sentence was dropped as unsupported."""

    model: str = ""
    output_tokens: int = 0
    unsupported: bool = False


@dataclass(frozen=True)
class Exchange:
    """One answered question, as logged and as every client sees it."""

    interaction_id: uuid.UUID
    conversation_id: str
    query: str
    answer: str
    # Only when grounded: an answer the bot did not draw from knowledge names none.
    sources: tuple[Source, ...]
    grounded: bool
    facts: Facts
    # The answer may not be what was asked: it says so, and clients offer a
    # person. Either the best entry matched only loosely (Relevance.sure) or,
    # `from_topic`, the answer came from the conversation's topic (bot/chat.py,
    # `pointed_at`), not from an entry chosen for the question itself: the
    # trainer reads only that (Interaction.unsure).
    unsure: bool = False
    from_topic: bool = False


@dataclass(frozen=True)
class Start:
    interaction_id: uuid.UUID
    conversation_id: str
    # The entries retrieved, sent before generation starts.
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class End:
    """The last event: the exchange, logged by the time it is yielded."""

    exchange: Exchange

    @property
    def grounded(self) -> bool:
        return self.exchange.grounded

    @property
    def facts(self) -> Facts:
        return self.exchange.facts


Event = Start | Delta | End

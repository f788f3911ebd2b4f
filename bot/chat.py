"""Answering one question: retrieve, decide whether the knowledge is relevant
enough, generate (streamed), log the exchange. Chat and ChatStream both run
`Chatbot.answer`, so the two can never disagree."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from opentelemetry import trace

from bot import persona as prompts
from bot.conversations import Conversations
from bot.dedup import Dedup
from bot.exchange import Delta, End, Event, Exchange, Facts, Source, Start
from bot.knowledge import Hit, Knowledge
from bot.outbox import Outbox
from bot.persona import Persona
from mendkit.errors import AlreadyExists
from mendmodels.chat.base import ChatModel

_tracer = trace.get_tracer("mend.bot")
SNIPPET_CHARS = 500


@dataclass(frozen=True)
class Retrieval:
    k: int = 3
    # Cosine similarity below which a hit is not relevant enough to answer from.
    threshold: float = 0.45
    history_turns: int = 3
    max_answer_tokens: int = 200


def _source(hit: Hit) -> Source:
    return Source(entry_id=hit.entry.entry_id, title=hit.entry.title, snippet=hit.entry.content[:SNIPPET_CHARS],
                  score=hit.score, source=hit.entry.source)


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


def _trace_id() -> str:
    """The trace answering now: the interaction is recorded under it."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _replayed(query: str, logged: Exchange) -> list[Event]:
    if logged.query != query:
        raise AlreadyExists(f"request_id {logged.interaction_id} was already used for a different query")
    return [Start(logged.interaction_id, logged.conversation_id, logged.sources), Delta(logged.answer), End(logged)]


class Chatbot:
    def __init__(self, knowledge: Knowledge, model: ChatModel, persona: Persona, outbox: Outbox, dedup: Dedup,
                 conversations: Conversations, retrieval: Retrieval = Retrieval(), record_text: bool = False) -> None:
        self.knowledge = knowledge
        self.model = model
        self.persona = persona
        self.outbox = outbox
        self.dedup = dedup
        self.conversations = conversations
        self.retrieval = retrieval
        # Chat text goes into span attributes only when explicitly enabled.
        self.record_text = record_text

    async def answer(self, query: str, conversation_id: str, request_id: uuid.UUID | None) -> AsyncIterator[Event]:
        """The events of one answer: start, deltas, end. A request id is
        answered once: a retry, even one arriving while the first call is still
        answering, replays the logged answer."""
        if request_id is None:
            async for event in self._answer(query, conversation_id, uuid.uuid4()):
                yield event
            return
        async with self.dedup.answering(request_id) as logged:
            if logged is not None:
                for event in _replayed(query, logged):
                    yield event
                return
            async for event in self._answer(query, conversation_id, request_id):
                yield event

    async def reply(self, query: str, conversation_id: str, request_id: uuid.UUID | None) -> Exchange:
        """The whole answer at once: the exchange `answer` ends with. The events
        are run to the end, so the request id is let go before this returns."""
        exchange = None
        async for event in self.answer(query, conversation_id, request_id):
            if isinstance(event, End):
                exchange = event.exchange
        if exchange is None:
            raise RuntimeError("an answer ended without its End event")
        return exchange

    async def _answer(self, query: str, conversation_id: str, interaction_id: uuid.UUID) -> AsyncIterator[Event]:
        conversation_id = conversation_id or str(uuid.uuid4())
        started = time.perf_counter()
        with _tracer.start_as_current_span("mend.retrieval") as span:
            found = await self.knowledge.search(query, self.retrieval.k, ["published"], None)
            hits = [hit for hit in found if hit.score >= self.retrieval.threshold]
            span.set_attribute("mend.retrieval.k", self.retrieval.k)
            span.set_attribute("mend.retrieval.hits", len(hits))
            span.set_attribute("mend.retrieval.best_score", found[0].score if found else 0.0)
        retrieval_ms = _ms(started)
        sources = tuple(_source(hit) for hit in hits)
        yield Start(interaction_id, conversation_id, sources)

        pieces: list[str] = []
        first_token_ms = 0
        if hits:
            history = await self.conversations.history(conversation_id, self.retrieval.history_turns)
            with _tracer.start_as_current_span("mend.llm.generate") as span:
                span.set_attribute("mend.llm.model", self.model.model_id)
                if self.record_text:
                    span.set_attribute("mend.chat.query", query)
                async for piece in self.model.stream(prompts.messages(self.persona, hits, history, query),
                                                     self.retrieval.max_answer_tokens):
                    if not piece:
                        continue
                    if not pieces:
                        first_token_ms = _ms(started)
                    pieces.append(piece)
                    yield Delta(piece)
                span.set_attribute("mend.llm.output_tokens", len(pieces))
        answer = "".join(pieces).strip()
        grounded = bool(hits) and bool(answer)
        if not grounded:
            # Nothing relevant (or the model said nothing): say so rather than guess.
            answer = self.persona.dont_know()
            first_token_ms = first_token_ms or _ms(started)
            yield Delta(answer)
        facts = Facts(model=self.model.model_id if hits else "", output_tokens=len(pieces), retrieval_ms=retrieval_ms,
                      time_to_first_token_ms=first_token_ms, total_ms=_ms(started))
        exchange = Exchange(interaction_id=interaction_id, conversation_id=conversation_id, query=query,
                            answer=answer, sources=sources if grounded else (), grounded=grounded, facts=facts)
        await self.outbox.send(exchange, _trace_id())
        yield End(exchange)

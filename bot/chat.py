"""Answering one question: retrieve (reading a follow-up in the light of the
conversation), decide whether the knowledge is relevant enough, answer from it
(quoted or generated, streamed), log the exchange. Chat and ChatStream both run
`Chatbot.answer`, so the two can never disagree."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import trace

from bot.conversations import Conversations, Turn
from bot.dedup import Dedup
from bot.exchange import Delta, End, Event, Exchange, Facts, Source, Start, Tally
from bot.knowledge import Hit, Knowledge, Query
from bot.outbox import Outbox
from bot.persona import Persona
from bot.relevance import Relevance
from bot.support import STEM, content_words
from mendkit.errors import AlreadyExists

_tracer = trace.get_tracer("mend.bot")
SNIPPET_CHARS = 500
# Hits of each of a follow-up's two searches, so that most entries one finds
# have a score from the other too.
CONVERSATION_K = 10
# A follow-up the entry does not cover on its own score answers from it only if
# the entry mentions at least this share of the follow-up's own content words.
FOLLOW_UP_WORDS = 0.5


@dataclass(frozen=True)
class Retrieval:
    k: int = 3
    # Whether the hits cover the question (bot/relevance.py: a cut that rises
    # with an entry's phrasings, chosen on clinc150).
    relevance: Relevance = Relevance()
    history_turns: int = 3
    # A follow-up is also searched with the conversation's last questions before
    # it, at most this many characters of them (the newest kept).
    context_chars: int = 600


class Answerer(Protocol):
    """Writes an answer from relevant hits (best first): bot/quoting.py or bot/generating.py."""

    def pieces(self, query: str, hits: Sequence[Hit], history: Sequence[Turn], tally: Tally) -> AsyncIterator[str]:
        """The answer's text as it is written, filling in `tally`."""


def context_query(query: str, history: Sequence[Turn], chars: int) -> str:
    """The question with the conversation's earlier questions before it, newest
    kept, bounded: what "and do you pay for the return shipping?" means."""
    context = ""
    for turn in reversed(history):
        if len(context) + len(turn.query) + 1 > chars:
            break
        context = f"{turn.query} {context}"
    return f"{context}{query}"


def combined(alone: Sequence[Hit], in_context: Sequence[Hit]) -> list[Hit]:
    """Each entry either search found, scored the mean of its two scores, best
    first. An entry one search did not return scores there as that search's
    last hit (an upper bound on its score)."""
    floor_alone = alone[-1].score if alone else 0.0
    floor_context = in_context[-1].score if in_context else 0.0
    scores_alone = {hit.entry.entry_id: hit for hit in alone}
    scores_context = {hit.entry.entry_id: hit for hit in in_context}
    merged = []
    for entry_id in scores_alone.keys() | scores_context.keys():
        one, other = scores_alone.get(entry_id), scores_context.get(entry_id)
        hit = one or other
        assert hit is not None
        score = ((one.score if one else floor_alone) + (other.score if other else floor_context)) / 2
        merged.append(Hit(hit.entry, score, hit.matched_key))
    return sorted(merged, key=lambda hit: (-hit.score, hit.entry.entry_id))


def mentions(hit: Hit, query: str) -> float:
    """The share of the question's content words (stems) the entry's text has."""
    words = {word[:STEM] for word in content_words(query)}
    if not words:
        return 0.0  # "thanks!" names no topic: the earlier answer is no answer to it
    entry = hit.entry
    text = {word[:STEM] for word in content_words(" ".join([entry.title, entry.content, *entry.questions]))}
    return len(words & text) / len(words)


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
    def __init__(self, knowledge: Knowledge, answerer: Answerer, persona: Persona, outbox: Outbox, dedup: Dedup,
                 conversations: Conversations, retrieval: Retrieval = Retrieval(), record_text: bool = False) -> None:
        self.knowledge = knowledge
        self.answerer = answerer
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

    def relevant(self, found: Sequence[Hit]) -> list[Hit]:
        return self.retrieval.relevance.relevant(found)

    async def retrieve(self, query: str, history: Sequence[Turn]) -> tuple[list[Hit], list[Hit]]:
        """What the question finds (best first), and the relevant part of it."""
        statuses = ["published"]
        if not history:
            found = await self.knowledge.search(query, self.retrieval.k, statuses, None)
            return found, self.relevant(found)
        # In a conversation the question is searched on its own and with its earlier
        # questions before it (one embedding call), and each entry scores the mean
        # of the two: a follow-up ("and do you pay for the return shipping?") finds
        # the entry that fits both it and its topic, where alone it found another
        # topic's near-match, while a new topic still wins on its own score. But an
        # off-topic question after a grounded one ("can you tune my bicycle?" after
        # shipping to Norway) scores well with the earlier topic too: an entry the
        # question does not pass the rule for on its own answers only if it
        # mentions most of the question's own words ("is that free?" -> "free"),
        # which an elliptic follow-up has few of and a new topic has many.
        k = max(self.retrieval.k, CONVERSATION_K)
        (alone, in_context), _ = await self.knowledge.search_many([
            Query(query, k, statuses, None),
            Query(context_query(query, history, self.retrieval.context_chars), k, statuses, None)])
        found = combined(alone, in_context)[:self.retrieval.k]
        own = {hit.entry.entry_id: hit for hit in alone}

        def covered_alone(hit: Hit) -> bool:
            return ((hit.entry.entry_id in own and bool(self.relevant([own[hit.entry.entry_id]])))
                    or mentions(hit, query) >= FOLLOW_UP_WORDS)

        relevant = self.relevant(found)
        if not relevant or not covered_alone(relevant[0]):
            return found, []
        return found, [hit for hit in relevant if covered_alone(hit)]

    async def _answer(self, query: str, conversation_id: str, interaction_id: uuid.UUID) -> AsyncIterator[Event]:
        conversation_id = conversation_id or str(uuid.uuid4())
        started = time.perf_counter()
        history = await self.conversations.history(conversation_id, self.retrieval.history_turns)
        with _tracer.start_as_current_span("mend.retrieval") as span:
            found, hits = await self.retrieve(query, history)
            span.set_attribute("mend.retrieval.k", self.retrieval.k)
            span.set_attribute("mend.retrieval.hits", len(hits))
            span.set_attribute("mend.retrieval.best_score", found[0].score if found else 0.0)
            span.set_attribute("mend.retrieval.history_turns", len(history))
        retrieval_ms = _ms(started)
        sources = tuple(_source(hit) for hit in hits)
        yield Start(interaction_id, conversation_id, sources)

        pieces: list[str] = []
        first_token_ms = 0
        tally = Tally()
        if hits:
            with _tracer.start_as_current_span("mend.answer") as span:
                if self.record_text:
                    span.set_attribute("mend.chat.query", query)
                async for piece in self.answerer.pieces(query, hits, history, tally):
                    if not piece:
                        continue
                    if not pieces:
                        first_token_ms = _ms(started)
                    pieces.append(piece)
                    yield Delta(piece)
                span.set_attribute("mend.llm.model", tally.model)
                span.set_attribute("mend.llm.output_tokens", tally.output_tokens)
                span.set_attribute("mend.answer.unsupported", tally.unsupported)
        answer = "".join(pieces).strip()
        grounded = bool(hits) and bool(answer)
        if not grounded:
            # Nothing relevant (or nothing to say from it): say so rather than guess.
            answer = self.persona.dont_know()
            first_token_ms = first_token_ms or _ms(started)
            yield Delta(answer)
        facts = Facts(model=tally.model, output_tokens=tally.output_tokens, retrieval_ms=retrieval_ms,
                      time_to_first_token_ms=first_token_ms, total_ms=_ms(started))
        exchange = Exchange(interaction_id=interaction_id, conversation_id=conversation_id, query=query,
                            answer=answer, sources=sources if grounded else (), grounded=grounded, facts=facts)
        await self.outbox.send(exchange, _trace_id())
        yield End(exchange)

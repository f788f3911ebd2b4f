"""Answering one question: retrieve (reading a follow-up in the light of the
conversation), decide whether the knowledge is relevant enough, answer from it
(quoted or generated, streamed), log the exchange. Chat and ChatStream both run
`Chatbot.answer`, so the two can never disagree."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import trace

from bot.conversations import Conversations, History, Turn
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
# Words by which a question points back at what was just said ("how much will
# that cost me?"): such a question, when nothing answers it on its own, is about
# the entry the last answer came from.
POINTS_BACK = frozenset({"it", "its", "that", "this", "they", "them", "their", "those", "these"})


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


@dataclass(frozen=True)
class Retrieved:
    """What a question found, best first, and the part of it to answer from."""

    found: list[Hit]
    relevant: list[Hit]
    # The relevant hit is the last answer's entry, taken because the question
    # points back at it: nothing covers the question on its own, or what does
    # has no more of its words than that entry (Chatbot.retrieve).
    pointed_back: bool = False
    # The best relevant hit passes the cut but not `Relevance.sure`: right half
    # the time or less, so the answer says so and how to reach a person.
    loose: bool = False


class Answerer(Protocol):
    """Writes an answer from relevant hits (best first): bot/quoting.py or bot/generating.py."""

    def pieces(self, query: str, hits: Sequence[Hit], history: History, tally: Tally) -> AsyncIterator[str]:
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
    """Each entry either search found, scored the mean of its two scores (and of
    its two supports), best first. An entry one search did not return scores
    there as that search's last hit (an upper bound on its score), or 0 when
    that search found nothing."""
    floor_alone = (alone[-1].score, alone[-1].support) if alone else (0.0, 0.0)
    floor_context = (in_context[-1].score, in_context[-1].support) if in_context else (0.0, 0.0)
    scores_alone = {hit.entry.entry_id: (hit.score, hit.support) for hit in alone}
    scores_context = {hit.entry.entry_id: (hit.score, hit.support) for hit in in_context}
    hits = {hit.entry.entry_id: hit for hit in [*in_context, *alone]}
    merged = []
    for entry_id, hit in hits.items():
        one, other = scores_alone.get(entry_id, floor_alone), scores_context.get(entry_id, floor_context)
        merged.append(Hit(hit.entry, (one[0] + other[0]) / 2, hit.matched_key, (one[1] + other[1]) / 2))
    return sorted(merged, key=lambda hit: (-hit.support, hit.entry.entry_id))


def mentions(hit: Hit, query: str) -> float:
    """The share of the question's content words (stems) the entry's text has."""
    words = {word[:STEM] for word in content_words(query)}
    if not words:
        return 0.0  # "thanks!" names no topic: the earlier answer is no answer to it
    entry = hit.entry
    text = {word[:STEM] for word in content_words(" ".join([entry.title, entry.content, *entry.questions]))}
    return len(words & text) / len(words)


def points_back(query: str) -> bool:
    """Whether the question refers to something said before it."""
    return not POINTS_BACK.isdisjoint(re.findall(r"[a-z]+", query.lower()))


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

    async def retrieve(self, query: str, history: History) -> Retrieved:
        """What the question finds, and the relevant part of it."""
        statuses = ["published"]
        if not history.turns:
            found = await self.knowledge.search(query, self.retrieval.k, statuses, None)
            relevant = self.relevant(found)
            return Retrieved(found, relevant, loose=bool(relevant) and not self.retrieval.relevance.sure(found))
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
            Query(context_query(query, history.turns, self.retrieval.context_chars), k, statuses, None)])
        found = combined(alone, in_context)[:self.retrieval.k]
        own = {hit.entry.entry_id: hit for hit in alone}

        def covered_alone(hit: Hit) -> bool:
            return ((hit.entry.entry_id in own and bool(self.relevant([own[hit.entry.entry_id]])))
                    or mentions(hit, query) >= FOLLOW_UP_WORDS)

        relevant = self.relevant(found)
        pointed_at = self.pointed_at(query, history.turns[-1], in_context)
        if relevant and covered_alone(relevant[0]):
            if pointed_at and pointed_at[0].entry.entry_id != relevant[0].entry.entry_id:
                said = mentions(pointed_at[0], query)
                if said >= FOLLOW_UP_WORDS and said >= mentions(relevant[0], query):
                    # "how long does that take to arrive?" after shipping to Japan finds
                    # standard delivery on its own; but "that" is the Japan shipping just
                    # answered, whose entry has as many of the question's words: answer
                    # from it, and say it may not be what was meant. A question on a new
                    # topic ("will they charge me customs on it?") has words the other
                    # entry has and the earlier one lacks, and goes on as below.
                    return Retrieved(found, pointed_at, pointed_back=True)
            # Sure with the conversation, or on its own words alone about the same entry.
            same = bool(alone) and max(alone, key=lambda hit: hit.support).entry.entry_id == relevant[0].entry.entry_id
            sure = self.retrieval.relevance.sure(found) or (same and self.retrieval.relevance.sure(alone))
            return Retrieved(found, [hit for hit in relevant if covered_alone(hit)], loose=not sure)
        return Retrieved(found, pointed_at, pointed_back=bool(pointed_at))

    def pointed_at(self, query: str, last: Turn, in_context: Sequence[Hit]) -> list[Hit]:
        """The entry the last answer came from, for a question that points back at
        it ("how much will that cost me?" after a broken tent pole) and that
        nothing answers on its own, or that this entry also answers in the
        question's own words: what "that" is, is what was just answered.
        It must still pass its cut searched with the conversation. A question
        without such a word ("can you tune my bicycle?") does not point back, but
        one with it may name a new topic all the same ("can you tune my bike? it
        squeaks"), and the entry may not answer what it asks ("can I rent one
        while it's being repaired?"): so the answer says it is not sure and how
        to reach a person."""
        if not last.sources or not points_back(query):
            return []
        topic = last.sources[0].entry_id
        return [hit for hit in in_context if hit.entry.entry_id == topic and self.relevant([hit])]

    async def _answer(self, query: str, conversation_id: str, interaction_id: uuid.UUID) -> AsyncIterator[Event]:
        conversation_id = conversation_id or str(uuid.uuid4())
        started = time.perf_counter()
        history = await self.conversations.history(conversation_id, self.retrieval.history_turns)
        with _tracer.start_as_current_span("mend.retrieval") as span:
            retrieved = await self.retrieve(query, history)
            found, hits = retrieved.found, retrieved.relevant
            span.set_attribute("mend.retrieval.k", self.retrieval.k)
            span.set_attribute("mend.retrieval.hits", len(hits))
            span.set_attribute("mend.retrieval.best_score", found[0].score if found else 0.0)
            span.set_attribute("mend.retrieval.history_turns", len(history.turns))
        retrieval_ms = _ms(started)
        sources = tuple(_source(hit) for hit in hits)
        yield Start(interaction_id, conversation_id, sources)

        pieces: list[str] = []
        hedged = retrieved.pointed_back or retrieved.loose
        hedge_said = False
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
                    # The hedge goes before the answer's first words, after the greeting.
                    if hedged and not hedge_said and piece != self.persona.opening():
                        hedge_said = True
                        pieces.append(self.persona.unsure(hits[0].entry.title))
                        yield Delta(pieces[-1])
                    pieces.append(piece)
                    yield Delta(piece)
                if pieces and hedged:
                    pieces.append(self.persona.or_ask_a_person())
                    yield Delta(pieces[-1])
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
                            answer=answer, sources=sources if grounded else (), grounded=grounded, facts=facts,
                            unsure=grounded and hedged, from_topic=grounded and retrieved.pointed_back)
        await self.outbox.send(exchange, _trace_id())
        yield End(exchange)

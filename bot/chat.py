"""Answering one question: retrieve, decide whether the knowledge is relevant
enough, generate (streamed), log the exchange. Chat and ChatStream both run
`Chatbot.answer`, so the two can never disagree."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from opentelemetry import trace

from bot import persona as prompts
from bot.chat_log import ChatLog
from bot.knowledge import Hit, Knowledge
from mendmodels.chat.base import ChatModel
from bot.persona import Persona
from mend.bot.v1 import bot_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit.errors import AlreadyExists

_tracer = trace.get_tracer("mend.bot")
SNIPPET_CHARS = 500
# How often a call waits to see whether another bot replica has finished
# answering the same request id (the same process is woken without polling).
CLAIM_POLL_S = 0.25


@dataclass(frozen=True)
class Retrieval:
    k: int = 3
    # Cosine similarity below which a hit is not relevant enough to answer from.
    threshold: float = 0.45
    history_turns: int = 3
    max_answer_tokens: int = 200


def _source(hit: Hit) -> pb.Source:
    return pb.Source(entry_id=hit.entry.entry_id, title=hit.entry.title, snippet=hit.entry.content[:SNIPPET_CHARS],
                     score=hit.score, source=hit.entry.source)


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


class Chatbot:
    def __init__(self, knowledge: Knowledge, model: ChatModel, log: ChatLog, persona: Persona,
                 retrieval: Retrieval = Retrieval(), record_text: bool = False) -> None:
        self.knowledge = knowledge
        self.model = model
        self.log = log
        self.persona = persona
        self.retrieval = retrieval
        # Chat text goes into span attributes only when explicitly enabled.
        self.record_text = record_text
        # Request ids this process is answering now, set when the answer is logged.
        self._answering: dict[uuid.UUID, asyncio.Event] = {}

    async def answer(self, query: str, conversation_id: str,
                     request_id: uuid.UUID | None) -> AsyncIterator[pb.ChatStreamResponse]:
        """The ChatStream events of one answer: start, deltas, end. A request id
        is answered once: a retry, even one arriving while the first call is
        still answering, replays the logged answer."""
        if request_id is None:
            async for event in self._answer(query, conversation_id, uuid.uuid4()):
                yield event
            return
        while True:
            if (stored := await self.log.find(request_id)) is not None:
                async for event in self._replay(query, *stored):
                    yield event
                return
            if (answering := self._answering.get(request_id)) is not None:
                await answering.wait()  # this process is answering it: wait, then replay
                continue
            done = self._answering[request_id] = asyncio.Event()
            try:
                claimed = await self.log.claim(request_id)
            except BaseException:
                self._let_go(request_id, done)
                raise
            if claimed:
                break
            # Another replica is answering it: look again shortly.
            self._let_go(request_id, done)
            await asyncio.sleep(CLAIM_POLL_S)
        try:
            # Logged by a call that let go between our find and our claim?
            if (stored := await self.log.find(request_id)) is not None:
                async for event in self._replay(query, *stored):
                    yield event
                return
            async for event in self._answer(query, conversation_id, request_id):
                yield event
        finally:
            # The answer is logged (or was never given) before the claim goes, so
            # a waiter either finds it or answers itself.
            try:
                await asyncio.shield(self.log.release(request_id))
            finally:
                self._let_go(request_id, done)

    def _let_go(self, request_id: uuid.UUID, done: asyncio.Event) -> None:
        del self._answering[request_id]
        done.set()

    async def _answer(self, query: str, conversation_id: str,
                      interaction_id: uuid.UUID) -> AsyncIterator[pb.ChatStreamResponse]:
        conversation_id = conversation_id or str(uuid.uuid4())
        started = time.perf_counter()
        with _tracer.start_as_current_span("mend.retrieval") as span:
            found = await self.knowledge.search(query, self.retrieval.k, ["published"], None)
            hits = [hit for hit in found if hit.score >= self.retrieval.threshold]
            span.set_attribute("mend.retrieval.k", self.retrieval.k)
            span.set_attribute("mend.retrieval.hits", len(hits))
            span.set_attribute("mend.retrieval.best_score", found[0].score if found else 0.0)
        retrieval_ms = _ms(started)
        sources = [_source(hit) for hit in hits]
        yield pb.ChatStreamResponse(start=pb.ChatStreamStart(
            interaction_id=str(interaction_id), conversation_id=conversation_id, sources=sources))

        pieces: list[str] = []
        first_token_ms = 0
        if hits:
            history = await self.log.history(conversation_id, self.retrieval.history_turns)
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
                    yield pb.ChatStreamResponse(delta=pb.ChatStreamDelta(text=piece))
                span.set_attribute("mend.llm.output_tokens", len(pieces))
        answer = "".join(pieces).strip()
        grounded = bool(hits) and bool(answer)
        if not grounded:
            # Nothing relevant (or the model said nothing): say so rather than guess.
            answer = self.persona.dont_know()
            first_token_ms = first_token_ms or _ms(started)
            yield pb.ChatStreamResponse(delta=pb.ChatStreamDelta(text=answer))
        generation = pb.GenerationFacts(
            model=self.model.model_id if hits else "", output_tokens=len(pieces), retrieval_ms=retrieval_ms,
            time_to_first_token_ms=first_token_ms, total_ms=_ms(started))
        response = pb.ChatResponse(answer=answer, interaction_id=str(interaction_id), conversation_id=conversation_id,
                                   sources=sources if grounded else [], grounded=grounded, generation=generation)
        await self._log(query, response)
        yield pb.ChatStreamResponse(end=pb.ChatStreamEnd(grounded=grounded, generation=generation))

    async def _log(self, query: str, response: pb.ChatResponse) -> None:
        context = trace.get_current_span().get_span_context()
        facts = response.generation
        request = ipb.CreateInteractionRequest(interaction=ipb.Interaction(
            interaction_id=response.interaction_id, conversation_id=response.conversation_id,
            user_query=query, bot_response=response.answer,
            sources=[ipb.KnowledgeSource(entry_id=s.entry_id, title=s.title, score=s.score) for s in response.sources],
            generation=ipb.GenerationFacts(model=facts.model, input_tokens=facts.input_tokens,
                                           output_tokens=facts.output_tokens, retrieval_ms=facts.retrieval_ms,
                                           time_to_first_token_ms=facts.time_to_first_token_ms,
                                           total_ms=facts.total_ms),
            trace_id=format(context.trace_id, "032x") if context.is_valid else "",
        ))
        # Durable first, then delivered: the customer's answer never waits on
        # interactions being up, and the exchange is never lost.
        await self.log.record(request, response)
        await self.log.deliver(uuid.UUID(response.interaction_id), request.SerializeToString())

    async def _replay(self, query: str, stored_query: str,
                      response: pb.ChatResponse) -> AsyncIterator[pb.ChatStreamResponse]:
        if stored_query != query:
            raise AlreadyExists(f"request_id {response.interaction_id} was already used for a different query")
        yield pb.ChatStreamResponse(start=pb.ChatStreamStart(
            interaction_id=response.interaction_id, conversation_id=response.conversation_id, sources=response.sources))
        yield pb.ChatStreamResponse(delta=pb.ChatStreamDelta(text=response.answer))
        yield pb.ChatStreamResponse(end=pb.ChatStreamEnd(grounded=response.grounded, generation=response.generation))

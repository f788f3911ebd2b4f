"""The one place where the bot's answers become wire messages: ChatService's
stream events and ChatResponse, the CreateInteractionRequest the outbox
delivers, and back from the ChatResponse the outbox stores for replays."""

from __future__ import annotations

import uuid

from bot.exchange import Delta, Event, Exchange, Facts, Source, Start
from mend.bot.v1 import bot_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2 as ipb


def _source(source: Source) -> pb.Source:
    return pb.Source(entry_id=source.entry_id, title=source.title, snippet=source.snippet, score=source.score,
                     source=source.source)


def _generation(facts: Facts) -> pb.GenerationFacts:
    return pb.GenerationFacts(model=facts.model, input_tokens=facts.input_tokens, output_tokens=facts.output_tokens,
                              retrieval_ms=facts.retrieval_ms, time_to_first_token_ms=facts.time_to_first_token_ms,
                              total_ms=facts.total_ms)


def stream_event(event: Event, conversation_token: str = "") -> pb.ChatStreamResponse:
    """A stream event; the `start` event carries the conversation's token."""
    if isinstance(event, Start):
        return pb.ChatStreamResponse(start=pb.ChatStreamStart(
            interaction_id=str(event.interaction_id), conversation_id=event.conversation_id,
            sources=[_source(s) for s in event.sources], conversation_token=conversation_token))
    if isinstance(event, Delta):
        return pb.ChatStreamResponse(delta=pb.ChatStreamDelta(text=event.text))
    # The last kind left: End.
    return pb.ChatStreamResponse(end=pb.ChatStreamEnd(grounded=event.grounded, generation=_generation(event.facts),
                                                      unsure=event.exchange.unsure))


def chat_response(exchange: Exchange, conversation_token: str = "") -> pb.ChatResponse:
    """The answer as Chat returns it (with the conversation's token), or as the
    outbox stores it (without: a token is never written down)."""
    return pb.ChatResponse(answer=exchange.answer, interaction_id=str(exchange.interaction_id),
                           conversation_id=exchange.conversation_id, sources=[_source(s) for s in exchange.sources],
                           grounded=exchange.grounded, generation=_generation(exchange.facts),
                           conversation_token=conversation_token, unsure=exchange.unsure)


def logged_exchange(query: str, response: bytes) -> Exchange:
    """An exchange the outbox stored (the ChatResponse bytes `chat_response`
    made, as every row of `chat_log` holds), for a replay that gives the client
    exactly the logged answer."""
    message = pb.ChatResponse.FromString(response)
    facts = message.generation
    return Exchange(
        interaction_id=uuid.UUID(message.interaction_id), conversation_id=message.conversation_id, query=query,
        answer=message.answer,
        sources=tuple(Source(s.entry_id, s.title, s.snippet, s.score, s.source) for s in message.sources),
        grounded=message.grounded, unsure=message.unsure,
        facts=Facts(model=facts.model, input_tokens=facts.input_tokens, output_tokens=facts.output_tokens,
                    retrieval_ms=facts.retrieval_ms, time_to_first_token_ms=facts.time_to_first_token_ms,
                    total_ms=facts.total_ms))


def interaction_request(exchange: Exchange, trace_id: str = "") -> ipb.CreateInteractionRequest:
    facts = exchange.facts
    return ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        interaction_id=str(exchange.interaction_id), conversation_id=exchange.conversation_id,
        user_query=exchange.query, bot_response=exchange.answer,
        sources=[ipb.KnowledgeSource(entry_id=s.entry_id, title=s.title, score=s.score) for s in exchange.sources],
        generation=ipb.GenerationFacts(model=facts.model, input_tokens=facts.input_tokens,
                                       output_tokens=facts.output_tokens, retrieval_ms=facts.retrieval_ms,
                                       time_to_first_token_ms=facts.time_to_first_token_ms, total_ms=facts.total_ms),
        trace_id=trace_id, unsure=exchange.from_topic,
    ))

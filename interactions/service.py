"""RPC handlers of InteractionsService: validate, call the repository, convert
rows to messages. No SQL and no business rules beyond the contract's checks."""

from __future__ import annotations

import json
import json.scanner
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
from opentelemetry import trace

from interactions import repository
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit import access, validation
from mendkit.conversation_tokens import ConversationTokens
from mendkit.credentials import BOT, TRAINER
from mendkit.errors import InvalidArgument, PermissionDenied
from mendkit.page_tokens import PageTokens
from mendkit.timestamps import timestamp_fields

MAX_QUERY_CHARS = validation.MAX_QUESTION_CHARS
MAX_RESPONSE_CHARS = validation.MAX_ANSWER_CHARS
MAX_COMMENT_CHARS = 2_000
MAX_SOURCES = 20
MAX_ID_CHARS = 256
MAX_MARKS = 1_000
# One answer whether the interaction is missing or someone else's, so that ids cannot be probed.
NOT_YOURS = "a vote needs the conversation_token the bot returned with this answer"
# Who may call what (checked by the kit before a handler runs): a customer votes,
# through the gateway; the bot logs exchanges; the trainer reads and marks them;
# reading one interaction is for people.
ACCESS = {
    "CreateInteraction": access.allow(BOT),
    "GetInteraction": access.ADMIN_ONLY,
    "ListInteractions": access.allow(TRAINER),
    "SubmitFeedback": access.PUBLIC,
    "MarkProcessed": access.allow(TRAINER),
}

_RATING_TO_FEEDBACK = {pb.RATING_LIKE: 1, pb.RATING_DISLIKE: -1}
_FEEDBACK_FILTER = {
    pb.FEEDBACK_FILTER_UNSPECIFIED: None,
    pb.FEEDBACK_FILTER_LIKED: 1,
    pb.FEEDBACK_FILTER_DISLIKED: -1,
    pb.FEEDBACK_FILTER_UNRATED: 0,
}
# Stored as lower-case words, so that the table reads well in psql.
_OUTCOME_TO_DB = {
    value: name.removeprefix("TRAINING_OUTCOME_").lower()
    for name, value in pb.TrainingOutcome.items()
    if value != pb.TRAINING_OUTCOME_UNSPECIFIED
}
_OUTCOME_FROM_DB = {word: value for value, word in _OUTCOME_TO_DB.items()}
_REASON_TO_DB = {
    value: name.removeprefix("FEEDBACK_REASON_").lower()
    for name, value in pb.FeedbackReason.items()
    if value != pb.FEEDBACK_REASON_UNSPECIFIED
}
_REASON_FROM_DB = {word: value for value, word in _REASON_TO_DB.items()}
# json's C scanner without json.loads' Python layers around it (a third of its
# time on a row's `sources`). It reads one JSON value from an index; the text is
# PostgreSQL's rendering of a jsonb value, so it is exactly one value.
# (typeshed types the C scanner's context argument as the scanner class itself.)
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]




def interaction_fields(row: asyncpg.Record) -> dict[str, Any]:
    """The `Interaction` of a row, as constructor arguments: nested messages as
    dicts, so that protobuf builds them in place. A list page of 100 rows costs
    about half as much this way as with a message per submessage copied in."""
    return {
        "interaction_id": str(row["interaction_id"]),
        "conversation_id": row["conversation_id"],
        "user_query": row["user_query"],
        "bot_response": row["bot_response"],
        # jsonb's text (see repository._COLUMNS): [{"entry_id", "title", "score"}, ...]
        "sources": _scan_json(row["sources"], 0)[0],
        "generation": {
            "model": row["model"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "retrieval_ms": row["retrieval_ms"],
            "time_to_first_token_ms": row["time_to_first_token_ms"],
            "total_ms": row["total_ms"],
        },
        "trace_id": row["trace_id"],
        "timestamp": timestamp_fields(row["timestamp"]),
        "feedback": row["feedback"],
        "feedback_reason": _REASON_FROM_DB.get(row["feedback_reason"], pb.FEEDBACK_REASON_UNSPECIFIED),
        "feedback_comment": row["feedback_comment"],
        "feedback_time": timestamp_fields(row["feedback_time"]),
        "processed_for_training": row["processed_for_training"],
        "training_outcome": _OUTCOME_FROM_DB.get(row["training_outcome"], pb.TRAINING_OUTCOME_UNSPECIFIED),
        "knowledge_entry_id": row["knowledge_entry_id"],
        "training_run_id": row["training_run_id"],
        "processed_time": timestamp_fields(row["processed_time"]),
        "unsure": row["unsure"],
    }


def to_message(row: asyncpg.Record) -> pb.Interaction:
    return pb.Interaction(**interaction_fields(row))


def _current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _new_interaction(message: pb.Interaction) -> repository.NewInteraction:
    field = "interaction"
    interaction_id = validation.uuid_field(f"{field}.interaction_id", message.interaction_id, required=False)
    if len(message.sources) > MAX_SOURCES:
        raise InvalidArgument(f"{field}.sources", f"has {len(message.sources)} entries; the limit is {MAX_SOURCES}")
    sources = []
    for index, source in enumerate(message.sources):
        path = f"{field}.sources[{index}]"
        validation.text(f"{path}.entry_id", source.entry_id, max_chars=MAX_ID_CHARS, required=True)
        validation.text(f"{path}.title", source.title, max_chars=512)
        if not math.isfinite(source.score):
            raise InvalidArgument(f"{path}.score", "must be a finite number")
        sources.append({"entry_id": source.entry_id, "title": source.title, "score": source.score})
    trace_id = message.trace_id.lower()
    if trace_id and (len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id)):
        raise InvalidArgument(f"{field}.trace_id", "must be 32 hexadecimal digits (a W3C trace id)")
    facts = message.generation
    return repository.NewInteraction(
        interaction_id=interaction_id or uuid.uuid4(),
        conversation_id=validation.text(f"{field}.conversation_id", message.conversation_id, max_chars=128),
        user_query=validation.text(f"{field}.user_query", message.user_query, max_chars=MAX_QUERY_CHARS, required=True),
        bot_response=validation.text(
            f"{field}.bot_response", message.bot_response, max_chars=MAX_RESPONSE_CHARS, required=True
        ),
        sources=sources,
        model=validation.text(f"{field}.generation.model", facts.model, max_chars=MAX_ID_CHARS),
        # uint32 on the wire, int4 in the table: clamp rather than overflow.
        input_tokens=min(facts.input_tokens, 2**31 - 1),
        output_tokens=min(facts.output_tokens, 2**31 - 1),
        retrieval_ms=min(facts.retrieval_ms, 2**31 - 1),
        time_to_first_token_ms=min(facts.time_to_first_token_ms, 2**31 - 1),
        total_ms=min(facts.total_ms, 2**31 - 1),
        # The caller's trace id wins; otherwise the one this request is part of.
        trace_id=trace_id or _current_trace_id(),
        unsure=message.unsure,
    )


class InteractionsService(pb_grpc.InteractionsServiceServicer):
    def __init__(self, pool: asyncpg.Pool, page_tokens: PageTokens,
                 conversation_tokens: ConversationTokens | None = None) -> None:
        self._pool = pool
        self._tokens = page_tokens
        # None: a key no bot shares, so no public vote passes (fail closed).
        self._conversations = conversation_tokens or ConversationTokens.random()

    async def _check_voter(self, interaction_id: uuid.UUID, token: str) -> None:
        """A vote rates only an interaction of the conversation its token was
        issued for, unless an admin (checked by the kit) casts it."""
        if access.is_admin():
            return
        if not self._conversations.valid(await repository.conversation_of(self._pool, interaction_id) or "", token):
            raise PermissionDenied(NOT_YOURS)

    async def CreateInteraction(self, request: pb.CreateInteractionRequest,
                               context: grpc.aio.ServicerContext) -> pb.CreateInteractionResponse:
        if not request.HasField("interaction"):
            raise InvalidArgument("interaction", "is required")
        row = await repository.create(self._pool, _new_interaction(request.interaction))
        return pb.CreateInteractionResponse(interaction=to_message(row))

    async def GetInteraction(self, request: pb.GetInteractionRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetInteractionResponse:
        interaction_id = validation.uuid_field("interaction_id", request.interaction_id)
        row = await repository.get(self._pool, interaction_id)
        return pb.GetInteractionResponse(interaction=to_message(row))

    async def ListInteractions(self, request: pb.ListInteractionsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ListInteractionsResponse:
        size = validation.page_size("page_size", request.page_size)
        validation.enum_value("feedback", request.feedback, pb.FeedbackFilter, allow_unspecified=True)
        start = validation.timestamp("start_time", request.start_time) if request.HasField("start_time") else None
        end = validation.timestamp("end_time", request.end_time) if request.HasField("end_time") else None
        if start is not None and end is not None and start >= end:
            raise InvalidArgument("end_time", "must be later than start_time")
        where = repository.ListFilter(
            feedback=_FEEDBACK_FILTER[request.feedback],
            processed_for_training=(
                request.processed_for_training if request.HasField("processed_for_training") else None
            ),
            start_time=start,
            end_time=end,
            conversation_id=validation.text("conversation_id", request.conversation_id, max_chars=128),
        )
        filters = [where.feedback, where.processed_for_training, str(start), str(end), where.conversation_id]
        after = self._tokens.after(request.page_token, filters, lambda cursor: (
            datetime.fromtimestamp(cursor[0] / 1_000_000, UTC), uuid.UUID(cursor[1])))
        rows, next_token = self._tokens.page(
            await repository.list_page(self._pool, where, after, size + 1), size, filters,
            lambda last: [int(last["timestamp"].timestamp()) * 1_000_000 + last["timestamp"].microsecond,
                          str(last["interaction_id"])])
        return pb.ListInteractionsResponse(interactions=[interaction_fields(r) for r in rows],
                                           next_page_token=next_token)

    async def SubmitFeedback(self, request: pb.SubmitFeedbackRequest,
                            context: grpc.aio.ServicerContext) -> pb.SubmitFeedbackResponse:
        interaction_id = validation.uuid_field("interaction_id", request.interaction_id)
        rating = validation.enum_value("rating", request.rating, pb.Rating, allow_unspecified=False)
        reason = validation.enum_value("reason", request.reason, pb.FeedbackReason, allow_unspecified=True)
        comment = validation.text("comment", request.comment, max_chars=MAX_COMMENT_CHARS)
        await self._check_voter(interaction_id, request.conversation_token)
        row = await repository.set_feedback(
            self._pool, interaction_id, _RATING_TO_FEEDBACK[rating], _REASON_TO_DB.get(reason), comment
        )
        return pb.SubmitFeedbackResponse(interaction=to_message(row))

    async def MarkProcessed(self, request: pb.MarkProcessedRequest,
                           context: grpc.aio.ServicerContext) -> pb.MarkProcessedResponse:
        if not 1 <= len(request.marks) <= MAX_MARKS:
            raise InvalidArgument("marks", f"must hold 1 to {MAX_MARKS} marks, got {len(request.marks)}")
        marks = []
        seen = set()
        for index, mark in enumerate(request.marks):
            path = f"marks[{index}]"
            interaction_id = validation.uuid_field(f"{path}.interaction_id", mark.interaction_id)
            if interaction_id in seen:
                raise InvalidArgument(f"{path}.interaction_id", "appears twice in the batch")
            seen.add(interaction_id)
            outcome = validation.enum_value(f"{path}.outcome", mark.outcome, pb.TrainingOutcome,
                                            allow_unspecified=False)
            marks.append(
                repository.Mark(
                    interaction_id=interaction_id,
                    outcome=_OUTCOME_TO_DB[outcome],
                    knowledge_entry_id=validation.text(
                        f"{path}.knowledge_entry_id", mark.knowledge_entry_id, max_chars=MAX_ID_CHARS
                    ),
                    training_run_id=validation.text(f"{path}.training_run_id", mark.training_run_id, max_chars=128),
                )
            )
        rows = await repository.mark_processed(self._pool, marks)
        return pb.MarkProcessedResponse(interactions=[interaction_fields(r) for r in rows])

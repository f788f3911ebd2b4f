import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Rating(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATING_UNSPECIFIED: _ClassVar[Rating]
    RATING_LIKE: _ClassVar[Rating]
    RATING_DISLIKE: _ClassVar[Rating]

class FeedbackReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_REASON_UNSPECIFIED: _ClassVar[FeedbackReason]
    FEEDBACK_REASON_INCORRECT: _ClassVar[FeedbackReason]
    FEEDBACK_REASON_INCOMPLETE: _ClassVar[FeedbackReason]
    FEEDBACK_REASON_NOT_RELEVANT: _ClassVar[FeedbackReason]
    FEEDBACK_REASON_UNCLEAR: _ClassVar[FeedbackReason]
    FEEDBACK_REASON_OUTDATED: _ClassVar[FeedbackReason]
    FEEDBACK_REASON_OTHER: _ClassVar[FeedbackReason]

class TrainingOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_OUTCOME_UNSPECIFIED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_COVERED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_FIXED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_PROPOSED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_REJECTED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_ROLLED_BACK: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_FAILED: _ClassVar[TrainingOutcome]

class FeedbackFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_FILTER_UNSPECIFIED: _ClassVar[FeedbackFilter]
    FEEDBACK_FILTER_LIKED: _ClassVar[FeedbackFilter]
    FEEDBACK_FILTER_DISLIKED: _ClassVar[FeedbackFilter]
    FEEDBACK_FILTER_UNRATED: _ClassVar[FeedbackFilter]
RATING_UNSPECIFIED: Rating
RATING_LIKE: Rating
RATING_DISLIKE: Rating
FEEDBACK_REASON_UNSPECIFIED: FeedbackReason
FEEDBACK_REASON_INCORRECT: FeedbackReason
FEEDBACK_REASON_INCOMPLETE: FeedbackReason
FEEDBACK_REASON_NOT_RELEVANT: FeedbackReason
FEEDBACK_REASON_UNCLEAR: FeedbackReason
FEEDBACK_REASON_OUTDATED: FeedbackReason
FEEDBACK_REASON_OTHER: FeedbackReason
TRAINING_OUTCOME_UNSPECIFIED: TrainingOutcome
TRAINING_OUTCOME_COVERED: TrainingOutcome
TRAINING_OUTCOME_FIXED: TrainingOutcome
TRAINING_OUTCOME_PROPOSED: TrainingOutcome
TRAINING_OUTCOME_REJECTED: TrainingOutcome
TRAINING_OUTCOME_ROLLED_BACK: TrainingOutcome
TRAINING_OUTCOME_FAILED: TrainingOutcome
FEEDBACK_FILTER_UNSPECIFIED: FeedbackFilter
FEEDBACK_FILTER_LIKED: FeedbackFilter
FEEDBACK_FILTER_DISLIKED: FeedbackFilter
FEEDBACK_FILTER_UNRATED: FeedbackFilter

class Interaction(_message.Message):
    __slots__ = ("interaction_id", "conversation_id", "user_query", "bot_response", "sources", "generation", "trace_id", "timestamp", "feedback", "feedback_reason", "feedback_comment", "feedback_time", "processed_for_training", "training_outcome", "knowledge_entry_id", "training_run_id", "processed_time", "unsure")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_QUERY_FIELD_NUMBER: _ClassVar[int]
    BOT_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COMMENT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_TIME_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FOR_TRAINING_FIELD_NUMBER: _ClassVar[int]
    TRAINING_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    KNOWLEDGE_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_TIME_FIELD_NUMBER: _ClassVar[int]
    UNSURE_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    conversation_id: str
    user_query: str
    bot_response: str
    sources: _containers.RepeatedCompositeFieldContainer[KnowledgeSource]
    generation: GenerationFacts
    trace_id: str
    timestamp: _timestamp_pb2.Timestamp
    feedback: int
    feedback_reason: FeedbackReason
    feedback_comment: str
    feedback_time: _timestamp_pb2.Timestamp
    processed_for_training: bool
    training_outcome: TrainingOutcome
    knowledge_entry_id: str
    training_run_id: str
    processed_time: _timestamp_pb2.Timestamp
    unsure: bool
    def __init__(self, interaction_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., user_query: _Optional[str] = ..., bot_response: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[KnowledgeSource, _Mapping]]] = ..., generation: _Optional[_Union[GenerationFacts, _Mapping]] = ..., trace_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feedback: _Optional[int] = ..., feedback_reason: _Optional[_Union[FeedbackReason, str]] = ..., feedback_comment: _Optional[str] = ..., feedback_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., processed_for_training: _Optional[bool] = ..., training_outcome: _Optional[_Union[TrainingOutcome, str]] = ..., knowledge_entry_id: _Optional[str] = ..., training_run_id: _Optional[str] = ..., processed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unsure: _Optional[bool] = ...) -> None: ...

class KnowledgeSource(_message.Message):
    __slots__ = ("entry_id", "title", "score")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    title: str
    score: float
    def __init__(self, entry_id: _Optional[str] = ..., title: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class GenerationFacts(_message.Message):
    __slots__ = ("model", "input_tokens", "output_tokens", "retrieval_ms", "time_to_first_token_ms", "total_ms")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens: int
    output_tokens: int
    retrieval_ms: int
    time_to_first_token_ms: int
    total_ms: int
    def __init__(self, model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., retrieval_ms: _Optional[int] = ..., time_to_first_token_ms: _Optional[int] = ..., total_ms: _Optional[int] = ...) -> None: ...

class CreateInteractionRequest(_message.Message):
    __slots__ = ("interaction",)
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ...) -> None: ...

class CreateInteractionResponse(_message.Message):
    __slots__ = ("interaction",)
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ...) -> None: ...

class GetInteractionRequest(_message.Message):
    __slots__ = ("interaction_id",)
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    def __init__(self, interaction_id: _Optional[str] = ...) -> None: ...

class GetInteractionResponse(_message.Message):
    __slots__ = ("interaction",)
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ...) -> None: ...

class ListInteractionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "feedback", "processed_for_training", "start_time", "end_time", "conversation_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FOR_TRAINING_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    feedback: FeedbackFilter
    processed_for_training: bool
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    conversation_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., feedback: _Optional[_Union[FeedbackFilter, str]] = ..., processed_for_training: _Optional[bool] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class ListInteractionsResponse(_message.Message):
    __slots__ = ("interactions", "next_page_token")
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    next_page_token: str
    def __init__(self, interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("interaction_id", "rating", "reason", "comment", "conversation_token")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    rating: Rating
    reason: FeedbackReason
    comment: str
    conversation_token: str
    def __init__(self, interaction_id: _Optional[str] = ..., rating: _Optional[_Union[Rating, str]] = ..., reason: _Optional[_Union[FeedbackReason, str]] = ..., comment: _Optional[str] = ..., conversation_token: _Optional[str] = ...) -> None: ...

class SubmitFeedbackResponse(_message.Message):
    __slots__ = ("interaction",)
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ...) -> None: ...

class ProcessedMark(_message.Message):
    __slots__ = ("interaction_id", "outcome", "knowledge_entry_id", "training_run_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    KNOWLEDGE_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    outcome: TrainingOutcome
    knowledge_entry_id: str
    training_run_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., outcome: _Optional[_Union[TrainingOutcome, str]] = ..., knowledge_entry_id: _Optional[str] = ..., training_run_id: _Optional[str] = ...) -> None: ...

class MarkProcessedRequest(_message.Message):
    __slots__ = ("marks",)
    MARKS_FIELD_NUMBER: _ClassVar[int]
    marks: _containers.RepeatedCompositeFieldContainer[ProcessedMark]
    def __init__(self, marks: _Optional[_Iterable[_Union[ProcessedMark, _Mapping]]] = ...) -> None: ...

class MarkProcessedResponse(_message.Message):
    __slots__ = ("interactions",)
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    def __init__(self, interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ...) -> None: ...

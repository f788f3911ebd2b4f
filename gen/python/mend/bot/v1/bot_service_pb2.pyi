import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_ARTICLE: _ClassVar[EntryKind]
    ENTRY_KIND_QA: _ClassVar[EntryKind]

class EntryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_STATUS_UNSPECIFIED: _ClassVar[EntryStatus]
    ENTRY_STATUS_PUBLISHED: _ClassVar[EntryStatus]
    ENTRY_STATUS_PROPOSED: _ClassVar[EntryStatus]
    ENTRY_STATUS_ARCHIVED: _ClassVar[EntryStatus]

class RevisionAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVISION_ACTION_UNSPECIFIED: _ClassVar[RevisionAction]
    REVISION_ACTION_CREATE: _ClassVar[RevisionAction]
    REVISION_ACTION_UPDATE: _ClassVar[RevisionAction]
    REVISION_ACTION_DELETE: _ClassVar[RevisionAction]
    REVISION_ACTION_RESTORE: _ClassVar[RevisionAction]
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_ARTICLE: EntryKind
ENTRY_KIND_QA: EntryKind
ENTRY_STATUS_UNSPECIFIED: EntryStatus
ENTRY_STATUS_PUBLISHED: EntryStatus
ENTRY_STATUS_PROPOSED: EntryStatus
ENTRY_STATUS_ARCHIVED: EntryStatus
REVISION_ACTION_UNSPECIFIED: RevisionAction
REVISION_ACTION_CREATE: RevisionAction
REVISION_ACTION_UPDATE: RevisionAction
REVISION_ACTION_DELETE: RevisionAction
REVISION_ACTION_RESTORE: RevisionAction

class Source(_message.Message):
    __slots__ = ("entry_id", "title", "snippet", "score", "source")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    title: str
    snippet: str
    score: float
    source: str
    def __init__(self, entry_id: _Optional[str] = ..., title: _Optional[str] = ..., snippet: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

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

class ChatRequest(_message.Message):
    __slots__ = ("query", "conversation_id", "request_id", "conversation_token")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    query: str
    conversation_id: str
    request_id: str
    conversation_token: str
    def __init__(self, query: _Optional[str] = ..., conversation_id: _Optional[str] = ..., request_id: _Optional[str] = ..., conversation_token: _Optional[str] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("answer", "interaction_id", "conversation_id", "sources", "grounded", "generation", "conversation_token", "unsure")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    GROUNDED_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UNSURE_FIELD_NUMBER: _ClassVar[int]
    answer: str
    interaction_id: str
    conversation_id: str
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    grounded: bool
    generation: GenerationFacts
    conversation_token: str
    unsure: bool
    def __init__(self, answer: _Optional[str] = ..., interaction_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., grounded: _Optional[bool] = ..., generation: _Optional[_Union[GenerationFacts, _Mapping]] = ..., conversation_token: _Optional[str] = ..., unsure: _Optional[bool] = ...) -> None: ...

class ChatStreamRequest(_message.Message):
    __slots__ = ("query", "conversation_id", "request_id", "conversation_token")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    query: str
    conversation_id: str
    request_id: str
    conversation_token: str
    def __init__(self, query: _Optional[str] = ..., conversation_id: _Optional[str] = ..., request_id: _Optional[str] = ..., conversation_token: _Optional[str] = ...) -> None: ...

class ChatStreamResponse(_message.Message):
    __slots__ = ("start", "delta", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: ChatStreamStart
    delta: ChatStreamDelta
    end: ChatStreamEnd
    def __init__(self, start: _Optional[_Union[ChatStreamStart, _Mapping]] = ..., delta: _Optional[_Union[ChatStreamDelta, _Mapping]] = ..., end: _Optional[_Union[ChatStreamEnd, _Mapping]] = ...) -> None: ...

class ChatStreamStart(_message.Message):
    __slots__ = ("interaction_id", "conversation_id", "sources", "conversation_token")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    conversation_id: str
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    conversation_token: str
    def __init__(self, interaction_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., conversation_token: _Optional[str] = ...) -> None: ...

class ChatStreamDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ChatStreamEnd(_message.Message):
    __slots__ = ("grounded", "generation", "unsure")
    GROUNDED_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    UNSURE_FIELD_NUMBER: _ClassVar[int]
    grounded: bool
    generation: GenerationFacts
    unsure: bool
    def __init__(self, grounded: _Optional[bool] = ..., generation: _Optional[_Union[GenerationFacts, _Mapping]] = ..., unsure: _Optional[bool] = ...) -> None: ...

class KnowledgeEntry(_message.Message):
    __slots__ = ("entry_id", "kind", "title", "content", "questions", "source", "provenance", "status", "metadata", "create_time", "update_time", "revision")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    kind: EntryKind
    title: str
    content: str
    questions: _containers.RepeatedScalarFieldContainer[str]
    source: str
    provenance: Provenance
    status: EntryStatus
    metadata: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revision: int
    def __init__(self, entry_id: _Optional[str] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., questions: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., status: _Optional[_Union[EntryStatus, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("interaction_ids", "teacher_model", "prompt_version", "training_run_id", "fix_id", "created_by", "create_time")
    INTERACTION_IDS_FIELD_NUMBER: _ClassVar[int]
    TEACHER_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    interaction_ids: _containers.RepeatedScalarFieldContainer[str]
    teacher_model: str
    prompt_version: str
    training_run_id: str
    fix_id: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, interaction_ids: _Optional[_Iterable[str]] = ..., teacher_model: _Optional[str] = ..., prompt_version: _Optional[str] = ..., training_run_id: _Optional[str] = ..., fix_id: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchKnowledgeRequest(_message.Message):
    __slots__ = ("query", "k", "source", "statuses")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    source: str
    statuses: _containers.RepeatedScalarFieldContainer[EntryStatus]
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ..., source: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[EntryStatus, str]]] = ...) -> None: ...

class SearchKnowledgeResponse(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[KnowledgeHit]
    def __init__(self, hits: _Optional[_Iterable[_Union[KnowledgeHit, _Mapping]]] = ...) -> None: ...

class KnowledgeHit(_message.Message):
    __slots__ = ("entry", "score", "matched_question", "support")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_QUESTION_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    entry: KnowledgeEntry
    score: float
    matched_question: str
    support: float
    def __init__(self, entry: _Optional[_Union[KnowledgeEntry, _Mapping]] = ..., score: _Optional[float] = ..., matched_question: _Optional[str] = ..., support: _Optional[float] = ...) -> None: ...

class BatchSearchKnowledgeRequest(_message.Message):
    __slots__ = ("queries", "peer_similarity")
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    PEER_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[SearchKnowledgeRequest]
    peer_similarity: float
    def __init__(self, queries: _Optional[_Iterable[_Union[SearchKnowledgeRequest, _Mapping]]] = ..., peer_similarity: _Optional[float] = ...) -> None: ...

class BatchSearchKnowledgeResponse(_message.Message):
    __slots__ = ("results", "entries")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchSearchResult]
    entries: _containers.RepeatedCompositeFieldContainer[KnowledgeEntry]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchSearchResult, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[KnowledgeEntry, _Mapping]]] = ...) -> None: ...

class BatchSearchResult(_message.Message):
    __slots__ = ("hits", "peers")
    HITS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[BatchSearchHit]
    peers: _containers.RepeatedCompositeFieldContainer[PeerQuery]
    def __init__(self, hits: _Optional[_Iterable[_Union[BatchSearchHit, _Mapping]]] = ..., peers: _Optional[_Iterable[_Union[PeerQuery, _Mapping]]] = ...) -> None: ...

class BatchSearchHit(_message.Message):
    __slots__ = ("entry_id", "score", "matched_question", "support")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_QUESTION_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    score: float
    matched_question: str
    support: float
    def __init__(self, entry_id: _Optional[str] = ..., score: _Optional[float] = ..., matched_question: _Optional[str] = ..., support: _Optional[float] = ...) -> None: ...

class PeerQuery(_message.Message):
    __slots__ = ("query_index", "score")
    QUERY_INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    query_index: int
    score: float
    def __init__(self, query_index: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class ReplayKnowledgeRequest(_message.Message):
    __slots__ = ("queries", "changes", "each_alone")
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    EACH_ALONE_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedScalarFieldContainer[str]
    changes: _containers.RepeatedCompositeFieldContainer[KnowledgeEntry]
    each_alone: bool
    def __init__(self, queries: _Optional[_Iterable[str]] = ..., changes: _Optional[_Iterable[_Union[KnowledgeEntry, _Mapping]]] = ..., each_alone: _Optional[bool] = ...) -> None: ...

class ReplayKnowledgeResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReplayResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReplayResult, _Mapping]]] = ...) -> None: ...

class ReplayResult(_message.Message):
    __slots__ = ("entry_id", "score", "answered", "overtaken_by")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    OVERTAKEN_BY_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    score: float
    answered: bool
    overtaken_by: _containers.RepeatedCompositeFieldContainer[ReplayOvertake]
    def __init__(self, entry_id: _Optional[str] = ..., score: _Optional[float] = ..., answered: _Optional[bool] = ..., overtaken_by: _Optional[_Iterable[_Union[ReplayOvertake, _Mapping]]] = ...) -> None: ...

class ReplayOvertake(_message.Message):
    __slots__ = ("entry_id", "question", "score")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    question: str
    score: float
    def __init__(self, entry_id: _Optional[str] = ..., question: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class UpsertEntriesRequest(_message.Message):
    __slots__ = ("entries", "note")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KnowledgeEntry]
    note: RevisionNote
    def __init__(self, entries: _Optional[_Iterable[_Union[KnowledgeEntry, _Mapping]]] = ..., note: _Optional[_Union[RevisionNote, _Mapping]] = ...) -> None: ...

class UpsertEntriesResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KnowledgeEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[KnowledgeEntry, _Mapping]]] = ...) -> None: ...

class GetEntryRequest(_message.Message):
    __slots__ = ("entry_id",)
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    def __init__(self, entry_id: _Optional[str] = ...) -> None: ...

class GetEntryResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: KnowledgeEntry
    def __init__(self, entry: _Optional[_Union[KnowledgeEntry, _Mapping]] = ...) -> None: ...

class ListEntriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "source", "status", "kind")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    source: str
    status: EntryStatus
    kind: EntryKind
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., source: _Optional[str] = ..., status: _Optional[_Union[EntryStatus, str]] = ..., kind: _Optional[_Union[EntryKind, str]] = ...) -> None: ...

class ListEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[KnowledgeEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[KnowledgeEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateEntryRequest(_message.Message):
    __slots__ = ("entry", "update_mask", "note", "expected_revision")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    entry: KnowledgeEntry
    update_mask: _field_mask_pb2.FieldMask
    note: RevisionNote
    expected_revision: int
    def __init__(self, entry: _Optional[_Union[KnowledgeEntry, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., note: _Optional[_Union[RevisionNote, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class UpdateEntryResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: KnowledgeEntry
    def __init__(self, entry: _Optional[_Union[KnowledgeEntry, _Mapping]] = ...) -> None: ...

class DeleteEntryRequest(_message.Message):
    __slots__ = ("entry_id", "allow_missing", "note", "expected_revision")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOW_MISSING_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    allow_missing: bool
    note: RevisionNote
    expected_revision: int
    def __init__(self, entry_id: _Optional[str] = ..., allow_missing: _Optional[bool] = ..., note: _Optional[_Union[RevisionNote, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteEntryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RevisionNote(_message.Message):
    __slots__ = ("author", "reason", "fix_id", "training_run_id")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    author: str
    reason: str
    fix_id: str
    training_run_id: str
    def __init__(self, author: _Optional[str] = ..., reason: _Optional[str] = ..., fix_id: _Optional[str] = ..., training_run_id: _Optional[str] = ...) -> None: ...

class KnowledgeRevision(_message.Message):
    __slots__ = ("entry_id", "revision", "action", "entry", "actor", "note", "restored_revision", "create_time")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    RESTORED_REVISION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    revision: int
    action: RevisionAction
    entry: KnowledgeEntry
    actor: str
    note: RevisionNote
    restored_revision: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., revision: _Optional[int] = ..., action: _Optional[_Union[RevisionAction, str]] = ..., entry: _Optional[_Union[KnowledgeEntry, _Mapping]] = ..., actor: _Optional[str] = ..., note: _Optional[_Union[RevisionNote, _Mapping]] = ..., restored_revision: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRevisionsRequest(_message.Message):
    __slots__ = ("entry_id", "page_size", "page_token")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    page_size: int
    page_token: str
    def __init__(self, entry_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRevisionsResponse(_message.Message):
    __slots__ = ("revisions", "next_page_token")
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[KnowledgeRevision]
    next_page_token: str
    def __init__(self, revisions: _Optional[_Iterable[_Union[KnowledgeRevision, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RestoreRevisionRequest(_message.Message):
    __slots__ = ("entry_id", "revision", "expected_revision", "note")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    revision: int
    expected_revision: int
    note: RevisionNote
    def __init__(self, entry_id: _Optional[str] = ..., revision: _Optional[int] = ..., expected_revision: _Optional[int] = ..., note: _Optional[_Union[RevisionNote, _Mapping]] = ...) -> None: ...

class RestoreRevisionResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: KnowledgeEntry
    def __init__(self, entry: _Optional[_Union[KnowledgeEntry, _Mapping]] = ...) -> None: ...

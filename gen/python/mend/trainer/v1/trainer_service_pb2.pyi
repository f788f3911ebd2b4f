import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_SKIPPED_BELOW_THRESHOLD: _ClassVar[RunState]

class RunTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_TRIGGER_UNSPECIFIED: _ClassVar[RunTrigger]
    RUN_TRIGGER_SCHEDULE: _ClassVar[RunTrigger]
    RUN_TRIGGER_MANUAL: _ClassVar[RunTrigger]

class PublishPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLISH_POLICY_UNSPECIFIED: _ClassVar[PublishPolicy]
    PUBLISH_POLICY_AUTO: _ClassVar[PublishPolicy]
    PUBLISH_POLICY_REVIEW: _ClassVar[PublishPolicy]

class FixKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIX_KIND_UNSPECIFIED: _ClassVar[FixKind]
    FIX_KIND_NEW_ENTRY: _ClassVar[FixKind]
    FIX_KIND_ADD_PHRASINGS: _ClassVar[FixKind]
    FIX_KIND_EDIT_ANSWER: _ClassVar[FixKind]

class FixState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIX_STATE_UNSPECIFIED: _ClassVar[FixState]
    FIX_STATE_PROPOSED: _ClassVar[FixState]
    FIX_STATE_PUBLISHED: _ClassVar[FixState]
    FIX_STATE_REJECTED: _ClassVar[FixState]
    FIX_STATE_ROLLED_BACK: _ClassVar[FixState]
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_SKIPPED_BELOW_THRESHOLD: RunState
RUN_TRIGGER_UNSPECIFIED: RunTrigger
RUN_TRIGGER_SCHEDULE: RunTrigger
RUN_TRIGGER_MANUAL: RunTrigger
PUBLISH_POLICY_UNSPECIFIED: PublishPolicy
PUBLISH_POLICY_AUTO: PublishPolicy
PUBLISH_POLICY_REVIEW: PublishPolicy
FIX_KIND_UNSPECIFIED: FixKind
FIX_KIND_NEW_ENTRY: FixKind
FIX_KIND_ADD_PHRASINGS: FixKind
FIX_KIND_EDIT_ANSWER: FixKind
FIX_STATE_UNSPECIFIED: FixState
FIX_STATE_PROPOSED: FixState
FIX_STATE_PUBLISHED: FixState
FIX_STATE_REJECTED: FixState
FIX_STATE_ROLLED_BACK: FixState

class Run(_message.Message):
    __slots__ = ("run_id", "state", "trigger", "forced", "publish_policy", "feedback_threshold", "start_time", "end_time", "counts", "error_message", "evaluation_before", "evaluation_after")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_POLICY_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_AFTER_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: RunState
    trigger: RunTrigger
    forced: bool
    publish_policy: PublishPolicy
    feedback_threshold: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    counts: RunCounts
    error_message: str
    evaluation_before: Evaluation
    evaluation_after: Evaluation
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., trigger: _Optional[_Union[RunTrigger, str]] = ..., forced: _Optional[bool] = ..., publish_policy: _Optional[_Union[PublishPolicy, str]] = ..., feedback_threshold: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counts: _Optional[_Union[RunCounts, _Mapping]] = ..., error_message: _Optional[str] = ..., evaluation_before: _Optional[_Union[Evaluation, _Mapping]] = ..., evaluation_after: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("questions", "liked", "right", "accuracy", "wrong", "evaluate_time")
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    LIKED_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    WRONG_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_TIME_FIELD_NUMBER: _ClassVar[int]
    questions: int
    liked: int
    right: int
    accuracy: float
    wrong: _containers.RepeatedCompositeFieldContainer[Regression]
    evaluate_time: _timestamp_pb2.Timestamp
    def __init__(self, questions: _Optional[int] = ..., liked: _Optional[int] = ..., right: _Optional[int] = ..., accuracy: _Optional[float] = ..., wrong: _Optional[_Iterable[_Union[Regression, _Mapping]]] = ..., evaluate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Regression(_message.Message):
    __slots__ = ("question", "entry_id", "entry_score", "moved_to_entry_id", "moved_to_score")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_SCORE_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    MOVED_TO_SCORE_FIELD_NUMBER: _ClassVar[int]
    question: str
    entry_id: str
    entry_score: float
    moved_to_entry_id: str
    moved_to_score: float
    def __init__(self, question: _Optional[str] = ..., entry_id: _Optional[str] = ..., entry_score: _Optional[float] = ..., moved_to_entry_id: _Optional[str] = ..., moved_to_score: _Optional[float] = ...) -> None: ...

class RunCounts(_message.Message):
    __slots__ = ("read", "gated", "covered", "fixed", "proposed", "failed", "gap", "misrouted", "wrong", "no_action")
    READ_FIELD_NUMBER: _ClassVar[int]
    GATED_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    FIXED_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    MISROUTED_FIELD_NUMBER: _ClassVar[int]
    WRONG_FIELD_NUMBER: _ClassVar[int]
    NO_ACTION_FIELD_NUMBER: _ClassVar[int]
    read: int
    gated: int
    covered: int
    fixed: int
    proposed: int
    failed: int
    gap: int
    misrouted: int
    wrong: int
    no_action: int
    def __init__(self, read: _Optional[int] = ..., gated: _Optional[int] = ..., covered: _Optional[int] = ..., fixed: _Optional[int] = ..., proposed: _Optional[int] = ..., failed: _Optional[int] = ..., gap: _Optional[int] = ..., misrouted: _Optional[int] = ..., wrong: _Optional[int] = ..., no_action: _Optional[int] = ...) -> None: ...

class Fix(_message.Message):
    __slots__ = ("fix_id", "run_id", "entry_id", "question", "questions", "answer", "interaction_ids", "state", "teacher_model", "prompt_version", "create_time", "reviewer", "review_time", "review_note", "kind", "added_questions", "previous_answer", "regressions", "withheld_questions", "nearby_entries")
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_IDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TEACHER_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    REVIEW_TIME_FIELD_NUMBER: _ClassVar[int]
    REVIEW_NOTE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADDED_QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ANSWER_FIELD_NUMBER: _ClassVar[int]
    REGRESSIONS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_QUESTIONS_FIELD_NUMBER: _ClassVar[int]
    NEARBY_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    fix_id: str
    run_id: str
    entry_id: str
    question: str
    questions: _containers.RepeatedScalarFieldContainer[str]
    answer: str
    interaction_ids: _containers.RepeatedScalarFieldContainer[str]
    state: FixState
    teacher_model: str
    prompt_version: str
    create_time: _timestamp_pb2.Timestamp
    reviewer: str
    review_time: _timestamp_pb2.Timestamp
    review_note: str
    kind: FixKind
    added_questions: _containers.RepeatedScalarFieldContainer[str]
    previous_answer: str
    regressions: _containers.RepeatedCompositeFieldContainer[Regression]
    withheld_questions: _containers.RepeatedScalarFieldContainer[str]
    nearby_entries: _containers.RepeatedCompositeFieldContainer[NearbyEntry]
    def __init__(self, fix_id: _Optional[str] = ..., run_id: _Optional[str] = ..., entry_id: _Optional[str] = ..., question: _Optional[str] = ..., questions: _Optional[_Iterable[str]] = ..., answer: _Optional[str] = ..., interaction_ids: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[FixState, str]] = ..., teacher_model: _Optional[str] = ..., prompt_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reviewer: _Optional[str] = ..., review_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., review_note: _Optional[str] = ..., kind: _Optional[_Union[FixKind, str]] = ..., added_questions: _Optional[_Iterable[str]] = ..., previous_answer: _Optional[str] = ..., regressions: _Optional[_Iterable[_Union[Regression, _Mapping]]] = ..., withheld_questions: _Optional[_Iterable[str]] = ..., nearby_entries: _Optional[_Iterable[_Union[NearbyEntry, _Mapping]]] = ...) -> None: ...

class NearbyEntry(_message.Message):
    __slots__ = ("entry_id", "title", "score")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    title: str
    score: float
    def __init__(self, entry_id: _Optional[str] = ..., title: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("request_id", "force")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    force: bool
    def __init__(self, request_id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: RunState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFixRequest(_message.Message):
    __slots__ = ("fix_id",)
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    fix_id: str
    def __init__(self, fix_id: _Optional[str] = ...) -> None: ...

class GetFixResponse(_message.Message):
    __slots__ = ("fix",)
    FIX_FIELD_NUMBER: _ClassVar[int]
    fix: Fix
    def __init__(self, fix: _Optional[_Union[Fix, _Mapping]] = ...) -> None: ...

class ListFixesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "run_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: FixState
    run_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[FixState, str]] = ..., run_id: _Optional[str] = ...) -> None: ...

class ListFixesResponse(_message.Message):
    __slots__ = ("fixes", "next_page_token")
    FIXES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    fixes: _containers.RepeatedCompositeFieldContainer[Fix]
    next_page_token: str
    def __init__(self, fixes: _Optional[_Iterable[_Union[Fix, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApproveFixRequest(_message.Message):
    __slots__ = ("fix_id", "answer", "reviewer", "note", "allow_regressions", "into_entry_id")
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_REGRESSIONS_FIELD_NUMBER: _ClassVar[int]
    INTO_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    fix_id: str
    answer: str
    reviewer: str
    note: str
    allow_regressions: bool
    into_entry_id: str
    def __init__(self, fix_id: _Optional[str] = ..., answer: _Optional[str] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ..., allow_regressions: _Optional[bool] = ..., into_entry_id: _Optional[str] = ...) -> None: ...

class ApproveFixResponse(_message.Message):
    __slots__ = ("fix",)
    FIX_FIELD_NUMBER: _ClassVar[int]
    fix: Fix
    def __init__(self, fix: _Optional[_Union[Fix, _Mapping]] = ...) -> None: ...

class RejectFixRequest(_message.Message):
    __slots__ = ("fix_id", "reviewer", "note")
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    fix_id: str
    reviewer: str
    note: str
    def __init__(self, fix_id: _Optional[str] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RejectFixResponse(_message.Message):
    __slots__ = ("fix",)
    FIX_FIELD_NUMBER: _ClassVar[int]
    fix: Fix
    def __init__(self, fix: _Optional[_Union[Fix, _Mapping]] = ...) -> None: ...

class RollbackFixRequest(_message.Message):
    __slots__ = ("fix_id", "reviewer", "note")
    FIX_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    fix_id: str
    reviewer: str
    note: str
    def __init__(self, fix_id: _Optional[str] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RollbackFixResponse(_message.Message):
    __slots__ = ("fix",)
    FIX_FIELD_NUMBER: _ClassVar[int]
    fix: Fix
    def __init__(self, fix: _Optional[_Union[Fix, _Mapping]] = ...) -> None: ...

class EvaluateKnowledgeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EvaluateKnowledgeResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

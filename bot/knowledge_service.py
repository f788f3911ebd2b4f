"""RPC handlers of KnowledgeService (admin): validate, call `Knowledge`,
convert entries to messages."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime

import grpc

from bot.catalog import BOT, Entry, ListFilter, Note, Revision
from bot.knowledge import Hit, Knowledge, Query
from bot.relevance import Relevance
from bot.replay import replay
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import access, validation
from mendkit.credentials import TRAINER
from mendkit.errors import InvalidArgument
from mendkit.page_tokens import PageTokens
from mendkit.timestamps import to_timestamp

MAX_CONTENT_CHARS = validation.MAX_ANSWER_CHARS
MAX_QUESTION_CHARS = validation.MAX_QUESTION_CHARS
MAX_QUESTIONS = 100
MAX_BATCH = 500
MAX_BATCH_QUERIES = 1_000
MAX_REPLAY_QUERIES = 5_000
MAX_K = 50
MAX_PROVENANCE_IDS = 1_000
MAX_PROVENANCE_CHARS = 256
MAX_SOURCE_CHARS = 64
MAX_REASON_CHARS = 2_000
DEFAULT_K = 5
_ENTRY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_KIND = {pb.ENTRY_KIND_ARTICLE: "article", pb.ENTRY_KIND_QA: "qa"}
_KIND_FROM = {v: k for k, v in _KIND.items()}
_STATUS = {pb.ENTRY_STATUS_PUBLISHED: "published", pb.ENTRY_STATUS_PROPOSED: "proposed",
           pb.ENTRY_STATUS_ARCHIVED: "archived"}
_STATUS_FROM = {v: k for k, v in _STATUS.items()}
_UPDATABLE = {"title", "content", "questions", "source", "provenance", "status", "metadata"}
_ACTION = {"create": pb.REVISION_ACTION_CREATE, "update": pb.REVISION_ACTION_UPDATE,
           "delete": pb.REVISION_ACTION_DELETE, "restore": pb.REVISION_ACTION_RESTORE}
# Who may call what (checked by the kit before a handler runs): the trainer
# searches in batches, lists entries and replays questions against its fixes
# (the regression set), writes them, and reviews and rolls them back (GetEntry,
# UpdateEntry, DeleteEntry); a rollback reads an entry's revisions and
# restores the one before the fix (ListRevisions, RestoreRevision); searching
# one query is for people.
ACCESS = {
    "SearchKnowledge": access.ADMIN_ONLY,
    "BatchSearchKnowledge": access.allow(TRAINER),
    "ReplayKnowledge": access.allow(TRAINER),
    "UpsertEntries": access.allow(TRAINER),
    "GetEntry": access.allow(TRAINER),
    "ListEntries": access.allow(TRAINER),
    "UpdateEntry": access.allow(TRAINER),
    "DeleteEntry": access.allow(TRAINER),
    "ListRevisions": access.allow(TRAINER),
    "RestoreRevision": access.allow(TRAINER),
}


def to_message(entry: Entry) -> pb.KnowledgeEntry:
    provenance = pb.Provenance.FromString(bytes.fromhex(entry.provenance.get("pb", "")))
    created = to_timestamp(entry.create_time)
    if not provenance.HasField("create_time") and created is not None:
        provenance.create_time.CopyFrom(created)
    return pb.KnowledgeEntry(
        entry_id=entry.entry_id, kind=_KIND_FROM[entry.kind], title=entry.title, content=entry.content,
        questions=entry.questions, source=entry.source, provenance=provenance,
        status=_STATUS_FROM[entry.status], metadata=entry.metadata,
        create_time=created, update_time=to_timestamp(entry.update_time), revision=entry.revision,
    )


def revision_message(revision: Revision) -> pb.KnowledgeRevision:
    note = revision.note
    return pb.KnowledgeRevision(
        entry_id=revision.entry_id, revision=revision.revision, action=_ACTION[revision.action],
        entry=to_message(revision.entry) if revision.entry is not None else None, actor=note.actor,
        note=pb.RevisionNote(author=note.author, reason=note.reason, fix_id=note.fix_id,
                             training_run_id=note.training_run_id),
        restored_revision=note.restored_revision, create_time=to_timestamp(revision.create_time))


def note_field(message: pb.RevisionNote, field: str) -> Note:
    """The caller's note, validated, with who calls: the credential's identity."""
    for name in ("author", "fix_id", "training_run_id"):
        validation.text(f"{field}.{name}", getattr(message, name), max_chars=MAX_PROVENANCE_CHARS)
    validation.text(f"{field}.reason", message.reason, max_chars=MAX_REASON_CHARS)
    return Note(actor=access.caller().identity or BOT.actor, author=message.author, reason=message.reason,
                fix_id=message.fix_id, training_run_id=message.training_run_id)


def revision_field(field: str, value: int, *, required: bool = False) -> int:
    if value < 0 or (required and value == 0):
        wanted = "a revision number, from 1" if required else "0 (any revision) or a revision number, from 1"
        raise InvalidArgument(field, f"must be {wanted}; got {value}")
    return value


def _provenance_json(message: pb.Provenance) -> dict:
    """Readable columns for SQL, plus the exact message for a lossless round trip."""
    readable = {
        "interaction_ids": list(message.interaction_ids), "teacher_model": message.teacher_model,
        "prompt_version": message.prompt_version, "training_run_id": message.training_run_id,
        "fix_id": message.fix_id, "created_by": message.created_by,
    }
    return {key: value for key, value in readable.items() if value} | {"pb": message.SerializeToString().hex()}


def entry_id_field(field: str, value: str) -> str:
    if not _ENTRY_ID.match(value):
        raise InvalidArgument(field, "must be 1 to 128 letters, digits, '-', '_', '.' or ':'")
    return value


def from_message(message: pb.KnowledgeEntry, field: str) -> Entry:
    """A validated entry; `status` is '' when unspecified (resolved by Knowledge.upsert)."""
    entry_id = entry_id_field(f"{field}.entry_id", message.entry_id) if message.entry_id else str(uuid.uuid4())
    validation.enum_value(f"{field}.kind", message.kind, pb.EntryKind, allow_unspecified=False)
    validation.enum_value(f"{field}.status", message.status, pb.EntryStatus, allow_unspecified=True)
    content = validation.text(f"{field}.content", message.content, max_chars=MAX_CONTENT_CHARS, required=True)
    title = validation.text(f"{field}.title", message.title, max_chars=300)
    source = validation.text(f"{field}.source", message.source, max_chars=MAX_SOURCE_CHARS, required=True)
    questions: list[str] = []
    for index, question in enumerate(message.questions):
        validation.text(f"{field}.questions[{index}]", question, max_chars=MAX_QUESTION_CHARS, required=True)
        if question not in questions:
            questions.append(question)
    if message.kind == pb.ENTRY_KIND_QA and not 1 <= len(questions) <= MAX_QUESTIONS:
        raise InvalidArgument(f"{field}.questions", f"a Q&A entry needs 1 to {MAX_QUESTIONS} phrasings")
    if message.kind == pb.ENTRY_KIND_ARTICLE and questions:
        raise InvalidArgument(f"{field}.questions", "must be empty for an article")
    if len(message.metadata) > 32:
        raise InvalidArgument(f"{field}.metadata", "holds more than 32 pairs")
    for key, value in message.metadata.items():
        validation.text(f"{field}.metadata[{key[:64]!r}]", key, max_chars=64, required=True)
        validation.text(f"{field}.metadata[{key[:64]!r}]", value, max_chars=1024)
    provenance_field(message.provenance, f"{field}.provenance")
    return Entry(
        entry_id=entry_id, kind=_KIND[message.kind],
        title=title or (questions[0][:300] if questions else ""),
        content=content, questions=tuple(questions), source=source,
        status=_STATUS.get(message.status, ""), provenance=_provenance_json(message.provenance),
        metadata=dict(message.metadata),
    )


def provenance_field(message: pb.Provenance, field: str) -> None:
    """Every text of a Provenance checked before anything is written: PostgreSQL's
    jsonb refuses a NUL, and the proto only bounds `interaction_ids` (the other
    limits are ours, generous for logins, model ids and run ids)."""
    if len(message.interaction_ids) > MAX_PROVENANCE_IDS:
        raise InvalidArgument(f"{field}.interaction_ids", f"holds more than {MAX_PROVENANCE_IDS:,} ids")
    for index, interaction_id in enumerate(message.interaction_ids):
        validation.uuid_field(f"{field}.interaction_ids[{index}]", interaction_id)
    for name in ("teacher_model", "prompt_version", "training_run_id", "fix_id", "created_by"):
        validation.text(f"{field}.{name}", getattr(message, name), max_chars=MAX_PROVENANCE_CHARS)


def search_query(request: pb.SearchKnowledgeRequest, prefix: str) -> Query:
    """A validated search; `prefix` names where the request sits in a batch."""
    text = validation.text(f"{prefix}query", request.query, max_chars=MAX_QUESTION_CHARS, required=True)
    if not 0 <= request.k <= MAX_K:
        raise InvalidArgument(f"{prefix}k", f"must be between 0 and {MAX_K}, got {request.k}")
    for index, status in enumerate(request.statuses):
        validation.enum_value(f"{prefix}statuses[{index}]", status, pb.EntryStatus, allow_unspecified=False)
    statuses = [_STATUS[s] for s in request.statuses] or ["published"]
    source = validation.text(f"{prefix}source", request.source, max_chars=MAX_SOURCE_CHARS)
    return Query(text, request.k or DEFAULT_K, statuses, source or None)


def _matched(hit: Hit) -> str:
    return hit.matched_key if hit.entry.kind == "qa" else ""


def _cursor(entry: Entry) -> list[str]:
    # Stored entries always carry their create_time (the column is NOT NULL).
    assert entry.create_time is not None
    return [entry.create_time.isoformat(), entry.entry_id]


class KnowledgeService(pb_grpc.KnowledgeServiceServicer):
    def __init__(self, knowledge: Knowledge, page_tokens: PageTokens, relevance: Relevance | None = None) -> None:
        self._knowledge = knowledge
        self._tokens = page_tokens
        self._relevance = relevance or Relevance()  # the chat's rule: a replay decides as the chat would

    async def SearchKnowledge(self, request: pb.SearchKnowledgeRequest,
                              context: grpc.aio.ServicerContext) -> pb.SearchKnowledgeResponse:
        query = search_query(request, "")
        hits = await self._knowledge.search(query.text, query.k, query.statuses, query.source)
        return pb.SearchKnowledgeResponse(hits=[
            pb.KnowledgeHit(entry=to_message(hit.entry), score=hit.score, matched_question=_matched(hit),
                            support=hit.support)
            for hit in hits
        ])

    async def BatchSearchKnowledge(self, request: pb.BatchSearchKnowledgeRequest,
                                   context: grpc.aio.ServicerContext) -> pb.BatchSearchKnowledgeResponse:
        if not 1 <= len(request.queries) <= MAX_BATCH_QUERIES:
            raise InvalidArgument("queries", f"must hold 1 to {MAX_BATCH_QUERIES} queries, got {len(request.queries)}")
        if not 0 <= request.peer_similarity <= 1:
            raise InvalidArgument("peer_similarity", f"must be between 0 and 1, got {request.peer_similarity}")
        queries = [search_query(q, f"queries[{index}].") for index, q in enumerate(request.queries)]
        hits, peers = await self._knowledge.search_many(queries, request.peer_similarity)
        entries = {hit.entry.entry_id: hit.entry for found in hits for hit in found}
        return pb.BatchSearchKnowledgeResponse(
            results=[pb.BatchSearchResult(
                hits=[pb.BatchSearchHit(entry_id=hit.entry.entry_id, score=hit.score, matched_question=_matched(hit),
                                        support=hit.support)
                      for hit in found],
                peers=[pb.PeerQuery(query_index=peer.index, score=peer.score) for peer in similar])
                for found, similar in zip(hits, peers, strict=True)],
            # Each entry once: the trainer's questions find the same few fixes again and again.
            entries=[to_message(entry) for entry in entries.values()])

    async def ReplayKnowledge(self, request: pb.ReplayKnowledgeRequest,
                              context: grpc.aio.ServicerContext) -> pb.ReplayKnowledgeResponse:
        if not 1 <= len(request.queries) <= MAX_REPLAY_QUERIES:
            raise InvalidArgument("queries",
                                  f"must hold 1 to {MAX_REPLAY_QUERIES:,} queries, got {len(request.queries)}")
        if len(request.changes) > MAX_BATCH:
            raise InvalidArgument("changes", f"must hold at most {MAX_BATCH} entries, got {len(request.changes)}")
        queries = [validation.text(f"queries[{index}]", query, max_chars=MAX_QUESTION_CHARS, required=True)
                   for index, query in enumerate(request.queries)]
        seen: set[str] = set()
        for index, message in enumerate(request.changes):
            if not message.entry_id or message.entry_id in seen:
                raise InvalidArgument(f"changes[{index}].entry_id",
                                      "is required and must appear once: overtakes name the entry")
            seen.add(message.entry_id)
        changes = [from_message(message, f"changes[{index}]") for index, message in enumerate(request.changes)]
        results = await replay(self._knowledge, self._relevance, queries, changes, request.each_alone)
        return pb.ReplayKnowledgeResponse(results=[pb.ReplayResult(
            entry_id=result.entry_id, score=result.score, answered=result.answered,
            overtaken_by=[pb.ReplayOvertake(entry_id=o.entry_id, question=o.key, score=o.score)
                          for o in result.overtaken_by]) for result in results])

    async def UpsertEntries(self, request: pb.UpsertEntriesRequest,
                            context: grpc.aio.ServicerContext) -> pb.UpsertEntriesResponse:
        if not 1 <= len(request.entries) <= MAX_BATCH:
            raise InvalidArgument("entries", f"must hold 1 to {MAX_BATCH} entries, got {len(request.entries)}")
        entries = [from_message(message, f"entries[{index}]") for index, message in enumerate(request.entries)]
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if entry.entry_id in seen:
                raise InvalidArgument(f"entries[{index}].entry_id", "appears twice in the batch")
            seen.add(entry.entry_id)
        stored = await self._knowledge.upsert(entries, note_field(request.note, "note"))
        return pb.UpsertEntriesResponse(entries=[to_message(e) for e in stored])

    async def GetEntry(self, request: pb.GetEntryRequest, context: grpc.aio.ServicerContext) -> pb.GetEntryResponse:
        entry = await self._knowledge.get(entry_id_field("entry_id", request.entry_id))
        return pb.GetEntryResponse(entry=to_message(entry))

    async def ListEntries(self, request: pb.ListEntriesRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListEntriesResponse:
        size = validation.page_size("page_size", request.page_size)
        validation.enum_value("status", request.status, pb.EntryStatus, allow_unspecified=True)
        validation.enum_value("kind", request.kind, pb.EntryKind, allow_unspecified=True)
        where = ListFilter(source=validation.text("source", request.source, max_chars=MAX_SOURCE_CHARS),
                           status=_STATUS.get(request.status), kind=_KIND.get(request.kind))
        filters = [where.source, where.status, where.kind]
        after = self._tokens.after(request.page_token, filters,
                                   lambda cursor: (datetime.fromisoformat(cursor[0]), str(cursor[1])))
        entries, token = self._tokens.page(await self._knowledge.list_page(where, after, size + 1), size, filters,
                                           _cursor)
        return pb.ListEntriesResponse(entries=[to_message(e) for e in entries], next_page_token=token)

    async def UpdateEntry(self, request: pb.UpdateEntryRequest,
                          context: grpc.aio.ServicerContext) -> pb.UpdateEntryResponse:
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("update_mask", "must name at least one field")
        for path in paths:
            if path not in _UPDATABLE:
                allowed = ", ".join(sorted(_UPDATABLE))
                raise InvalidArgument("update_mask", f"{path!r} cannot be updated; allowed: {allowed}")
        note = note_field(request.note, "note")
        expected = revision_field("expected_revision", request.expected_revision)
        current = await self._knowledge.get(entry_id_field("entry.entry_id", request.entry.entry_id))
        merged = to_message(current)
        for path in paths:
            if path in ("questions",):
                del merged.questions[:]
                merged.questions.extend(request.entry.questions)
            elif path == "metadata":
                merged.metadata.clear()
                merged.metadata.update(request.entry.metadata)
            elif path == "provenance":
                merged.provenance.CopyFrom(request.entry.provenance)
            else:
                setattr(merged, path, getattr(request.entry, path))
        if "status" in paths and request.entry.status == pb.ENTRY_STATUS_UNSPECIFIED:
            raise InvalidArgument("entry.status", "is required when named in update_mask")
        entry = from_message(merged, "entry")
        if "title" not in paths:
            entry = replace(entry, title=current.title)
        # The merge was made on the entry as read here: with no expected revision of the
        # caller's, that one is expected, so a change landing in between is refused, not lost.
        stored = await self._knowledge.upsert([entry], note, {entry.entry_id: expected or current.revision})
        return pb.UpdateEntryResponse(entry=to_message(stored[0]))

    async def DeleteEntry(self, request: pb.DeleteEntryRequest,
                          context: grpc.aio.ServicerContext) -> pb.DeleteEntryResponse:
        entry_id = entry_id_field("entry_id", request.entry_id)
        await self._knowledge.delete(entry_id, request.allow_missing, note_field(request.note, "note"),
                                     revision_field("expected_revision", request.expected_revision))
        return pb.DeleteEntryResponse()

    async def ListRevisions(self, request: pb.ListRevisionsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListRevisionsResponse:
        entry_id = entry_id_field("entry_id", request.entry_id)
        size = validation.page_size("page_size", request.page_size)
        filters = [entry_id]  # a page token is bound to its entry
        before = self._tokens.after(request.page_token, filters, lambda cursor: int(cursor[0]))
        revisions, token = self._tokens.page(await self._knowledge.history(entry_id, before, size + 1), size,
                                             filters, lambda last: [last.revision])
        return pb.ListRevisionsResponse(revisions=[revision_message(r) for r in revisions], next_page_token=token)

    async def RestoreRevision(self, request: pb.RestoreRevisionRequest,
                              context: grpc.aio.ServicerContext) -> pb.RestoreRevisionResponse:
        entry_id = entry_id_field("entry_id", request.entry_id)
        number = revision_field("revision", request.revision, required=True)
        expected = revision_field("expected_revision", request.expected_revision)
        restored = await self._knowledge.restore(entry_id, number, expected, note_field(request.note, "note"))
        return pb.RestoreRevisionResponse(entry=to_message(restored))

"""Writing a page's fixes to the bot's index: new entries with UpsertEntries in
batches, where an entry the bot refuses fails only its own questions, not its
batch's; entries that exist with UpdateEntry, each merged with what others
changed since the page read it (`update`); every write of a run names the run
in the revisions it makes (StampedKnowledge)."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from trainer.changes import missing
from trainer.fold import MAX_INTERACTIONS

_log = logging.getLogger("trainer")
K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bpb.UpsertEntriesRequest, bpb.UpdateEntryRequest)
# Entries per UpsertEntries: the contract's 500, and well under the 4 MiB message limit.
UPSERT_ENTRIES = 500
UPSERT_BYTES = 2 * 1024 * 1024
# Reads and merges of one entry before its write is given up, when other
# writes keep coming between the read and the write.
UPDATE_ATTEMPTS = 3
# What a run changes in an entry that exists.
UPDATED_FIELDS = ("questions", "content", "status", "provenance")


class StampedKnowledge:
    """The bot's KnowledgeService as one run uses it: each UpsertEntries carries
    `note` (the run, and why it writes), so that every revision the run makes
    names it; every other call goes through as it is."""

    def __init__(self, knowledge: bpb_grpc.KnowledgeServiceAsyncStub, note: bpb.RevisionNote) -> None:
        self._knowledge = knowledge
        self._note = note

    def __getattr__(self, name: str) -> Any:
        return getattr(self._knowledge, name)

    def UpsertEntries(self, request: bpb.UpsertEntriesRequest, **kwargs: Any) -> Any:
        return self._knowledge.UpsertEntries(self._stamped(request), **kwargs)

    def UpdateEntry(self, request: bpb.UpdateEntryRequest, **kwargs: Any) -> Any:
        return self._knowledge.UpdateEntry(self._stamped(request), **kwargs)

    def _stamped(self, request: R) -> R:
        stamped = type(request)()
        stamped.CopyFrom(request)
        if not stamped.HasField("note"):
            stamped.note.CopyFrom(self._note)
        return stamped


def batches(changes: Sequence[tuple[K, bpb.KnowledgeEntry]]) -> list[list[tuple[K, bpb.KnowledgeEntry]]]:
    found: list[list[tuple[K, bpb.KnowledgeEntry]]] = []
    size = 0
    for change in changes:
        change_size = change[1].ByteSize()
        if not found or len(found[-1]) == UPSERT_ENTRIES or size + change_size > UPSERT_BYTES:
            found.append([])
            size = 0
        found[-1].append(change)
        size += change_size
    return found


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


async def upsert(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, changes: Sequence[tuple[K, bpb.KnowledgeEntry]],
                 failures: list[str]) -> set[K]:
    """Writes each change's entry; returns the keys of those that could not be
    written, and adds why to `failures`."""
    failed: set[K] = set()
    for batch in batches(changes):
        try:
            await knowledge.UpsertEntries(bpb.UpsertEntriesRequest(entries=[entry for _, entry in batch]))
            continue
        except Exception as error:  # noqa: BLE001 - one bad fix must not stop the run
            _log.warning("could not write fixes", extra={"error": _failure(error), "entries": len(batch)})
            failures.append(_failure(error))
            refused = isinstance(error, grpc.aio.AioRpcError) and error.code() == grpc.StatusCode.INVALID_ARGUMENT
        if not refused or len(batch) == 1:
            failed |= {key for key, _ in batch}
            continue
        # The bot refuses a whole batch for one invalid entry: one by one, the others get written.
        for key, entry in batch:
            try:
                await knowledge.UpsertEntries(bpb.UpsertEntriesRequest(entries=[entry]))
            except Exception as error:  # noqa: BLE001 - its questions are marked failed
                _log.warning("could not write a fix", extra={"error": _failure(error)})
                failures.append(_failure(error))
                failed.add(key)
    return failed


class Conflict(Exception):
    """The run and another writer both changed the same field of an entry since the run read it."""


def merged(base: bpb.KnowledgeEntry, ours: bpb.KnowledgeEntry, stored: bpb.KnowledgeEntry) -> bpb.KnowledgeEntry:
    """`stored` with the run's changes (`ours`, made from `base`) applied: the
    phrasings the run added (as many as the entry has room for) and removed,
    its interactions, and each other field the run changed; what others
    changed since `base` (a reviewer's phrasings, answer or status, a restored
    revision) stays. A field both changed, to different values, is a
    `Conflict`: neither is overwritten."""
    entry = bpb.KnowledgeEntry()
    entry.CopyFrom(stored)
    for name in ("content", "status"):
        theirs, mine, before = getattr(stored, name), getattr(ours, name), getattr(base, name)
        if mine != before:
            if theirs not in (before, mine):
                raise Conflict(f"{name} of {stored.entry_id} was changed by another writer since the run read it")
            setattr(entry, name, mine)
    removed = {question.strip().lower() for question in base.questions} - {
        question.strip().lower() for question in ours.questions}
    kept = [question for question in stored.questions if question.strip().lower() not in removed]
    del entry.questions[:]
    entry.questions.extend(kept)
    entry.questions.extend(missing(entry, [q for q in ours.questions if q not in set(base.questions)]))
    known = {*base.provenance.interaction_ids, *stored.provenance.interaction_ids}
    ids = [i for i in ours.provenance.interaction_ids if i not in known]
    room = MAX_INTERACTIONS - len(stored.provenance.interaction_ids)
    entry.provenance.interaction_ids.extend(ids[:max(0, room)])
    return entry


async def update(knowledge: bpb_grpc.KnowledgeServiceAsyncStub,
                 changes: Sequence[tuple[K, bpb.KnowledgeEntry, bpb.KnowledgeEntry]],
                 failures: list[str], recreate: bool = False) -> tuple[set[K], dict[K, bpb.KnowledgeEntry]]:
    """Writes each change to an entry that exists, given as (key, `base`: the
    entry as the run read it, `ours`: as the run would have it). A page reads
    its entries, then works for minutes (the teacher): a blind write of `ours`
    would undo what a reviewer did meanwhile (phrasings approved into the
    entry, an edited answer). So each is read again, merged (`merged`) and
    written only if still at the revision read (UpdateEntry's
    `expected_revision`), read and merged again when another write came
    between. An entry deleted meanwhile is written anew with `recreate` (a
    run's fix, which its record still holds), else not written. Returns the
    keys that could not be written (a conflict, an entry deleted meanwhile, a
    write that kept losing the race), adding why to `failures`, and each
    written entry as now stored."""
    failed: set[K] = set()
    stored: dict[K, bpb.KnowledgeEntry] = {}
    for key, base, ours in changes:
        try:
            stored[key] = await _update(knowledge, base, ours, recreate)
        except Exception as error:  # noqa: BLE001 - its questions are marked failed
            _log.warning("could not write a fix", extra={"error": _failure(error), "entry_id": ours.entry_id})
            failures.append(_failure(error))
            failed.add(key)
    return failed, stored


async def _update(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, base: bpb.KnowledgeEntry,
                  ours: bpb.KnowledgeEntry, recreate: bool) -> bpb.KnowledgeEntry:
    try:
        current = await _read(knowledge, ours.entry_id)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND or not recreate:
            raise
        return (await knowledge.UpsertEntries(bpb.UpsertEntriesRequest(entries=[ours]))).entries[0]
    for attempt in range(1, UPDATE_ATTEMPTS + 1):
        entry = merged(base, ours, current)
        paths = [name for name in UPDATED_FIELDS if getattr(entry, name) != getattr(current, name)]
        if not paths:
            return current
        try:
            response = await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
                entry=entry, update_mask=FieldMask(paths=paths), expected_revision=current.revision))
            return response.entry
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION or attempt == UPDATE_ATTEMPTS:
                raise
            # Only a newer revision is a race to merge again; the bot also says
            # FAILED_PRECONDITION when a service it depends on refused the write.
            newer = await _read(knowledge, ours.entry_id)
            if newer.revision == current.revision:
                raise
            current = newer
    raise AssertionError("unreachable")


async def _read(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, entry_id: str) -> bpb.KnowledgeEntry:
    return (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=entry_id))).entry

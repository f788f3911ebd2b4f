"""Writing a page's fixes to the bot's index: UpsertEntries in batches, and an
entry the bot refuses fails only its own questions, not its batch's; every
write of a run names the run in the revisions it makes (StampedKnowledge)."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc

_log = logging.getLogger("trainer")
K = TypeVar("K", bound=Hashable)
# Entries per UpsertEntries: the contract's 500, and well under the 4 MiB message limit.
UPSERT_ENTRIES = 500
UPSERT_BYTES = 2 * 1024 * 1024


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
        stamped = bpb.UpsertEntriesRequest()
        stamped.CopyFrom(request)
        if not stamped.HasField("note"):
            stamped.note.CopyFrom(self._note)
        return self._knowledge.UpsertEntries(stamped, **kwargs)


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

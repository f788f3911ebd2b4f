"""Knowledge revisions: every write that changes an entry is a revision with who
called, their note and the entry as it was after it; an entry's history is
listed newest first, and an earlier revision can be restored (itself a
revision). Against the real KnowledgeService on PostgreSQL and pgvector."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg
import grpc
import pytest

from bot import catalog
from bot.__main__ import MIGRATIONS
from mend.bot.v1 import bot_service_pb2 as pb
from mend.bot.v1 import bot_service_pb2_grpc as pb_grpc
from mendkit import credentials, migrations
from mendkit.errors import Unavailable
from tests.support import RETURNS, channel, expect_status, upsert

FIXED = "Returns are free within 60 days now."


@pytest.fixture(autouse=True)
async def no_history(knowledge, knowledge_index):
    """The `knowledge` fixture empties the catalogue; the history outlives entries, so it goes too."""
    await knowledge_index.pool.execute("TRUNCATE knowledge_revisions")


async def history(stub, entry_id: str = RETURNS.entry_id) -> list[pb.KnowledgeRevision]:
    return list((await stub.ListRevisions(pb.ListRevisionsRequest(entry_id=entry_id))).revisions)


async def edit(stub, content: str, **note) -> pb.KnowledgeEntry:
    return (await stub.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id=RETURNS.entry_id, content=content), update_mask={"paths": ["content"]},
        note=pb.RevisionNote(**note)))).entry


async def top_hit(stub, query: str) -> str:
    hits = (await stub.SearchKnowledge(pb.SearchKnowledgeRequest(query=query, k=1))).hits
    return hits[0].entry.content if hits else ""


async def test_every_change_is_a_revision_with_who_why_and_the_entry_after_it(knowledge):
    (created,) = (await knowledge.UpsertEntries(pb.UpsertEntriesRequest(
        entries=[RETURNS], note=pb.RevisionNote(author="ana", reason="the returns policy")))).entries
    await upsert(knowledge, RETURNS)  # the same entry again: nothing changes, no revision
    edited = await edit(knowledge, FIXED, author="ben", reason="60 days since March", fix_id="fix-1",
                        training_run_id="run-1")
    await knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id=RETURNS.entry_id,
                                                      note=pb.RevisionNote(reason="retired")))
    assert (created.revision, edited.revision) == (1, 2)
    deleted, updated, first = await history(knowledge)
    assert [(r.revision, r.action, r.actor) for r in (deleted, updated, first)] == [
        (3, pb.REVISION_ACTION_DELETE, "admin"), (2, pb.REVISION_ACTION_UPDATE, "admin"),
        (1, pb.REVISION_ACTION_CREATE, "admin")]
    assert first.note == pb.RevisionNote(author="ana", reason="the returns policy")
    assert updated.note == pb.RevisionNote(author="ben", reason="60 days since March", fix_id="fix-1",
                                           training_run_id="run-1")
    assert (first.entry.content, list(first.entry.questions)) == (RETURNS.content, list(RETURNS.questions))
    assert (updated.entry.content, updated.entry.revision) == (FIXED, 2)
    assert not deleted.HasField("entry") and deleted.note.reason == "retired"
    assert first.create_time.ToDatetime() <= updated.create_time.ToDatetime() <= deleted.create_time.ToDatetime()
    # Written again after its deletion, the entry goes on counting.
    (again,) = await upsert(knowledge, RETURNS)
    assert again.revision == 4 and (await history(knowledge))[0].action == pb.REVISION_ACTION_CREATE


async def test_a_write_that_only_marks_vectors_pending_is_no_revision(knowledge, knowledge_index):
    """Two writers of one entry at once: the second, identical write only marks
    the entry's vectors pending again (catalog.upsert_many); nothing a writer
    sets changed, so the entry keeps its revision and its history."""
    (entry,) = (await catalog.get_many(knowledge_index.pool, [(await upsert(knowledge, RETURNS))[0].entry_id])).values()
    (again,) = await catalog.upsert_many(knowledge_index.pool, [entry], [True])
    assert (again.vectors_pending, again.revision) == (True, 1)
    assert len(await history(knowledge)) == 1


async def test_a_write_racing_a_deletion_of_its_entry_fails_rather_than_lose_its_revision(knowledge, knowledge_index):
    """A write of an id whose deletion commits while the write waits on it counted
    its revision before the deletion took that number: it fails (the retry
    counts again) instead of leaving a history whose newest revision says deleted."""
    (entry,) = (await catalog.get_many(knowledge_index.pool, [(await upsert(knowledge, RETURNS))[0].entry_id])).values()
    async with knowledge_index.pool.acquire() as deleting:
        transaction = deleting.transaction()
        await transaction.start()
        await deleting.execute("DELETE FROM knowledge_entries WHERE entry_id = $1", entry.entry_id)
        await deleting.execute("INSERT INTO knowledge_revisions (entry_id, revision, action, actor) "
                               "VALUES ($1, 2, 'delete', 'admin')", entry.entry_id)
        writing = asyncio.ensure_future(catalog.upsert_many(knowledge_index.pool, [entry], [False]))
        await asyncio.sleep(0.5)  # the write now waits on the deleted row
        assert not writing.done()
        await transaction.commit()
        with pytest.raises(Unavailable) as raised:
            await writing
    # The caller is told what happened and what to do: the whole message, as the caller reads it.
    assert raised.value.message == "knowledge entry 'faq-returns' was deleted while this write ran; write it again"
    (again,) = await catalog.upsert_many(knowledge_index.pool, [entry], [False])
    assert again.revision == 3
    assert [(r.revision, r.action) for r in await history(knowledge)] == [
        (3, pb.REVISION_ACTION_CREATE), (2, pb.REVISION_ACTION_DELETE), (1, pb.REVISION_ACTION_CREATE)]


async def test_the_revision_names_the_callers_identity(knowledge, knowledge_address, knowledge_index):
    await upsert(knowledge, RETURNS)
    async with channel(knowledge_address, credentials.TRAINER) as trainer_channel:
        await pb_grpc.KnowledgeServiceStub(trainer_channel).UpsertEntries(pb.UpsertEntriesRequest(
            entries=[pb.KnowledgeEntry(entry_id=RETURNS.entry_id, kind=RETURNS.kind, content=FIXED,
                                       questions=RETURNS.questions, source=RETURNS.source)],
            note=pb.RevisionNote(author="ana", reason="approved", fix_id="fix-9")))
    newest = (await history(knowledge))[0]
    assert (newest.actor, newest.note.author, newest.note.fix_id) == ("trainer", "ana", "fix-9")
    # The bot's own ingest calls no RPC: the bot is who wrote it.
    await knowledge_index.upsert([catalog.Entry(entry_id="faq-ingested", kind="qa", title="", content="Yes.",
                                                questions=("Is it ingested?",), source="sample-kb", status="")])
    (ingested,) = await history(knowledge, "faq-ingested")
    assert (ingested.actor, ingested.note.reason) == ("bot", "written by the bot itself (python -m bot ingest)")


async def test_history_pages_newest_first_and_a_token_is_bound_to_its_entry(knowledge):
    await upsert(knowledge, RETURNS)
    for n in range(4):
        await edit(knowledge, f"Answer {n}.")
    first = await knowledge.ListRevisions(pb.ListRevisionsRequest(entry_id=RETURNS.entry_id, page_size=2))
    second = await knowledge.ListRevisions(pb.ListRevisionsRequest(entry_id=RETURNS.entry_id, page_size=2,
                                                                   page_token=first.next_page_token))
    last = await knowledge.ListRevisions(pb.ListRevisionsRequest(entry_id=RETURNS.entry_id, page_size=2,
                                                                 page_token=second.next_page_token))
    assert [[r.revision for r in page.revisions] for page in (first, second, last)] == [[5, 4], [3, 2], [1]]
    assert last.next_page_token == ""
    await upsert(knowledge, pb.KnowledgeEntry(entry_id="other", kind=pb.ENTRY_KIND_QA, content="x",
                                              questions=["y?"], source="test-kb"))
    await expect_status(knowledge.ListRevisions(pb.ListRevisionsRequest(entry_id="other",
                                                                        page_token=first.next_page_token)),
                        grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    await expect_status(knowledge.ListRevisions(pb.ListRevisionsRequest(entry_id="never-written")),
                        grpc.StatusCode.NOT_FOUND, "'never-written'", "never existed")
    await expect_status(knowledge.ListRevisions(pb.ListRevisionsRequest(entry_id="")),
                        grpc.StatusCode.INVALID_ARGUMENT, "entry_id")


async def test_restoring_a_revision_brings_the_entry_back_as_a_new_revision(knowledge):
    await upsert(knowledge, RETURNS)
    await knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id=RETURNS.entry_id, content=FIXED, questions=["Is there a refund window?"]),
        update_mask={"paths": ["content", "questions"]}))
    assert await top_hit(knowledge, RETURNS.questions[0]) != RETURNS.content
    restored = (await knowledge.RestoreRevision(pb.RestoreRevisionRequest(
        entry_id=RETURNS.entry_id, revision=1, expected_revision=2,
        note=pb.RevisionNote(author="ana", reason="the old policy still holds")))).entry
    assert (restored.content, list(restored.questions), restored.revision) == (
        RETURNS.content, list(RETURNS.questions), 3)
    # The index follows: the old phrasing finds the entry again.
    assert await top_hit(knowledge, RETURNS.questions[0]) == RETURNS.content
    newest = (await history(knowledge))[0]
    assert (newest.revision, newest.action, newest.restored_revision, newest.note.reason) == (
        3, pb.REVISION_ACTION_RESTORE, 1, "the old policy still holds")
    # A retry (the same restore, the same now stale expected_revision) writes nothing.
    again = (await knowledge.RestoreRevision(pb.RestoreRevisionRequest(
        entry_id=RETURNS.entry_id, revision=1, expected_revision=2))).entry
    assert again.revision == 3 and len(await history(knowledge)) == 3


async def test_a_restore_or_edit_refuses_when_the_entry_changed_since_and_names_the_change(knowledge):
    await upsert(knowledge, RETURNS)
    await edit(knowledge, FIXED, author="ben", reason="60 days since March")
    details = await expect_status(knowledge.RestoreRevision(pb.RestoreRevisionRequest(
        entry_id=RETURNS.entry_id, revision=1, expected_revision=1)), grpc.StatusCode.FAILED_PRECONDITION)
    assert details.startswith(f"knowledge entry {RETURNS.entry_id!r} is at revision 2, not 1: it changed since "
                              "(revision 2, update by admin for ben at "), details
    assert details.endswith(": 60 days since March); ListRevisions shows the changes, read the entry again and "
                            "decide"), details
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id=RETURNS.entry_id, content="Stale."), update_mask={"paths": ["content"]},
        expected_revision=1)), grpc.StatusCode.FAILED_PRECONDITION, "is at revision 2, not 1")
    await expect_status(knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id=RETURNS.entry_id, expected_revision=1)),
                        grpc.StatusCode.FAILED_PRECONDITION, "is at revision 2, not 1")
    # Nothing was written, and the refused delete left the entry answering.
    assert len(await history(knowledge)) == 2
    assert await top_hit(knowledge, RETURNS.questions[0]) == FIXED
    # At the expected revision, each goes through.
    assert (await edit(knowledge, "Returns: 60 days.")).revision == 3
    await knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id=RETURNS.entry_id, expected_revision=3))
    assert (await history(knowledge))[0].action == pb.REVISION_ACTION_DELETE


async def test_a_deleted_entry_can_be_restored_but_a_deletion_cannot(knowledge):
    await upsert(knowledge, RETURNS)
    await knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id=RETURNS.entry_id))
    await expect_status(knowledge.RestoreRevision(pb.RestoreRevisionRequest(entry_id=RETURNS.entry_id, revision=2)),
                        grpc.StatusCode.INVALID_ARGUMENT, "revision", "deleted the entry")
    await expect_status(knowledge.RestoreRevision(pb.RestoreRevisionRequest(entry_id=RETURNS.entry_id, revision=9)),
                        grpc.StatusCode.NOT_FOUND, "has no revision 9")
    await expect_status(knowledge.RestoreRevision(pb.RestoreRevisionRequest(entry_id=RETURNS.entry_id)),
                        grpc.StatusCode.INVALID_ARGUMENT, "revision")
    await expect_status(knowledge.RestoreRevision(pb.RestoreRevisionRequest(entry_id=RETURNS.entry_id, revision=1,
                                                                            expected_revision=-1)),
                        grpc.StatusCode.INVALID_ARGUMENT, "expected_revision")
    restored = (await knowledge.RestoreRevision(pb.RestoreRevisionRequest(
        entry_id=RETURNS.entry_id, revision=1, expected_revision=2))).entry
    assert (restored.revision, restored.content) == (3, RETURNS.content)
    assert await top_hit(knowledge, RETURNS.questions[0]) == RETURNS.content


async def test_a_note_is_validated_and_the_trainer_may_list_and_restore(knowledge, knowledge_address):
    await upsert(knowledge, RETURNS)
    await expect_status(knowledge.UpsertEntries(pb.UpsertEntriesRequest(
        entries=[RETURNS], note=pb.RevisionNote(reason="x" * 2001))), grpc.StatusCode.INVALID_ARGUMENT, "note.reason")
    await expect_status(knowledge.DeleteEntry(pb.DeleteEntryRequest(
        entry_id=RETURNS.entry_id, note=pb.RevisionNote(author="a" * 257))), grpc.StatusCode.INVALID_ARGUMENT,
        "note.author")
    async with channel(knowledge_address, credentials.BOT) as bot_channel:
        bot = pb_grpc.KnowledgeServiceStub(bot_channel)
        await expect_status(bot.ListRevisions(pb.ListRevisionsRequest(entry_id=RETURNS.entry_id)),
                            grpc.StatusCode.PERMISSION_DENIED)
        await expect_status(bot.RestoreRevision(pb.RestoreRevisionRequest(entry_id=RETURNS.entry_id, revision=1)),
                            grpc.StatusCode.PERMISSION_DENIED)
    async with channel(knowledge_address, credentials.TRAINER) as trainer_channel:
        trainer = pb_grpc.KnowledgeServiceStub(trainer_channel)
        assert len((await trainer.ListRevisions(pb.ListRevisionsRequest(entry_id=RETURNS.entry_id))).revisions) == 1
        await trainer.RestoreRevision(pb.RestoreRevisionRequest(entry_id=RETURNS.entry_id, revision=1))


def _migrations_before_revisions(folder: Path) -> list[int]:
    """Copies the bot's migrations older than 0006 into `folder`; the versions of the rest."""
    folder.mkdir()
    later = []
    for path in sorted(Path(MIGRATIONS).glob("*.sql")):
        if path.name < "0006":
            shutil.copy(path, folder / path.name)
        else:
            later.append(int(path.name[:4]))
    return later


async def test_entries_stored_before_revisions_get_their_first_revision(postgres_server, tmp_path):
    """Migration 0006 on a catalogue with entries: each one's state now is its revision 1."""
    name = f"mend_revisions_{os.getpid()}"
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    before = tmp_path / "before"
    later = _migrations_before_revisions(before)
    connection = await asyncpg.connect(postgres_server.rsplit("/", 1)[0] + f"/{name}")
    try:
        await migrations.apply(connection, "bot", before)
        await connection.execute(
            "INSERT INTO knowledge_entries (entry_id, kind, content, questions, source, status) "
            "VALUES ('faq-old', 'qa', 'Old answer.', '{\"Old question?\"}', 'sample-kb', 'published')")
        assert await migrations.apply(connection, "bot", Path(MIGRATIONS)) == later
        row = await connection.fetchrow("SELECT revision, action, actor, state::text FROM knowledge_revisions")
        assert (row["revision"], row["action"], row["actor"]) == (1, "create", "migration")
        assert '"content": "Old answer."' in row["state"] and '"questions": ["Old question?"]' in row["state"]
        assert await connection.fetchval("SELECT revision FROM knowledge_entries WHERE entry_id = 'faq-old'") == 1
    finally:
        await connection.close()
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


"""Knowledge revisions (bot/catalog.py) beyond tests/bot/test_revisions.py: what a
refusal says of the change that came between (catalog.describe: every part of
the note that is there, nothing for a part that is not), and that the check of
an expected revision holds its entry until the change is written. Pinned where
the mutation run (scripts/mutate, docs/testing.md) found a change that no test
noticed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot import catalog
from mendkit.errors import FailedPrecondition

WHEN = datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)


def revision(note: catalog.Note) -> catalog.Revision:
    return catalog.Revision(entry_id="faq-returns", revision=4, action="update", entry=None, note=note,
                            create_time=WHEN)


def test_a_revision_is_described_with_who_for_whom_which_fix_and_why():
    described = catalog.describe(revision(catalog.Note(actor="trainer", author="ben", reason="approved",
                                                       fix_id="fix-7")))
    assert described == "revision 4, update by trainer for ben at 2026-03-01 09:30:05Z, fix fix-7: approved"


def test_a_note_without_author_fix_or_reason_adds_nothing_for_them():
    assert catalog.describe(revision(catalog.Note(actor="admin"))) == \
        "revision 4, update by admin at 2026-03-01 09:30:05Z"
    assert catalog.describe(revision(catalog.Note(actor="admin", fix_id="fix-7"))) == \
        "revision 4, update by admin at 2026-03-01 09:30:05Z, fix fix-7"


async def test_a_write_waits_for_a_check_in_progress_and_then_refuses_the_stale_revision(knowledge, knowledge_index):
    """`expected_revision` guards against a write that comes between the check and
    the change: a second writer expecting the same revision waits for the first
    one's transaction and is then refused, naming the first one's revision."""
    pool = knowledge_index.pool
    [stored] = await catalog.upsert_many(pool, [catalog.Entry(
        entry_id="kb-lock", kind="qa", title="", content="Within 30 days.", questions=("How do I return it?",),
        source="s", status="published")], [False], note=catalog.Note(actor="admin"))
    assert stored.revision == 1
    mine = catalog.Entry(**{**stored.__dict__, "content": "Within 60 days."})
    theirs = catalog.Entry(**{**stored.__dict__, "content": "Within 90 days."})
    async with pool.acquire() as connection, connection.transaction():
        await catalog._check_revision(connection, "kb-lock", 1)
        second = asyncio.create_task(catalog.upsert_many(pool, [theirs], [False], note=catalog.Note(actor="ben"),
                                                         expected={"kb-lock": 1}))
        await asyncio.sleep(1)
        assert not second.done()  # it waits on the entry's row
        row = await connection.fetchrow(catalog._UPSERT, mine.entry_id, mine.kind, mine.title, mine.content,
                                        list(mine.questions), mine.source, mine.provenance, mine.status,
                                        mine.metadata, False)
        await catalog._record(connection, "kb-lock", row["revision"], "update", mine.state(),
                              catalog.Note(actor="admin"))
    with pytest.raises(FailedPrecondition) as refused:
        await second
    assert "is at revision 2, not 1" in refused.value.message
    assert (await catalog.get(pool, "kb-lock")).content == "Within 60 days."

"""The knowledge catalogue and the chat log when their database is gone, and the
catalogue's list filters: pinned where the mutation run (scripts/mutate,
docs/testing.md) found a change that no test noticed."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from bot import catalog
from bot.conversations import Conversations
from mend.bot.v1 import bot_service_pb2 as pb
from mendkit.errors import Unavailable
from tests.support import RETURNS, SHIPPING, upsert

ENTRY = catalog.Entry(entry_id="kb-1", kind="qa", title="", content="a", questions=("q",), source="s",
                      status="published")
CATALOGUE = {
    "get_many": lambda pool: catalog.get_many(pool, ["kb-1"]),
    "get": lambda pool: catalog.get(pool, "kb-1"),
    "upsert_many": lambda pool: catalog.upsert_many(pool, [ENTRY], [False]),
    "vectors_written": lambda pool: catalog.vectors_written(pool, [ENTRY]),
    "delete": lambda pool: catalog.delete(pool, "kb-1"),
    "list_page": lambda pool: catalog.list_page(pool, catalog.ListFilter("", None, None), None, 10),
    # The entry's history (ListRevisions, RestoreRevision).
    "history": lambda pool: catalog.history(pool, "kb-1", None, 10),
    "revision": lambda pool: catalog.revision(pool, "kb-1", 1),
}
CHAT_LOG = {
    "history": lambda pool: Conversations(pool).history("conv-1", 3),
    "started": lambda pool: Conversations(pool).started("conv-1", uuid.uuid4()),
}


@pytest.mark.parametrize("call", list(CATALOGUE))
async def test_an_unreachable_catalogue_is_unavailable_and_named(unreachable, call):
    with pytest.raises(Unavailable) as raised:
        await CATALOGUE[call](unreachable)
    assert raised.value.message.startswith("the knowledge database is unreachable: "), raised.value.message


@pytest.mark.parametrize("call", list(CHAT_LOG))
async def test_an_unreachable_chat_log_is_unavailable_and_named(unreachable, call):
    with pytest.raises(Unavailable) as raised:
        await CHAT_LOG[call](unreachable)
    assert raised.value.message.startswith("the bot database is unreachable: "), raised.value.message


async def test_entries_are_listed_by_source(knowledge):
    other = pb.KnowledgeEntry()
    other.CopyFrom(SHIPPING)
    other.source = "other-kb"
    await upsert(knowledge, RETURNS, other)
    listed = await knowledge.ListEntries(pb.ListEntriesRequest(source="other-kb"))
    assert [e.entry_id for e in listed.entries] == ["faq-shipping"]
    listed = await knowledge.ListEntries(pb.ListEntriesRequest(source="test-kb", kind=pb.ENTRY_KIND_QA,
                                                               status=pb.ENTRY_STATUS_PUBLISHED))
    assert [e.entry_id for e in listed.entries] == ["faq-returns"]


async def test_an_entrys_metadata_is_read_back_and_kept_by_an_update_of_another_field(knowledge):
    tagged = pb.KnowledgeEntry()
    tagged.CopyFrom(RETURNS)
    tagged.metadata["file"] = "returns.md"
    await upsert(knowledge, tagged)
    stored = (await knowledge.GetEntry(pb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert dict(stored.metadata) == {"file": "returns.md"}
    edited = pb.KnowledgeEntry(entry_id="faq-returns", content="Return unused items within 90 days.")
    await knowledge.UpdateEntry(pb.UpdateEntryRequest(entry=edited, update_mask=FieldMask(paths=["content"])))
    stored = (await knowledge.GetEntry(pb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert stored.content == "Return unused items within 90 days."
    assert dict(stored.metadata) == {"file": "returns.md"}

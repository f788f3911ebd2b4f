"""KnowledgeService over a real channel: the real pgvector index in PostgreSQL
and the real local MiniLM embedder."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from mend.bot.v1 import bot_service_pb2 as pb
from tests.test_interactions_service import expect_status

RETURNS = pb.KnowledgeEntry(
    entry_id="faq-returns", kind=pb.ENTRY_KIND_QA, source="test-kb",
    content="You can return unused items within 60 days for a full refund.",
    questions=["How do I return something?", "What is your return policy?", "Can I send back an item?"],
)
SHIPPING = pb.KnowledgeEntry(
    entry_id="faq-shipping", kind=pb.ENTRY_KIND_QA, source="test-kb",
    content="Standard shipping takes 3-5 business days and is free over 75 euros.",
    questions=["How long does delivery take?", "When will my parcel arrive?"],
)
ARTICLE = pb.KnowledgeEntry(
    entry_id="care:1", kind=pb.ENTRY_KIND_ARTICLE, source="test-kb", title="Caring for down sleeping bags",
    content="Wash down sleeping bags rarely, with a down-specific soap, and tumble dry on low heat with dryer balls.",
)


async def upsert(stub, *entries: pb.KnowledgeEntry) -> list[pb.KnowledgeEntry]:
    return list((await stub.UpsertEntries(pb.UpsertEntriesRequest(entries=entries))).entries)


async def search(stub, query: str, **kwargs) -> list[pb.KnowledgeHit]:
    return list((await stub.SearchKnowledge(pb.SearchKnowledgeRequest(query=query, **kwargs))).hits)


async def test_upsert_then_get_returns_the_entry_with_defaults(knowledge):
    stored = (await upsert(knowledge, RETURNS))[0]
    assert stored.status == pb.ENTRY_STATUS_PUBLISHED
    assert stored.title == "How do I return something?"  # the first phrasing
    assert stored.HasField("create_time") and stored.HasField("update_time")
    got = (await knowledge.GetEntry(pb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert got == stored


async def test_a_paraphrase_finds_the_entry_by_its_phrasings(knowledge):
    await upsert(knowledge, RETURNS, SHIPPING, ARTICLE)
    hits = await search(knowledge, "I want to send my jacket back, how?", k=3)
    assert hits[0].entry.entry_id == "faq-returns"
    assert hits[0].matched_question in RETURNS.questions
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    hits = await search(knowledge, "how should I clean my down bag", k=1)
    assert hits[0].entry.entry_id == "care:1" and hits[0].matched_question == ""


async def test_only_published_entries_answer_by_default(knowledge):
    proposed = pb.KnowledgeEntry()
    proposed.CopyFrom(SHIPPING)
    proposed.status = pb.ENTRY_STATUS_PROPOSED
    await upsert(knowledge, RETURNS, proposed)
    hits = await search(knowledge, "When will my parcel arrive?", k=5)
    assert "faq-shipping" not in [h.entry.entry_id for h in hits]
    hits = await search(knowledge, "When will my parcel arrive?", k=5, statuses=[pb.ENTRY_STATUS_PROPOSED])
    assert [h.entry.entry_id for h in hits] == ["faq-shipping"]


async def test_source_filter(knowledge):
    other = pb.KnowledgeEntry()
    other.CopyFrom(SHIPPING)
    other.source = "self-healing-feedback"
    await upsert(knowledge, RETURNS, other)
    hits = await search(knowledge, "return policy", source="self-healing-feedback")
    assert [h.entry.entry_id for h in hits] == ["faq-shipping"]


async def test_upsert_is_idempotent_and_does_not_reembed_unchanged_entries(knowledge, knowledge_index, monkeypatch):
    await upsert(knowledge, RETURNS, SHIPPING)
    calls = []
    real = knowledge_index.embedder.embed

    async def counting(texts):
        calls.append(list(texts))
        return await real(texts)

    monkeypatch.setattr(knowledge_index.embedder, "embed", counting)
    await upsert(knowledge, RETURNS, SHIPPING)
    assert calls == []
    changed = pb.KnowledgeEntry()
    changed.CopyFrom(RETURNS)
    changed.questions.append("Is there a returns window?")
    await upsert(knowledge, changed)
    assert calls == [list(changed.questions)]
    count = await knowledge_index.pool.fetchval("SELECT count(*) FROM knowledge_entries")
    vectors = await knowledge_index.pool.fetchval(
        "SELECT count(*) FROM knowledge_vectors WHERE entry_id = 'faq-returns'")
    assert (count, vectors) == (2, 4)


async def test_update_publishes_a_proposal_and_edits_the_answer(knowledge):
    proposal = pb.KnowledgeEntry()
    proposal.CopyFrom(SHIPPING)
    proposal.status = pb.ENTRY_STATUS_PROPOSED
    await upsert(knowledge, proposal)
    updated = (await knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id="faq-shipping", status=pb.ENTRY_STATUS_PUBLISHED,
                                content="Standard shipping takes 2-4 business days."),
        update_mask=FieldMask(paths=["status", "content"])))).entry
    assert updated.status == pb.ENTRY_STATUS_PUBLISHED
    assert updated.content == "Standard shipping takes 2-4 business days."
    assert list(updated.questions) == list(SHIPPING.questions)
    hits = await search(knowledge, "When will my parcel arrive?", k=1)
    assert hits[0].entry.content == "Standard shipping takes 2-4 business days."


async def test_delete_removes_the_entry_from_search(knowledge):
    await upsert(knowledge, RETURNS, SHIPPING)
    await knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id="faq-returns"))
    hits = await search(knowledge, "What is your return policy?", k=5)
    assert "faq-returns" not in [h.entry.entry_id for h in hits]
    await expect_status(knowledge.GetEntry(pb.GetEntryRequest(entry_id="faq-returns")), grpc.StatusCode.NOT_FOUND)
    await expect_status(knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id="faq-returns")),
                        grpc.StatusCode.NOT_FOUND, "faq-returns")
    await knowledge.DeleteEntry(pb.DeleteEntryRequest(entry_id="faq-returns", allow_missing=True))


async def test_list_pages_and_filters(knowledge):
    entries = []
    for n in range(7):
        entry = pb.KnowledgeEntry()
        entry.CopyFrom(RETURNS)
        entry.entry_id = f"faq-{n}"
        entry.status = pb.ENTRY_STATUS_PROPOSED if n % 2 else pb.ENTRY_STATUS_PUBLISHED
        entries.append(entry)
    await upsert(knowledge, *entries, ARTICLE)
    seen, token = [], ""
    while True:
        page = await knowledge.ListEntries(pb.ListEntriesRequest(page_size=3, page_token=token, kind=pb.ENTRY_KIND_QA))
        seen += [e.entry_id for e in page.entries]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == [f"faq-{n}" for n in range(7)]
    page = await knowledge.ListEntries(pb.ListEntriesRequest(status=pb.ENTRY_STATUS_PROPOSED))
    assert sorted(e.entry_id for e in page.entries) == ["faq-1", "faq-3", "faq-5"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_QA, source="s", content="a"), "entries[0].questions"),
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_QA, source="s", content="", questions=["q"]), "entries[0].content"),
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_QA, source="", content="a", questions=["q"]), "entries[0].source"),
        (pb.KnowledgeEntry(source="s", content="a", questions=["q"]), "entries[0].kind"),
        (pb.KnowledgeEntry(kind=7, source="s", content="a", questions=["q"]), "entries[0].kind"),
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_ARTICLE, source="s", content="a", questions=["q"]), "entries[0].questions"),
        (pb.KnowledgeEntry(entry_id="bad id!", kind=pb.ENTRY_KIND_QA, source="s", content="a", questions=["q"]),
         "entries[0].entry_id"),
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_QA, source="s", content="a" * 32001, questions=["q"]), "entries[0].content"),
    ],
)
async def test_upsert_rejects_bad_entries_naming_the_field(knowledge, entry, field):
    await expect_status(knowledge.UpsertEntries(pb.UpsertEntriesRequest(entries=[entry])),
                        grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_bad_search_and_update_requests(knowledge):
    await expect_status(knowledge.SearchKnowledge(pb.SearchKnowledgeRequest(query=" ")),
                        grpc.StatusCode.INVALID_ARGUMENT, "query")
    await expect_status(knowledge.SearchKnowledge(pb.SearchKnowledgeRequest(query="q", k=51)),
                        grpc.StatusCode.INVALID_ARGUMENT, "k")
    await expect_status(knowledge.SearchKnowledge(pb.SearchKnowledgeRequest(query="q", statuses=[9])),
                        grpc.StatusCode.INVALID_ARGUMENT, "statuses[0]")
    await expect_status(knowledge.UpsertEntries(pb.UpsertEntriesRequest()), grpc.StatusCode.INVALID_ARGUMENT, "entries")
    await expect_status(knowledge.UpsertEntries(pb.UpsertEntriesRequest(entries=[RETURNS, RETURNS])),
                        grpc.StatusCode.INVALID_ARGUMENT, "entries[1].entry_id")
    await upsert(knowledge, RETURNS)
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(entry=RETURNS)),
                        grpc.StatusCode.INVALID_ARGUMENT, "update_mask")
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(entry=RETURNS, update_mask=FieldMask(paths=["kind"]))),
                        grpc.StatusCode.INVALID_ARGUMENT, "update_mask")
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id="missing"), update_mask=FieldMask(paths=["title"]))),
        grpc.StatusCode.NOT_FOUND, "missing")

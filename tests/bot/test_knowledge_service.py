"""KnowledgeService over a real channel: the real pgvector index in PostgreSQL
and the real local MiniLM embedder."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from mend.bot.v1 import bot_service_pb2 as pb
from tests.support import ARTICLE, RETURNS, SHIPPING, expect_status, upsert


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
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_ARTICLE, source="s", content="a", questions=["q"]),
         "entries[0].questions"),
        (pb.KnowledgeEntry(entry_id="bad id!", kind=pb.ENTRY_KIND_QA, source="s", content="a", questions=["q"]),
         "entries[0].entry_id"),
        (pb.KnowledgeEntry(kind=pb.ENTRY_KIND_QA, source="s", content="a" * 32001, questions=["q"]),
         "entries[0].content"),
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
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(entry=RETURNS,
                                                                    update_mask=FieldMask(paths=["kind"]))),
                        grpc.StatusCode.INVALID_ARGUMENT, "update_mask")
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=pb.KnowledgeEntry(entry_id="missing"), update_mask=FieldMask(paths=["title"]))),
        grpc.StatusCode.NOT_FOUND, "missing")


# --- BatchSearchKnowledge ------------------------------------------------------------


def batch(*queries: str, peer_similarity: float = 0.0, **kwargs) -> pb.BatchSearchKnowledgeRequest:
    return pb.BatchSearchKnowledgeRequest(queries=[pb.SearchKnowledgeRequest(query=q, **kwargs) for q in queries],
                                          peer_similarity=peer_similarity)


async def test_a_batch_search_finds_what_each_search_finds_and_lists_each_entry_once(knowledge):
    proposed = pb.KnowledgeEntry()
    proposed.CopyFrom(SHIPPING)
    proposed.status = pb.ENTRY_STATUS_PROPOSED
    await upsert(knowledge, RETURNS, proposed, ARTICLE)
    questions = ["I want to send my jacket back, how?", "how should I clean my down bag", "When will my parcel arrive?",
                 "What is your return policy?"]
    statuses = [pb.ENTRY_STATUS_PUBLISHED, pb.ENTRY_STATUS_PROPOSED]
    request = batch(*questions, k=2, statuses=statuses)
    request.queries[1].source = "other-kb"  # per-query filters apply per query
    response = await knowledge.BatchSearchKnowledge(request)
    assert len(response.results) == len(questions)
    for query, result in zip(request.queries, response.results, strict=True):
        single = (await knowledge.SearchKnowledge(query)).hits
        assert [(h.entry_id, h.matched_question) for h in result.hits] == \
               [(h.entry.entry_id, h.matched_question) for h in single]
        assert [h.score for h in result.hits] == pytest.approx([h.score for h in single], abs=1e-4)
        assert list(result.peers) == []  # not asked for
    assert response.results[1].hits == []
    assert response.results[2].hits[0].entry_id == "faq-shipping"  # proposed entries, as asked
    found = [e.entry_id for e in response.entries]
    assert sorted(found) == sorted({h.entry_id for r in response.results for h in r.hits})
    assert len(found) == len(set(found))
    stored = {e.entry_id: e for e in await upsert(knowledge, RETURNS)}
    assert next(e for e in response.entries if e.entry_id == "faq-returns").content == stored["faq-returns"].content


async def test_a_batch_search_names_similar_earlier_queries(knowledge):
    await upsert(knowledge, RETURNS)
    response = await knowledge.BatchSearchKnowledge(batch(
        "Do you rent out tents?", "Do you sell gift cards?", "Can I rent a tent from you?", "Do you rent out tents?",
        peer_similarity=0.7, k=1))
    peers = [[(p.query_index, round(p.score, 3)) for p in r.peers] for r in response.results]
    assert peers[0] == [] and peers[1] == []
    assert [index for index, _ in peers[2]] == [0]
    assert peers[3][0] == (0, 1.0) and len(peers[3]) == 1  # k=1 caps the list; the identical text comes first
    every = await knowledge.BatchSearchKnowledge(batch(
        "Do you rent out tents?", "Can I rent a tent from you?", "Do you rent out tents?", peer_similarity=0.7, k=5))
    assert [p.query_index for p in every.results[2].peers] == [0, 1]
    assert [p.score for p in every.results[2].peers] == sorted((p.score for p in every.results[2].peers), reverse=True)


async def test_bad_batch_searches_name_the_field(knowledge):
    await expect_status(knowledge.BatchSearchKnowledge(pb.BatchSearchKnowledgeRequest()),
                        grpc.StatusCode.INVALID_ARGUMENT, "queries")
    await expect_status(knowledge.BatchSearchKnowledge(batch(*(["q"] * 1001))),
                        grpc.StatusCode.INVALID_ARGUMENT, "1 to 1000 queries, got 1001")
    request = batch("fine", "also fine")
    request.queries[1].k = 51
    await expect_status(knowledge.BatchSearchKnowledge(request), grpc.StatusCode.INVALID_ARGUMENT, "queries[1].k")
    request.queries[1].k = -1
    await expect_status(knowledge.BatchSearchKnowledge(request), grpc.StatusCode.INVALID_ARGUMENT, "queries[1].k")
    await expect_status(knowledge.BatchSearchKnowledge(batch("fine", " ")), grpc.StatusCode.INVALID_ARGUMENT,
                        "queries[1].query")
    await expect_status(knowledge.BatchSearchKnowledge(batch("fine", statuses=[9])),
                        grpc.StatusCode.INVALID_ARGUMENT, "queries[0].statuses[0]")
    for bad in (-0.1, 1.5, float("nan")):
        await expect_status(knowledge.BatchSearchKnowledge(batch("fine", peer_similarity=bad)),
                            grpc.StatusCode.INVALID_ARGUMENT, "peer_similarity")


async def test_a_thousand_queries_take_one_embedding_call(knowledge, knowledge_index, monkeypatch):
    await upsert(knowledge, RETURNS, SHIPPING)
    calls = []
    real = knowledge_index.embedder.inner.embed

    async def counting(texts):
        calls.append(len(texts))
        return await real(texts)

    monkeypatch.setattr(knowledge_index.embedder.inner, "embed", counting)
    questions = [f"Can I return order number {n}?" for n in range(1000)]
    response = await knowledge.BatchSearchKnowledge(batch(*questions, k=1))
    assert calls == [1000]
    assert {r.hits[0].entry_id for r in response.results} == {"faq-returns"}
    assert [e.entry_id for e in response.entries] == ["faq-returns"]
    # The same texts again (the trainer upserting the questions it searched): embedded from memory.
    await knowledge.BatchSearchKnowledge(batch(*questions[:10], k=1))
    assert calls == [1000]


async def test_a_grown_entry_writes_only_its_new_keys(knowledge, knowledge_index):
    async def rows():
        return await knowledge_index.pool.fetch(
            "SELECT key_no, key_text, status, ctid::text AS ctid FROM knowledge_vectors WHERE entry_id = 'faq-returns' "
            "ORDER BY key_no")

    await upsert(knowledge, RETURNS)
    before = await rows()
    grown = pb.KnowledgeEntry()
    grown.CopyFrom(RETURNS)
    grown.questions.append("Is there a returns window?")
    await upsert(knowledge, grown)
    after = await rows()
    assert [r["key_text"] for r in after] == list(grown.questions)
    # The three keys it had are the same rows (not deleted and inserted again): one new HNSW insert, not four.
    assert [r["ctid"] for r in after[:3]] == [r["ctid"] for r in before]
    grown.status = pb.ENTRY_STATUS_PROPOSED
    del grown.questions[1]
    await upsert(knowledge, grown)
    after = await rows()
    assert [(r["key_no"], r["key_text"]) for r in after] == list(enumerate(grown.questions))
    assert {r["status"] for r in after} == {"proposed"}
    hits = await search(knowledge, "Is there a returns window?", k=1, statuses=[pb.ENTRY_STATUS_PROPOSED])
    assert hits[0].matched_question == "Is there a returns window?" and hits[0].score > 0.99
    assert await search(knowledge, "Can I send back an item?", k=1, statuses=[pb.ENTRY_STATUS_PUBLISHED]) == []


async def test_pinecone_batch_search_answers_each_query_as_its_own_search():
    from bot.vectorstores.base import KeyVector, VectorQuery
    from bot.vectorstores.pinecone_store import PineconeStore
    from tests.doubles.fake_pinecone import FakePinecone

    axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    with FakePinecone(dimension=3) as fake:
        store = PineconeStore.connect(fake.api_key, host=fake.host)
        try:
            await store.replace_keys("a", [KeyVector(0, "a0", axes[0]), KeyVector(1, "a1", [0.9, 0.1, 0.0])],
                                     "published", "kb")
            await store.replace_keys("b", [KeyVector(0, "b0", axes[1])], "proposed", "kb")
            queries = [VectorQuery(axes[0], 2, ["published"], None), VectorQuery(axes[1], 1, ["proposed"], None),
                       VectorQuery(axes[1], 2, ["published", "proposed"], "other"),
                       VectorQuery(axes[2], 0, ["published"], None)]
            found = await store.search_many(queries)
            assert found == [await store.search(q.vector, q.k, q.statuses, q.source) for q in queries]
            assert [[h.entry_id for h in hits] for hits in found] == [["a"], ["b"], [], []]
            assert found[0][0].key_text == "a0"  # one hit per entry: its best key
        finally:
            await store.close()


# --- UpsertEntries: provenance checks and an all-or-nothing batch -------------------------


def with_provenance(entry: pb.KnowledgeEntry, **provenance) -> pb.KnowledgeEntry:
    copy = pb.KnowledgeEntry()
    copy.CopyFrom(entry)
    copy.provenance.CopyFrom(pb.Provenance(**provenance))
    return copy


async def test_a_nul_in_provenance_is_invalid_and_writes_nothing_of_the_batch(knowledge, knowledge_index):
    # The review's probe: INTERNAL (jsonb refuses \u0000) after the good entry was written.
    bad = with_provenance(SHIPPING, created_by="a\x00b")
    await expect_status(knowledge.UpsertEntries(pb.UpsertEntriesRequest(entries=[RETURNS, bad])),
                        grpc.StatusCode.INVALID_ARGUMENT, "entries[1].provenance.created_by")
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM knowledge_entries") == 0
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM knowledge_vectors") == 0


GOOD_ID = "0b6f3c9e-8a43-4c1e-9a51-2f0d6c1f7e11"


@pytest.mark.parametrize(
    ("provenance", "field"),
    [
        *[({name: "a\x00b"}, f"entries[1].provenance.{name}")
          for name in ("teacher_model", "prompt_version", "training_run_id", "fix_id", "created_by")],
        *[({name: "x" * 257}, f"entries[1].provenance.{name}")
          for name in ("teacher_model", "prompt_version", "training_run_id", "fix_id", "created_by")],
        ({"interaction_ids": [GOOD_ID, "not-a-uuid"]}, "entries[1].provenance.interaction_ids[1]"),
        ({"interaction_ids": [GOOD_ID, "\x00"]}, "entries[1].provenance.interaction_ids[1]"),
        ({"interaction_ids": [""]}, "entries[1].provenance.interaction_ids[0]"),
        ({"interaction_ids": [GOOD_ID] * 1001}, "entries[1].provenance.interaction_ids"),
    ],
)
async def test_every_provenance_field_is_checked_before_anything_is_written(knowledge, knowledge_index,
                                                                              provenance, field):
    bad = with_provenance(SHIPPING, **provenance)
    details = await expect_status(knowledge.UpsertEntries(pb.UpsertEntriesRequest(entries=[RETURNS, bad])),
                                  grpc.StatusCode.INVALID_ARGUMENT, field)
    assert details.startswith(field) or f"{field} " in details or f"{field}:" in details, details
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM knowledge_entries") == 0


async def test_a_valid_provenance_round_trips(knowledge):
    good = with_provenance(SHIPPING, interaction_ids=[GOOD_ID], teacher_model="m" * 256, prompt_version="fix-v3",
                           training_run_id="run-1", fix_id="fix-1", created_by="trainer")
    stored = (await upsert(knowledge, good))[0]
    assert list(stored.provenance.interaction_ids) == [GOOD_ID] and stored.provenance.teacher_model == "m" * 256
    await expect_status(knowledge.UpdateEntry(pb.UpdateEntryRequest(
        entry=with_provenance(SHIPPING, created_by="a\x00b"), update_mask=FieldMask(paths=["provenance"]))),
        grpc.StatusCode.INVALID_ARGUMENT, "entry.provenance.created_by")


async def test_a_batch_that_fails_in_the_database_writes_none_of_its_entries(knowledge, knowledge_index):
    from dataclasses import replace

    from bot.knowledge_service import from_message

    good = [replace(from_message(RETURNS, "entries[0]"), entry_id=f"faq-{n}") for n in range(5)]
    # Past the service's checks, the catalogue's CHECK constraint refuses the last entry (after
    # more good ones than are written at once, so that some are written before it is tried).
    refused = replace(from_message(SHIPPING, "entries[5]"), status="bogus")
    with pytest.raises(asyncpg.CheckViolationError, match="status"):
        await knowledge_index.upsert([*good, refused])
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM knowledge_entries") == 0
    assert await knowledge_index.pool.fetchval("SELECT count(*) FROM knowledge_vectors") == 0


class FailingStore:
    """The real store, except that writing one entry's vectors fails."""

    def __init__(self, store, fail_on: str) -> None:
        self._store, self._fail_on = store, fail_on

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def replace_keys(self, entry_id, keys, status, source):
        if entry_id == self._fail_on:
            raise ConnectionError("the vector store is down")
        await self._store.replace_keys(entry_id, keys, status, source)

    async def set_attributes(self, entry_id, status, source):
        if entry_id == self._fail_on:
            raise ConnectionError("the vector store is down")
        await self._store.set_attributes(entry_id, status, source)


async def test_a_retry_after_a_failed_vector_write_converges(knowledge, knowledge_index):
    from bot.knowledge import Knowledge
    from bot.knowledge_service import from_message

    entries = [from_message(RETURNS, "entries[0]"), from_message(SHIPPING, "entries[1]")]
    flaky = Knowledge(knowledge_index.pool, FailingStore(knowledge_index.store, "faq-shipping"),
                      knowledge_index.embedder)
    with pytest.raises(ConnectionError):
        await flaky.upsert(entries)
    # The catalogue committed; the entry whose vectors failed stays marked for the retry.
    pending = await knowledge_index.pool.fetchval(
        "SELECT vectors_pending FROM knowledge_entries WHERE entry_id = 'faq-shipping'")
    assert pending is True
    await knowledge_index.upsert(entries)  # the caller's retry, same ids
    hits = await search(knowledge, "When will my parcel arrive?", k=1)
    assert [h.entry.entry_id for h in hits] == ["faq-shipping"]
    assert not await knowledge_index.pool.fetchval("SELECT bool_or(vectors_pending) FROM knowledge_entries")
    # The same for a status change whose vector update failed: the retry archives the vectors too.
    archived = pb.KnowledgeEntry()
    archived.CopyFrom(SHIPPING)
    archived.status = pb.ENTRY_STATUS_ARCHIVED
    with pytest.raises(ConnectionError):
        await flaky.upsert([from_message(archived, "entries[0]")])
    await knowledge_index.upsert([from_message(archived, "entries[0]")])
    statuses = await knowledge_index.pool.fetch(
        "SELECT DISTINCT status FROM knowledge_vectors WHERE entry_id = 'faq-shipping'")
    assert [row["status"] for row in statuses] == ["archived"]


async def test_repeating_an_identical_entry_leaves_its_update_time(knowledge):
    first = (await upsert(knowledge, RETURNS))[0]
    again = (await upsert(knowledge, RETURNS))[0]
    assert again.update_time == first.update_time
    changed = pb.KnowledgeEntry()
    changed.CopyFrom(RETURNS)
    changed.content += " Sale items too."
    assert (await upsert(knowledge, changed))[0].update_time != first.update_time


# --- SearchKnowledgeRequest.source -------------------------------------------------------


@pytest.mark.parametrize("source", ["a\x00b", "s" * 65])
async def test_a_bad_search_source_is_invalid_in_single_and_batch_searches(knowledge, source):
    # A NUL reached PostgreSQL (INTERNAL); a source longer than any entry's (64) can match nothing.
    await upsert(knowledge, RETURNS)
    await expect_status(knowledge.SearchKnowledge(pb.SearchKnowledgeRequest(query="q", source=source)),
                        grpc.StatusCode.INVALID_ARGUMENT, "source")
    request = batch("fine", "also fine")
    request.queries[1].source = source
    await expect_status(knowledge.BatchSearchKnowledge(request), grpc.StatusCode.INVALID_ARGUMENT,
                        "queries[1].source")


async def test_a_search_source_of_64_characters_is_fine(knowledge):
    entry = pb.KnowledgeEntry()
    entry.CopyFrom(RETURNS)
    entry.source = "s" * 64
    await upsert(knowledge, entry)
    hits = await search(knowledge, "What is your return policy?", source="s" * 64)
    assert [h.entry.entry_id for h in hits] == ["faq-returns"]


async def test_hits_rank_by_the_mean_of_each_entrys_two_best_phrasings(knowledge, knowledge_index):
    """One phrasing of many can be close to a question by chance; an entry that
    answers it has several close ones (bot/vectorstores/base.py)."""
    lucky = pb.KnowledgeEntry(
        entry_id="faq-lucky", kind=pb.ENTRY_KIND_QA, source="test-kb", content="Gift cards.",
        questions=["Do you sell tents?", "Can I buy a gift card?", "Is there a student discount?"])
    steady = pb.KnowledgeEntry(entry_id="faq-steady", kind=pb.ENTRY_KIND_QA, source="test-kb", content="Rentals.",
                               questions=["Can I hire a tent from you?", "Do you have tents to borrow for a weekend?"])
    await upsert(knowledge, lucky, steady)
    question = "Do you rent out tents?"
    vectors = await knowledge_index.embedder.embed([question, *lucky.questions, *steady.questions])
    similarity = vectors[1:] @ vectors[0]
    expected = {}
    for entry, own in ((lucky, similarity[:3]), (steady, similarity[3:])):
        best = sorted(own.tolist(), reverse=True)
        expected[entry.entry_id] = (best[0], (best[0] + best[1]) / 2, entry.questions[int(own.argmax())])
    by_support = sorted(expected, key=lambda entry_id: -expected[entry_id][1])
    # What the test is about: the best phrasing alone would rank them the other way.
    assert by_support != sorted(expected, key=lambda entry_id: -expected[entry_id][0])
    hits = (await knowledge.SearchKnowledge(pb.SearchKnowledgeRequest(query=question, k=2))).hits
    assert [hit.entry.entry_id for hit in hits] == by_support
    for hit in hits:
        score, support, matched = expected[hit.entry.entry_id]
        assert (hit.score, hit.support, hit.matched_question) == (pytest.approx(score, abs=1e-4),
                                                                 pytest.approx(support, abs=1e-4), matched)
    [batched] = (await knowledge.BatchSearchKnowledge(batch(question, k=2))).results
    assert [(h.entry_id, h.support) for h in batched.hits] == [(h.entry.entry_id, h.support) for h in hits]

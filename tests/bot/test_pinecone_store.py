"""The Pinecone store with the real `pinecone` SDK against a local fake of
Pinecone's data-plane REST API (tests/doubles/fake_pinecone.py), which validates every
request body against the API's models, so a wrong call shape fails here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bot.vectorstores.base import KeyVector
from bot.vectorstores.pinecone_store import PineconeStore
from tests.doubles.fake_pinecone import FakePinecone

# Four orthogonal directions and blends of them: similarities are easy to reason about.
E = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def blend(*weights: float) -> list[float]:
    return [sum(w * e[i] for w, e in zip(weights, E, strict=True)) for i in range(4)]


def keys(*vectors: list[float]) -> list[KeyVector]:
    return [KeyVector(n, f"key {n}", v) for n, v in enumerate(vectors)]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePinecone]:
    with FakePinecone(dimension=4) as server:
        yield server


@pytest.fixture
async def store(fake: FakePinecone) -> AsyncIterator[PineconeStore]:
    fake.reset()
    store = PineconeStore.connect(fake.api_key, host=fake.host)
    yield store
    await store.close()


def bodies(fake: FakePinecone, path: str) -> list[dict]:
    return [r["body"] for r in fake.requests if r["path"] == path]


async def test_search_returns_each_entry_once_with_its_best_key(store: PineconeStore, fake: FakePinecone) -> None:
    await store.replace_keys("returns", keys(E[0], blend(0.2, 1, 0, 0), E[2]), "published", "faq")
    await store.replace_keys("shipping", keys(blend(0, 1, 0.5, 0), E[3]), "published", "faq")
    hits = await store.search(blend(0, 1, 0.1, 0), 5, ["published"], None)
    assert [h.entry_id for h in hits] == ["returns", "shipping"]
    assert hits[0].key_text == "key 1"  # the best of its three keys, and only that one
    assert hits[0].score == pytest.approx(1 / (1.04 ** 0.5 * 1.01 ** 0.5))  # cosine similarity
    assert hits[1].key_text == "key 0"
    assert len(await store.search(E[0], 1, ["published"], None)) == 1
    assert fake.ids() == ["returns#0", "returns#1", "returns#2", "shipping#0", "shipping#1"]


async def test_status_and_source_filters(store: PineconeStore) -> None:
    await store.replace_keys("live-faq", keys(E[0]), "published", "faq")
    await store.replace_keys("draft-faq", keys(blend(1, 0.1, 0, 0)), "proposed", "faq")
    await store.replace_keys("live-docs", keys(blend(1, 0.2, 0, 0)), "published", "docs")
    assert [h.entry_id for h in await store.search(E[0], 5, ["published"], None)] == ["live-faq", "live-docs"]
    assert [h.entry_id for h in await store.search(E[0], 5, ["published"], "docs")] == ["live-docs"]
    assert [h.entry_id for h in await store.search(E[0], 5, ["published", "proposed"], "faq")] == [
        "live-faq", "draft-faq"]
    assert await store.search(E[0], 5, ["archived"], None) == []
    assert await store.search(E[0], 5, [], None) == []


async def test_set_attributes_changes_what_search_returns(store: PineconeStore, fake: FakePinecone) -> None:
    await store.replace_keys("returns", keys(E[0], E[1]), "published", "faq")
    await store.set_attributes("returns", "archived", "docs")
    assert await store.search(E[0], 5, ["published"], None) == []
    assert [h.entry_id for h in await store.search(E[0], 5, ["archived"], "docs")] == ["returns"]
    updates = bodies(fake, "/vectors/update")
    assert sorted(u["id"] for u in updates) == ["returns#0", "returns#1"]
    assert all(u["setMetadata"] == {"status": "archived", "source": "docs"} for u in updates)


async def test_fewer_keys_remove_the_extra_ids(store: PineconeStore, fake: FakePinecone) -> None:
    await store.replace_keys("returns", keys(E[0], E[1], E[2]), "published", "faq")
    # An entry whose id starts with "returns#" is listed by the same prefix but is not ours to delete.
    await store.replace_keys("returns#old", keys(E[1]), "published", "faq")
    await store.replace_keys("returns", keys(E[3]), "published", "faq")
    assert fake.ids() == ["returns#0", "returns#old#0"]
    hits = await store.search(E[1], 5, ["published"], None)
    assert [h.entry_id for h in hits][0] == "returns#old"
    assert bodies(fake, "/vectors/delete")[-1] == {"namespace": "", "ids": ["returns#1", "returns#2"]}


async def test_many_keys_are_batched_and_listed_across_pages(store: PineconeStore, fake: FakePinecone) -> None:
    many = [KeyVector(n, f"chunk {n}", blend(1, n / 250, 0, 0)) for n in range(250)]
    await store.replace_keys("manual", many, "published", "docs")
    assert [len(b["vectors"]) for b in bodies(fake, "/vectors/upsert")] == [100, 100, 50]
    await store.replace_keys("manual", keys(E[2]), "published", "docs")
    assert fake.ids() == ["manual#0"]
    lists = [r for r in fake.requests if r["path"] == "/vectors/list"]
    assert any("paginationToken" in r["params"] for r in lists)  # the 250 ids took three pages


async def test_delete_removes_the_entry(store: PineconeStore, fake: FakePinecone) -> None:
    await store.replace_keys("returns", keys(E[0], E[1]), "published", "faq")
    await store.replace_keys("shipping", keys(E[2]), "published", "faq")
    await store.delete("returns")
    await store.delete("never-existed")  # nothing to remove is fine
    assert fake.ids() == ["shipping#0"]
    assert [h.entry_id for h in await store.search(E[0], 5, ["published"], None)] == ["shipping"]


async def test_the_sdk_request_shapes_were_accepted(store: PineconeStore, fake: FakePinecone) -> None:
    await store.replace_keys("returns", keys(E[0]), "published", "faq")
    await store.set_attributes("returns", "published", "docs")
    await store.search(E[0], 3, ["published", "proposed"], "docs")
    await store.delete("returns")
    assert fake.requests and all(r["status"] == 200 for r in fake.requests)
    assert all(r["api_version"] for r in fake.requests)
    upsert = bodies(fake, "/vectors/upsert")[0]
    assert upsert == {"vectors": [{"id": "returns#0", "values": E[0], "metadata": {
        "entry_id": "returns", "key_no": 0, "key_text": "key 0", "status": "published", "source": "faq"}}]}
    query = bodies(fake, "/query")[0]
    assert query["includeMetadata"] is True and query["includeValues"] is False
    assert query["topK"] == 40  # at least CANDIDATE_KEYS nearest keys, whatever k
    assert query["filter"] == {"status": {"$in": ["published", "proposed"]}, "source": {"$eq": "docs"}}
    listing = [r for r in fake.requests if r["path"] == "/vectors/list"][0]
    assert listing["method"] == "GET" and listing["params"]["prefix"] == ["returns#"]


def test_the_fake_refuses_what_the_service_refuses(fake: FakePinecone) -> None:
    """The checks that make the tests above meaningful."""
    from pinecone import Pinecone
    from pinecone.errors.exceptions import ApiError

    headers = {"Api-Key": fake.api_key, "X-Pinecone-Api-Version": "2025-10"}
    with httpx.Client(base_url=fake.host, headers=headers) as client:
        # snake_case where the API says camelCase is an unknown field, as is anything invented.
        assert client.post("/query", json={"topK": 1, "vector": E[0], "include_metadata": True}).status_code == 400
        assert client.post("/vectors/upsert", json={"vectors": [{"id": "a", "values": E[0], "meta": {}}]}
                           ).status_code == 400
        bad = client.post("/query", json={"vector": E[0]})  # topK is required
        assert bad.status_code == 400 and set(bad.json()) == {"code", "message", "details"}
        assert client.post("/query", json={"topK": 1, "vector": [1.0, 0.0]}).status_code == 400  # dimension
        assert client.post("/query", json={"topK": 1, "vector": E[0], "filter": {"s": {"$like": "x"}}}
                           ).status_code == 400
        assert client.get("/vectors/list", params={"prefix": "a", "page": "2"}).status_code == 400
        assert client.post("/vectors/upsert", headers={"Api-Key": "wrong"},
                           json={"vectors": [{"id": "a", "values": E[0]}]}).status_code == 401
    with Pinecone(api_key=fake.api_key).Index(host=fake.host) as index, pytest.raises(ApiError) as refused:
        index.delete(filter={"status": {"$eq": "archived"}})  # serverless refuses delete-by-filter
    assert refused.value.status_code == 400


async def test_knowledge_on_pinecone_with_the_real_embedder(knowledge_index) -> None:
    from bot.catalog import Entry
    from bot.knowledge import Knowledge

    embedder = knowledge_index.embedder
    await knowledge_index.pool.execute("TRUNCATE knowledge_entries, knowledge_revisions CASCADE")
    with FakePinecone(dimension=embedder.dimension) as server:
        store = PineconeStore.connect(server.api_key, host=server.host, namespace=embedder.model_id)
        knowledge = Knowledge(knowledge_index.pool, store, embedder)
        try:
            await knowledge.upsert([
                Entry("faq-returns", "qa", "Returns", "You can return any item within 30 days for a full refund.",
                      ("How do I return an item?", "What is your refund policy?"), "faq", "published"),
                Entry("faq-shipping", "qa", "Shipping", "Standard delivery takes 3 to 5 working days.",
                      ("How long does shipping take?", "When will my order arrive?"), "faq", "published"),
            ])
            hits = await knowledge.search("can I send back something I bought and get my money back", 2,
                                          ["published"], None)
            assert [h.entry.entry_id for h in hits][0] == "faq-returns"
            assert hits[0].matched_key in ("How do I return an item?", "What is your refund policy?")
            assert hits[0].score > hits[1].score
            delivery = await knowledge.search("how many days until my parcel is delivered", 1, ["published"], "faq")
            assert [h.entry.entry_id for h in delivery] == ["faq-shipping"]
            assert server.ids(embedder.model_id) == ["faq-returns#0", "faq-returns#1",
                                                     "faq-shipping#0", "faq-shipping#1"]
            assert all(r["status"] == 200 for r in server.requests)
        finally:
            await store.close()
            await knowledge_index.pool.execute("TRUNCATE knowledge_entries, knowledge_revisions CASCADE")


async def test_a_refused_key_is_failed_precondition_without_the_key_anywhere(caplog) -> None:
    """Pinecone (or a gateway before it) may quote the key it refused: the error
    the bot raises, and so its status and logs, say what to fix without it."""
    import logging

    from mendkit.errors import FailedPrecondition

    secret = "pcsk_must_not_leak_0123456789abcdef"
    with FakePinecone(dimension=4, echo_refused_key=True) as server:
        store = PineconeStore.connect(secret, host=server.host)
        try:
            with caplog.at_level(logging.DEBUG), pytest.raises(FailedPrecondition) as refused:
                await store.search(E[0], 3, ["published"], None)
        finally:
            await store.close()
        assert secret in server.last_refusal_text()  # the double did quote it
    message = refused.value.message
    assert "HTTP 401" in message and "PINECONE_API_KEY" in message and "[redacted]" in message
    assert secret not in message and secret not in caplog.text
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


async def test_an_unreachable_pinecone_is_unavailable() -> None:
    from mendkit.errors import Unavailable
    from tests.support import free_port

    store = PineconeStore.connect("pcsk_any", host=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(Unavailable, match="Pinecone unreachable"):
            await store.search(E[0], 3, ["published"], None)
    finally:
        await store.close()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5


async def test_entries_rank_by_the_mean_of_their_two_best_keys(store: PineconeStore, fake: FakePinecone) -> None:
    # "lucky" has the closest key and two unrelated ones; "steady" two keys that are
    # each fairly close; "single" one key, whose similarity is its support too.
    lucky, steady, single = ([blend(1, 0.3, 0, 0), E[3], E[2]],
                             [blend(1, 0, 0.5, 0), blend(1, 0, 0, 0.5), E[1]], [blend(1, 0, 1, 0)])
    await store.replace_keys("lucky", keys(*lucky), "published", "faq")
    await store.replace_keys("steady", keys(*steady), "published", "faq")
    await store.replace_keys("single", keys(*single), "published", "faq")
    asked = blend(1, 0.3, 0.3, 0)
    hits = await store.search(asked, 5, ["published"], None)
    assert [(h.entry_id, h.key_text) for h in hits] == [("steady", "key 0"), ("single", "key 0"), ("lucky", "key 0")]
    assert [h.score for h in hits] == pytest.approx([cosine(asked, steady[0]), cosine(asked, single[0]),
                                                     cosine(asked, lucky[0])])
    assert hits[2].score > hits[0].score  # by its best key alone, lucky would come first
    assert [h.support for h in hits] == pytest.approx([(cosine(asked, steady[0]) + cosine(asked, steady[1])) / 2,
                                                       cosine(asked, single[0]),
                                                       (cosine(asked, lucky[0]) + cosine(asked, lucky[2])) / 2])
    # The candidates' every key is scored in a second query: scores only (the service's
    # top_k ceiling is 1,000 with metadata), filtered as the first and to those entries.
    first, every = bodies(fake, "/query")[-2:]
    assert first["includeMetadata"] is True and first["topK"] == 40
    assert every["filter"] == {"status": {"$in": ["published"]}, "entry_id": {"$in": ["lucky", "single", "steady"]}}
    assert not every.get("includeMetadata") and every["topK"] == 10_000
    # A key that is the question itself: the entry lists it, its other keys (0 and 0 here) do not count.
    [verbatim, *_] = await store.search(E[3], 1, ["published"], None)
    assert (verbatim.entry_id, verbatim.score, verbatim.support) == ("lucky", pytest.approx(1.0), pytest.approx(1.0))

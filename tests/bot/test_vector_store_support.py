"""Both vector stores rank an entry by every key it has, not only by the keys
among a query's nearest (bot/vectorstores/base.py): pgvector in the test
database and Pinecone's SDK against the local fake, on one scenario in 4-d.

The question is the first axis. Forty one-phrasing entries sit at cosine 0.5;
"steady" has one key at 0.95 and one at 0.3. Its 0.3 key is not among the 40
nearest keys, so only the candidates' second look at their keys finds it: its
support is (0.95 + 0.3) / 2, not 0.95."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from bot.vectorstores.base import CANDIDATE_KEYS, KeyVector, VectorQuery, VectorStore
from bot.vectorstores.pgvector_store import PgVectorStore
from bot.vectorstores.pinecone_store import PineconeStore
from tests.doubles.fake_pinecone import FakePinecone

ASKED = [1.0, 0.0, 0.0, 0.0]


def at(cosine: float, axis: int = 1) -> list[float]:
    """A unit vector at `cosine` to ASKED, leaning towards `axis`."""
    vector = [cosine, 0.0, 0.0, 0.0]
    vector[axis] = math.sqrt(1 - cosine * cosine)
    return vector


SCENARIO = {"steady": [at(0.95), at(0.3, axis=2)], **{f"filler-{n:02d}": [at(0.5, axis=3)]
                                                        for n in range(CANDIDATE_KEYS)}}


@pytest.fixture(params=["pgvector", "pinecone"])
async def store(request, knowledge_index) -> AsyncIterator[VectorStore]:
    if request.param == "pinecone":
        with FakePinecone(dimension=4) as fake:
            pinecone = PineconeStore.connect(fake.api_key, host=fake.host)
            yield pinecone
            await pinecone.close()
        return
    pool = knowledge_index.pool
    await pool.execute("TRUNCATE knowledge_entries, knowledge_revisions CASCADE")
    await pool.executemany("INSERT INTO knowledge_entries (entry_id, kind, content, source, status) "
                           "VALUES ($1, 'qa', 'An answer.', 'tests', 'published')", [(e,) for e in SCENARIO])
    pgvector = PgVectorStore(pool, "tests-support-4d", 4)
    await pgvector.prepare()
    yield pgvector


async def test_an_entry_ranks_by_all_its_keys_even_those_beyond_the_nearest(store: VectorStore) -> None:
    for entry_id, vectors in SCENARIO.items():
        await store.replace_keys(entry_id, [KeyVector(n, f"{entry_id} {n}", v) for n, v in enumerate(vectors)],
                                 "published", "tests")
    [top] = await store.search(ASKED, 1, ["published"], None)
    assert (top.entry_id, top.key_text) == ("steady", "steady 0")
    assert (top.score, top.support) == (pytest.approx(0.95, abs=1e-5), pytest.approx((0.95 + 0.3) / 2, abs=1e-5))
    [batched] = await store.search_many([VectorQuery(ASKED, 1, ["published"], None)])
    assert [(h.entry_id, round(h.support, 5)) for h in batched] == [("steady", round(top.support, 5))]

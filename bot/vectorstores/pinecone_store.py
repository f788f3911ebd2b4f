"""The Pinecone store: one vector per retrieval key in a Pinecone index, with the
official `pinecone` SDK (its REST data plane).

The index is created outside the bot, as a dense index with metric="cosine" and
the embedder's dimension (384 for the local MiniLM): search scores are the
index's similarity, and only cosine matches the pgvector store's scores. A
serverless index is assumed, so nothing here deletes by metadata filter (which
serverless refuses); an entry's vectors are found by id prefix instead, since
ids are f"{entry_id}#{key_no}".

Pinecone is eventually consistent: a write can take a moment to show in `list`
and `query`. An entry replaced twice in quick succession can keep a stale key
from the first write if it was not listable yet; its hits still name the right
entry, and Knowledge re-checks the entry's status in the catalogue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from bot.vectorstores.base import KeyHit, KeyVector, VectorHit, VectorQuery, candidate_keys, ranked
from mendkit.errors import FailedPrecondition, MendError, ResourceExhausted, Unavailable

T = TypeVar("T")

# The service's ceilings on top_k: without metadata and values, and with them.
MAX_TOP_K = 10_000
MAX_TOP_K_WITH_METADATA = 1_000
# Vectors per upsert request: Pinecone caps a request at 1000 vectors and 2 MB;
# 100 x 384 floats plus metadata stays well under both.
UPSERT_BATCH = 100
# Ids per delete request (the service's limit is 1000).
DELETE_BATCH = 1000
# Queries in flight for a batch search: the data plane has no multi-vector
# query, so each is its own request; a few at once hide the latency without
# nearing the per-index query rate limits.
QUERY_CONCURRENCY = 8
# Pinecone allows 40 KB of metadata per vector; an article key can be a whole
# 32,000-character chunk. Only Q&A keys (short questions) are shown as matched
# keys, so cutting long ones costs nothing.
MAX_KEY_TEXT_BYTES = 16_000


def _vector_id(entry_id: str, key_no: int) -> str:
    return f"{entry_id}#{key_no}"


def _owner(vector_id: str) -> str | None:
    """The entry that owns an id of ours, or None. The prefix "a#" also lists
    "a#b#0" (entry "a#b"), so the owner is what precedes the *last* '#'."""
    entry_id, _, key_no = vector_id.rpartition("#")
    return entry_id if entry_id and key_no.isdigit() else None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _key_text(text: str) -> str:
    return text.encode()[:MAX_KEY_TEXT_BYTES].decode(errors="ignore")


class PineconeStore:
    name = "pinecone"

    def __init__(self, index: Any, namespace: str = "", client: Any = None, api_key: str = "") -> None:
        # `index` is a pinecone Index (typed Any: the SDK is imported lazily, so
        # the bot runs without it when another store is configured). `client`,
        # when given, is the Pinecone client that made it, closed with the store.
        # `api_key` is kept only to redact it from error text.
        self._index = index
        self._namespace = namespace
        self._client = client
        self._api_key = api_key

    @classmethod
    def connect(cls, api_key: str, index_name: str = "rag-index", host: str | None = None,
                namespace: str = "") -> PineconeStore:
        """An explicit host skips the control-plane lookup of the index's host
        (and lets tests point at a local server)."""
        from pinecone import Pinecone

        pc = Pinecone(api_key=api_key)
        index = pc.Index(host=host) if host else pc.Index(name=index_name)
        return cls(index, namespace, client=pc, api_key=api_key)

    async def prepare(self) -> None:
        # The index is provisioned outside the bot (its dimension and metric are
        # fixed at creation); nothing to create per process.
        return None

    async def close(self) -> None:
        """Releases the SDK's HTTP connection pools (not part of the protocol)."""
        for closable in (self._index, self._client):
            if closable is not None and hasattr(closable, "close"):
                await asyncio.to_thread(closable.close)

    # --- blocking SDK calls, run in worker threads ---

    def _entry_ids(self, entry_id: str) -> list[str]:
        # Listing by id prefix is what serverless indexes support for "all of an entry's vectors".
        found: list[str] = []
        for page in self._index.list(prefix=f"{entry_id}#", namespace=self._namespace):
            found.extend(item.id for item in page.vectors if item.id and _owner(item.id) == entry_id)
        return found

    def _delete_ids(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(ids, DELETE_BATCH):
            self._index.delete(ids=list(chunk), namespace=self._namespace)

    def _replace_keys(self, entry_id: str, keys: Sequence[KeyVector], status: str, source: str) -> None:
        vectors = [
            {
                "id": _vector_id(entry_id, key.key_no),
                # Plain floats: the SDK serialises with json, which rejects numpy scalars.
                "values": [float(x) for x in key.vector],
                "metadata": {"entry_id": entry_id, "key_no": key.key_no, "key_text": _key_text(key.text),
                             "status": status, "source": source},
            }
            for key in keys
        ]
        # One request per batch rather than upsert(batch_size=...): the SDK's batched
        # mode reports failed batches in the response instead of raising.
        for chunk in _chunks(vectors, UPSERT_BATCH):
            self._index.upsert(vectors=list(chunk), namespace=self._namespace)
        # Upsert first, then drop the leftovers: a reader never sees the entry with no keys.
        keep = {v["id"] for v in vectors}
        self._delete_ids([vid for vid in self._entry_ids(entry_id) if vid not in keep])

    def _set_attributes(self, entry_id: str, status: str, source: str) -> None:
        # Update by id: update-by-filter would be one call, but is not on every index type.
        for vector_id in self._entry_ids(entry_id):
            self._index.update(id=vector_id, set_metadata={"status": status, "source": source},
                               namespace=self._namespace)

    def _delete(self, entry_id: str) -> None:
        self._delete_ids(self._entry_ids(entry_id))

    def _search(self, vector: Sequence[float], k: int, statuses: Sequence[str], source: str | None) -> list[VectorHit]:
        conditions: dict[str, Any] = {"status": {"$in": list(statuses)}}
        if source:
            conditions["source"] = {"$eq": source}
        response = self._index.query(
            vector=[float(x) for x in vector], top_k=min(candidate_keys(k), MAX_TOP_K_WITH_METADATA), filter=conditions,
            include_metadata=True, namespace=self._namespace,
        )
        near = {}
        for match in response.matches:
            metadata = match.metadata or {}
            entry_id = str(metadata.get("entry_id") or _owner(match.id) or match.id)
            near[match.id] = KeyHit(entry_id, str(metadata.get("key_text", "")), float(match.score))
        if not near:
            return []
        # Every key of the candidates, for their support: scores only, so that the
        # service allows the larger top_k (the texts of the best keys came above).
        # Merged into the nearest keys, not instead of them: a key the second query
        # does not return (no entry_id in its metadata, a write not yet visible)
        # still counts.
        candidates = sorted({key.entry_id for key in near.values()})
        every = self._index.query(
            vector=[float(x) for x in vector], top_k=MAX_TOP_K, filter={**conditions, "entry_id": {"$in": candidates}},
            include_metadata=False, namespace=self._namespace,
        )
        keys = dict(near)
        for match in every.matches:
            if match.id not in keys:
                keys[match.id] = KeyHit(_owner(match.id) or match.id, "", float(match.score))
        return ranked(keys.values(), k)

    async def _call(self, blocking: Callable[..., T], *args: Any) -> T:
        """A blocking SDK call in a worker thread; its failures become domain errors."""
        try:
            return await asyncio.to_thread(blocking, *args)
        except Exception as error:  # noqa: BLE001 - every SDK failure is mapped, none passes raw
            raise self._error(error) from None

    def _error(self, error: Exception) -> MendError:
        """The domain error for an SDK failure. Its text never carries the API key
        (some error bodies quote it) and is cut short; the status says who can fix it."""
        # pinecone 10's ApiError carries `status_code`; the older generated clients' `status`.
        status = getattr(error, "status_code", None) or getattr(error, "status", None)
        detail = str(getattr(error, "message", None) or getattr(error, "body", None) or type(error).__name__)
        if self._api_key:
            detail = detail.replace(self._api_key, "[redacted]")
        detail = detail[:300]
        message = f"Pinecone answered HTTP {status}: {detail}" if status else f"Pinecone unreachable: {detail}"
        if status in (401, 403):
            return FailedPrecondition(f"{message} (check PINECONE_API_KEY)")
        if status == 429:
            return ResourceExhausted(message)
        if status is None or status >= 500:
            return Unavailable(message)
        return FailedPrecondition(message)

    # --- the VectorStore protocol ---

    async def replace_keys(self, entry_id: str, keys: Sequence[KeyVector], status: str, source: str) -> None:
        await self._call(self._replace_keys, entry_id, keys, status, source)

    async def set_attributes(self, entry_id: str, status: str, source: str) -> None:
        await self._call(self._set_attributes, entry_id, status, source)

    async def delete(self, entry_id: str) -> None:
        await self._call(self._delete, entry_id)

    async def search(
        self, vector: Sequence[float], k: int, statuses: Sequence[str], source: str | None
    ) -> list[VectorHit]:
        if not statuses or k <= 0:
            return []  # nothing can match; and the service refuses top_k 0
        return await self._call(self._search, vector, k, statuses, source)

    async def search_many(self, queries: Sequence[VectorQuery]) -> list[list[VectorHit]]:
        slots = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def one(query: VectorQuery) -> list[VectorHit]:
            async with slots:
                return await self.search(query.vector, query.k, query.statuses, query.source)

        return list(await asyncio.gather(*(one(query) for query in queries)))

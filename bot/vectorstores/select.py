"""Builds the bot's vector store from settings: pgvector (the embedded default,
in the bot's own PostgreSQL) or Pinecone. The Pinecone SDK is imported only when chosen."""

from __future__ import annotations

from contextlib import AsyncExitStack

import asyncpg

from bot.settings import Settings
from bot.vectorstores.base import VectorStore
from mendmodels.embeddings.base import Embedder


def vector_store(settings: Settings, pool: asyncpg.Pool, embedder: Embedder, stack: AsyncExitStack) -> VectorStore:
    if settings.vector_store == "pinecone":
        from bot.vectorstores.pinecone_store import PineconeStore

        store = PineconeStore.connect(settings.pinecone_api_key, settings.pinecone_index_name,
                                      host=settings.pinecone_host or None, namespace=settings.pinecone_namespace)
        stack.push_async_callback(store.close)
        return store
    from bot.vectorstores.pgvector_store import PgVectorStore

    return PgVectorStore(pool, embedder.model_id, embedder.dimension)

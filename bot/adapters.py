"""Builds the bot's three swappable parts from settings: the vector store
(pgvector | pinecone), the embedder (local | bedrock | openai) and the chat
model (local | bedrock | openai). Cloud SDKs are imported only when chosen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from bot.embeddings.base import Embedder
from bot.llm.base import ChatModel
from bot.settings import Settings
from bot.vectorstores.base import VectorStore

Closer = Callable[[], Awaitable[None]]


def embedder(settings: Settings, closers: list[Closer]) -> Embedder:
    if settings.embeddings == "bedrock":
        from bot.embeddings.bedrock import BedrockEmbedder

        return BedrockEmbedder(settings.bedrock_embedding_model, settings.bedrock_embedding_dimension,
                               region=settings.aws_region)
    if settings.embeddings == "openai":
        from bot.embeddings.openai_compatible import OpenAICompatibleEmbedder

        made = OpenAICompatibleEmbedder(settings.openai_base_url, settings.openai_embedding_model,
                                        settings.openai_embedding_dimension, api_key=settings.openai_api_key)
        closers.append(made.aclose)
        return made
    from bot.embeddings.local_minilm import LocalMiniLM

    return LocalMiniLM()


def vector_store(settings: Settings, pool: asyncpg.Pool, embedding: Embedder, closers: list[Closer]) -> VectorStore:
    if settings.vector_store == "pinecone":
        from bot.vectorstores.pinecone_store import PineconeStore

        store = PineconeStore.connect(settings.pinecone_api_key, settings.pinecone_index_name,
                                      host=settings.pinecone_host or None, namespace=settings.pinecone_namespace)
        closers.append(store.close)
        return store
    from bot.vectorstores.pgvector_store import PgVectorStore

    return PgVectorStore(pool, embedding.model_id, embedding.dimension)


def chat_model(settings: Settings, closers: list[Closer]) -> ChatModel:
    if settings.llm == "bedrock":
        from bot.llm.bedrock import BedrockChat

        return BedrockChat(settings.bedrock_chat_model, region=settings.aws_region)
    if settings.llm == "openai":
        from bot.llm.openai_compatible import OpenAICompatibleChat

        made = OpenAICompatibleChat(settings.openai_base_url, settings.openai_chat_model,
                                    api_key=settings.openai_api_key)
        closers.append(made.aclose)
        return made
    from bot.llm.local_gguf import LocalGGUF, prepare

    return LocalGGUF(prepare(settings.home / "models"), threads=settings.llm_threads)

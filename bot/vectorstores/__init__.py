"""Where retrieval keys' vectors live. Two real implementations, chosen by
`MEND_VECTOR_STORE`: pgvector (the embedded default) and Pinecone."""

from bot.vectorstores.base import KeyVector, VectorHit, VectorQuery, VectorStore

__all__ = ["KeyVector", "VectorHit", "VectorQuery", "VectorStore"]

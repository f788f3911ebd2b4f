"""Settings of the bot, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mendkit.settings import SettingsError, env_bool, env_choice, env_float, env_int, env_str, shared_from_env


@dataclass(frozen=True)
class Settings:
    # Secrets stay out of repr, so printing or logging settings cannot leak them.
    database_url: str = field(repr=False)
    host: str
    port: int
    pool_max_size: int
    vector_store: str
    embeddings: str
    page_token_secret: bytes = field(repr=False)
    home: Path
    embedded_pg_port: int
    log_level: str
    interactions_address: str
    llm: str
    llm_threads: int
    brand: str
    bot_name: str
    tone: str
    handoff: str
    system_prompt: str
    retrieval_k: int
    similarity_threshold: float
    record_chat_text: bool
    # Cloud adapters (read only when selected). Secrets stay out of repr, so
    # they can never reach a log line through the settings object.
    aws_region: str
    bedrock_chat_model: str
    bedrock_embedding_model: str
    bedrock_embedding_dimension: int
    openai_base_url: str
    openai_chat_model: str
    openai_embedding_model: str
    openai_embedding_dimension: int
    pinecone_index_name: str
    pinecone_host: str
    pinecone_namespace: str
    openai_api_key: str = field(default="", repr=False)
    pinecone_api_key: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> "Settings":
        vector_store = env_choice("MEND_VECTOR_STORE", "pgvector", ("pgvector", "pinecone"))
        embeddings = env_choice("MEND_EMBEDDINGS", "local", ("local", "bedrock", "openai"))
        llm = env_choice("MEND_LLM", "local", ("local", "bedrock", "openai"))
        uses_bedrock = "bedrock" in (embeddings, llm)
        uses_openai = "openai" in (embeddings, llm)
        if embeddings == "openai" and not env_str("OPENAI_EMBEDDING_DIMENSION", ""):
            raise SettingsError("OPENAI_EMBEDDING_DIMENSION is required when MEND_EMBEDDINGS=openai")
        return cls(
            **shared_from_env(),
            host=env_str("BOT_HOST", "127.0.0.1"),
            port=env_int("BOT_PORT", 50052, minimum=0, maximum=65535),
            pool_max_size=env_int("BOT_DB_POOL_SIZE", 10, minimum=1, maximum=200),
            vector_store=vector_store,
            embeddings=embeddings,
            interactions_address=env_str("INTERACTIONS_ADDR", "127.0.0.1:50051"),
            llm=llm,
            llm_threads=env_int("MEND_LLM_THREADS", 2, minimum=1, maximum=64),
            brand=env_str("MEND_BRAND_NAME", "Alder & Finch"),
            bot_name=env_str("MEND_BOT_NAME", "Mend"),
            tone=env_str("MEND_BRAND_TONE", "warm, clear and practical"),
            handoff=env_str("MEND_HANDOFF", "write to care@alderandfinch.example or chat with us 8:00-20:00 CET on weekdays"),
            system_prompt=env_str("MEND_SYSTEM_PROMPT", ""),
            retrieval_k=env_int("MEND_RETRIEVAL_K", 3, minimum=1, maximum=20),
            similarity_threshold=env_float("MEND_SIMILARITY_THRESHOLD", 0.45, minimum=-1.0, maximum=1.0),
            record_chat_text=env_bool("MEND_TRACE_CHAT_TEXT", False),
            aws_region=env_str("AWS_REGION") if uses_bedrock else env_str("AWS_REGION", ""),
            bedrock_chat_model=env_str("BEDROCK_CHAT_MODEL", "anthropic.claude-3-haiku-20240307-v1:0"),
            bedrock_embedding_model=env_str("BEDROCK_EMBEDDING_MODEL", "amazon.titan-embed-text-v2:0"),
            bedrock_embedding_dimension=env_int("BEDROCK_EMBEDDING_DIMENSION", 1024, minimum=256, maximum=1024),
            openai_base_url=env_str("OPENAI_BASE_URL") if uses_openai else env_str("OPENAI_BASE_URL", ""),
            openai_chat_model=env_str("OPENAI_CHAT_MODEL") if llm == "openai" else env_str("OPENAI_CHAT_MODEL", ""),
            openai_embedding_model=(env_str("OPENAI_EMBEDDING_MODEL") if embeddings == "openai"
                                    else env_str("OPENAI_EMBEDDING_MODEL", "")),
            openai_embedding_dimension=(env_int("OPENAI_EMBEDDING_DIMENSION", 0, minimum=1, maximum=16384)
                                        if embeddings == "openai" else 0),
            pinecone_index_name=env_str("PINECONE_INDEX_NAME", "rag-index"),
            pinecone_host=env_str("PINECONE_HOST", ""),
            pinecone_namespace=env_str("PINECONE_NAMESPACE", ""),
            openai_api_key=env_str("OPENAI_API_KEY", ""),
            pinecone_api_key=env_str("PINECONE_API_KEY") if vector_store == "pinecone" else "",
        )

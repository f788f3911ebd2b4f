"""Settings of the bot, read once at start-up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from mendkit.embedded_postgres import DEFAULT_HOME, DEFAULT_PORT
from mendkit.settings import SettingsError, env_bool, env_choice, env_float, env_int, env_str


@dataclass(frozen=True)
class Settings:
    database_url: str
    host: str
    port: int
    pool_max_size: int
    vector_store: str
    embeddings: str
    page_token_secret: bytes
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

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> "Settings":
        secret = env_str("MEND_PAGE_TOKEN_SECRET", "")
        if secret and len(secret) < 16:
            raise SettingsError("MEND_PAGE_TOKEN_SECRET must be at least 16 characters")
        return cls(
            database_url=env_str("DATABASE_URL", ""),
            host=env_str("BOT_HOST", "127.0.0.1"),
            port=env_int("BOT_PORT", 50052, minimum=0, maximum=65535),
            pool_max_size=env_int("BOT_DB_POOL_SIZE", 10, minimum=1, maximum=200),
            # Pinecone and the Bedrock / OpenAI-compatible embedders are not built yet (issue 3).
            vector_store=env_choice("MEND_VECTOR_STORE", "pgvector", ("pgvector",)),
            embeddings=env_choice("MEND_EMBEDDINGS", "local", ("local",)),
            page_token_secret=secret.encode() if secret else secrets.token_bytes(32),
            home=Path(env_str("MEND_HOME", str(DEFAULT_HOME))),
            embedded_pg_port=env_int("MEND_PG_PORT", DEFAULT_PORT, minimum=1, maximum=65535),
            log_level=env_str("LOG_LEVEL", "INFO"),
            interactions_address=env_str("INTERACTIONS_ADDR", "127.0.0.1:50051"),
            # Bedrock and OpenAI-compatible chat models are not built yet (issue 3).
            llm=env_choice("MEND_LLM", "local", ("local",)),
            llm_threads=env_int("MEND_LLM_THREADS", 2, minimum=1, maximum=64),
            brand=env_str("MEND_BRAND_NAME", "Alder & Finch"),
            bot_name=env_str("MEND_BOT_NAME", "Mend"),
            tone=env_str("MEND_BRAND_TONE", "warm, clear and practical"),
            handoff=env_str("MEND_HANDOFF", "write to care@alderandfinch.example or chat with us 8:00-20:00 CET on weekdays"),
            system_prompt=env_str("MEND_SYSTEM_PROMPT", ""),
            retrieval_k=env_int("MEND_RETRIEVAL_K", 3, minimum=1, maximum=20),
            similarity_threshold=env_float("MEND_SIMILARITY_THRESHOLD", 0.45, minimum=-1.0, maximum=1.0),
            record_chat_text=env_bool("MEND_TRACE_CHAT_TEXT", False),
        )

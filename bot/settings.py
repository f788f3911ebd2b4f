"""Settings of the bot, read once at start-up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from mendkit.embedded_postgres import DEFAULT_HOME, DEFAULT_PORT
from mendkit.settings import SettingsError, env_choice, env_int, env_str


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
        )

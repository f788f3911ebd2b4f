"""Settings of the interactions service, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mendkit.settings import env_bool, env_int, env_str, shared_from_env


@dataclass(frozen=True)
class Settings:
    # Empty: start (or reuse) the embedded PostgreSQL under `home`.
    # Secrets stay out of repr, so printing or logging settings cannot leak them.
    database_url: str = field(repr=False)
    host: str
    port: int
    pool_max_size: int
    migrate_on_start: bool
    page_token_secret: bytes = field(repr=False)
    home: Path
    embedded_pg_port: int
    log_level: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> "Settings":
        shared = shared_from_env()
        return cls(
            **shared,
            host=env_str("INTERACTIONS_HOST", "127.0.0.1"),
            port=env_int("INTERACTIONS_PORT", 50051, minimum=0, maximum=65535),
            pool_max_size=env_int("INTERACTIONS_DB_POOL_SIZE", 10, minimum=1, maximum=200),
            # The embedded default migrates itself; a managed database is migrated
            # by the explicit `python -m interactions migrate` (a Helm hook).
            migrate_on_start=env_bool("INTERACTIONS_MIGRATE_ON_START", not shared["database_url"]),
        )

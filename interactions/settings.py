"""Settings of the interactions service, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from interactions.retention import ACTIONS, Retention
from mendkit import addresses
from mendkit.credentials import Credential, callers_from_env
from mendkit.settings import Listen, Shared, env_choice, env_int


@dataclass(frozen=True)
class Settings:
    shared: Shared
    listen: Listen
    pool_max_size: int
    # Every identity's token (service.ACCESS says what each may call), to tell who calls.
    callers: tuple[Credential, ...]
    retention: Retention

    @classmethod
    def from_env(cls) -> Settings:
        shared = Shared.from_env()
        return cls(
            shared=shared,
            listen=Listen.from_env(addresses.INTERACTIONS),
            pool_max_size=env_int("INTERACTIONS_DB_POOL_SIZE", 10, minimum=1, maximum=200),
            callers=callers_from_env(shared.home),
            # 0 keeps exchanges as written; a day at least, so the bot's late retries still find theirs.
            retention=Retention(env_int("INTERACTIONS_RETENTION_DAYS", 0, minimum=0, maximum=36500),
                                env_choice("INTERACTIONS_RETENTION_ACTION", "mask", ACTIONS)),
        )

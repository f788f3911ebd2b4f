"""Retention: exchanges older than `INTERACTIONS_RETENTION_DAYS` have their
personal data masked (mendkit/personal_data.py: the question, the answer and
the comment, once each) or are deleted, as `INTERACTIONS_RETENTION_ACTION` says.

Interactions keeps what customers wrote while it is useful (the trainer reads
it masked anyway); past the retention period nothing of it is kept that names
a person. A pass runs at start and then every hour, a batch per transaction,
so a large backlog never holds long locks, and replicas share it (rows one
holds are skipped by the others). A pass that fails (the database is down) is
logged and tried again at the next one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from interactions import repository
from mendkit.errors import MendError
from mendkit.personal_data import mask

_log = logging.getLogger("interactions.retention")
BATCH = 1000
INTERVAL_S = 3600.0
ACTIONS = ("mask", "delete")


@dataclass(frozen=True)
class Retention:
    days: int  # 0: kept as written, forever
    action: str  # "mask" | "delete"


async def apply(pool: asyncpg.Pool, retention: Retention, now: datetime | None = None) -> int:
    """One pass: every exchange past the period masked or deleted; returns how many."""
    if retention.days <= 0:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention.days)
    done = 0
    while True:
        if retention.action == "delete":
            count = await repository.delete_older_than(pool, cutoff, BATCH)
        else:
            count = await repository.mask_older_than(pool, cutoff, BATCH, mask)
        done += count
        if count < BATCH:
            break
    if done:
        _log.info("retention applied", extra={"action": retention.action, "exchanges": done,
                                              "older_than_days": retention.days})
    return done


async def keep_applying(pool: asyncpg.Pool, retention: Retention, interval_s: float = INTERVAL_S) -> None:
    """Passes until cancelled: at once, then every `interval_s`."""
    if retention.days <= 0:
        return
    while True:
        try:
            await apply(pool, retention)
        except (MendError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # A restart of PostgreSQL raises more than database_errors maps: none may end the task.
            _log.warning("retention pass failed; trying again at the next", extra={"error": str(error)[:300]})
        await asyncio.sleep(interval_s)

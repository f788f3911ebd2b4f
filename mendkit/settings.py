"""Settings read from the environment.

Each service declares a frozen dataclass and builds it with these readers at
start-up, so that a missing or malformed variable stops the process at once
with a message naming the variable, instead of failing on first use. What every
service reads alike is declared once here (`Shared`, `Listen`, `address_of`) and
composed into each service's settings. Telemetry follows OpenTelemetry's own
variables (`OTEL_*`), read by `mendkit.telemetry`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mendkit.addresses import LOOPBACK, Part

_REQUIRED = object()


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def env_str(
    name: str,
    default: str | object = _REQUIRED,
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Returns the variable's value, or `default`; raises when required and unset."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if value:
        return value
    if default is _REQUIRED:
        raise SettingsError(f"{name} is required but not set")
    return str(default)


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Returns the variable as an integer within [minimum, maximum]."""
    raw = env_str(name, "", environ=environ)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    """Returns the variable as a float within [minimum, maximum]."""
    raw = env_str(name, "", environ=environ)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    """Returns the variable as a boolean (1/true/yes/on or 0/false/no/off)."""
    raw = env_str(name, "", environ=environ).lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def env_choice(
    name: str,
    default: str,
    choices: tuple[str, ...],
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Returns the variable's value, which must be one of `choices`."""
    value = env_str(name, default, environ=environ)
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Shared:
    """The settings every service with a database reads."""

    # Empty: start (or reuse) the embedded PostgreSQL under `home`.
    # Secrets stay out of repr, so printing or logging settings cannot leak them.
    database_url: str = field(repr=False)
    home: Path
    embedded_pg_port: int
    page_token_secret: bytes = field(repr=False)
    log_level: str
    # Apply the service's migrations at start-up. The embedded database migrates
    # itself; a managed one is migrated by `python -m <service> migrate` (a Helm hook).
    migrate_on_start: bool

    @classmethod
    def from_env(cls) -> Shared:
        """DATABASE_URL, MEND_HOME, MEND_PG_PORT, MEND_PAGE_TOKEN_SECRET, LOG_LEVEL
        and MEND_MIGRATE_ON_START."""
        from mendkit.embedded_postgres import DEFAULT_HOME, DEFAULT_PORT
        from mendkit.page_tokens import secret_from_env

        database_url = env_str("DATABASE_URL", "")
        if env_str("INTERACTIONS_MIGRATE_ON_START", ""):
            # Renamed when every service came to follow one rule: refuse it rather than ignore it.
            raise SettingsError("INTERACTIONS_MIGRATE_ON_START is now MEND_MIGRATE_ON_START "
                                "(one rule for every service)")
        return cls(
            database_url=database_url,
            home=Path(env_str("MEND_HOME", str(DEFAULT_HOME))),
            embedded_pg_port=env_int("MEND_PG_PORT", DEFAULT_PORT, minimum=1, maximum=65535),
            page_token_secret=secret_from_env(),
            log_level=env_str("LOG_LEVEL", "INFO"),
            migrate_on_start=env_bool("MEND_MIGRATE_ON_START", not database_url),
        )


@dataclass(frozen=True)
class MigrateSettings:
    """What `python -m <service> migrate` reads: the shared settings alone, so
    the Helm hook needs no model, vector store or service settings."""

    shared: Shared

    @classmethod
    def from_env(cls) -> MigrateSettings:
        return cls(Shared.from_env())


@dataclass(frozen=True)
class Listen:
    """Where a service's gRPC server listens."""

    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, part: Part) -> Listen:
        """`<PART>_HOST` (loopback by default) and `<PART>_PORT` (its default port)."""
        return cls(env_str(part.host_variable, LOOPBACK),
                   env_int(part.port_variable, part.port, minimum=0, maximum=65535))


def address_of(part: Part, environ: Mapping[str, str] | None = None) -> str:
    """Where callers find `part`: `<PART>_ADDR`, or its default on loopback."""
    return env_str(part.address_variable, part.default_address, environ=environ)


def brand_from_env() -> str:
    """MEND_BRAND_NAME: the brand the bot speaks for and the trainer's teacher writes for."""
    return env_str("MEND_BRAND_NAME", "Alder & Finch")

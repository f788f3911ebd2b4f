"""Settings read from the environment.

Each service declares a frozen dataclass and builds it with these readers at
start-up, so that a missing or malformed variable stops the process at once
with a message naming the variable, instead of failing on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

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


def shared_from_env() -> dict[str, object]:
    """The settings every service with a database reads, named as the fields of
    their Settings: DATABASE_URL (empty: the embedded server), MEND_HOME,
    MEND_PG_PORT, MEND_PAGE_TOKEN_SECRET and LOG_LEVEL."""
    from mendkit.embedded_postgres import DEFAULT_HOME, DEFAULT_PORT
    from mendkit.page_tokens import secret_from_env

    return {
        "database_url": env_str("DATABASE_URL", ""),
        "home": Path(env_str("MEND_HOME", str(DEFAULT_HOME))),
        "embedded_pg_port": env_int("MEND_PG_PORT", DEFAULT_PORT, minimum=1, maximum=65535),
        "page_token_secret": secret_from_env(),
        "log_level": env_str("LOG_LEVEL", "INFO"),
    }

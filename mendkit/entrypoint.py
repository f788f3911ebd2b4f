"""What every `python -m <service>` does around its command: settings that fail
fast (exit 2, naming the variable), JSON logs, telemetry flushed at exit, and
an exit status that says what happened (0 done, 1 failed)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from mendkit.logs import setup_logging
from mendkit.settings import SettingsError, Shared
from mendkit.telemetry import setup_telemetry


class _HasShared(Protocol):
    @property
    def shared(self) -> Shared: ...


S = TypeVar("S", bound=_HasShared)


def run_command(service: str, load_settings: Callable[[], S],
                command: Callable[[S], Coroutine[Any, Any, int | None]]) -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"{service}: {error}", file=sys.stderr)
        return 2
    setup_logging(service, settings.shared.log_level)
    shutdown_telemetry = setup_telemetry(service)
    log = logging.getLogger(service)
    try:
        return asyncio.run(command(settings)) or 0
    except (OSError, ValueError) as error:  # a taken port, an unreachable database, a bad input file
        log.error(str(error))
        return 1
    except Exception:
        log.exception("failed")
        return 1
    finally:
        shutdown_telemetry()

"""Secrets kept in MEND_HOME when no setting gives them: on a laptop (the
embedded mesh, a service started alone) the services that must agree on a
secret find it in one file, made once by whichever starts first, readable by
its owner only (mode 0600). In Kubernetes the chart sets every such secret, so
no file is ever made there."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def kept(home: Path, name: str, make: Callable[[], bytes]) -> bytes:
    """The contents of `home/name`, written first from `make()` if the file is missing."""
    path = home / name
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        # A draft of its own (containers sharing MEND_HOME may all be PID 1), never readable by others.
        draft = home / f".{name}.{secrets.token_hex(8)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, make())
        finally:
            os.close(descriptor)
        try:
            os.link(draft, path)  # atomic: the first process to get here wins, the others read its secret
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    return path.read_bytes()

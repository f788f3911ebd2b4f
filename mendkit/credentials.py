"""Bearer tokens: who a caller is.

Three identities call Mend's services: `admin` (a person, or a tool acting for
one), `bot` (it logs exchanges to interactions) and `trainer` (it reads and
marks interactions and writes knowledge through the bot). Each has a token of
its own, so a service's rules can let the bot log exchanges without letting
its token delete knowledge.

A service is given the token it sends (`MEND_<IDENTITY>_TOKEN`) and, for every
other identity, that token or only its SHA-256 (`MEND_<IDENTITY>_TOKEN_SHA256`,
64 hex digits): with the digest alone a service can check a token it could
never present, so no pod holds the admin token or another service's. Knowing
every identity, a server answers a token of a service without the right to a
method PERMISSION_DENIED, and one of no one UNAUTHENTICATED. Neither
set (a laptop): the token kept in `MEND_HOME/<identity>.token` (mode 0600),
made by whichever process needs it first, so the embedded mesh works with no
setting and the person at the keyboard reads the admin token there.

Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every
identity each time, so the time a check takes says nothing about the token.
Tokens never appear in a repr, a log line, a span or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mendkit.kept import kept
from mendkit.settings import SettingsError, env_str

ADMIN = "admin"
BOT = "bot"
TRAINER = "trainer"
IDENTITIES = (ADMIN, BOT, TRAINER)

MIN_TOKEN_CHARS = 32
# RFC 6750's token68: what may follow "Bearer " in an authorization header.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def token_variable(identity: str) -> str:
    return f"MEND_{identity.upper()}_TOKEN"


def digest_variable(identity: str) -> str:
    return f"MEND_{identity.upper()}_TOKEN_SHA256"


def token_file(identity: str) -> str:
    """The name of the file in MEND_HOME that keeps `identity`'s token when no setting gives it."""
    return f"{identity}.token"


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def is_token(value: str) -> bool:
    """Whether `value` could be a bearer token (long enough, token68 characters)."""
    return len(value) >= MIN_TOKEN_CHARS and _TOKEN.fullmatch(value) is not None


@dataclass(frozen=True)
class Credential:
    """One identity's token as a service's settings found it. Reading the settings
    touches no file: the kept token is read (or made) only when `token()` or
    `digest()` is first asked for, so a command that never sends or checks it
    (the trainer's scheduled run, `bot ingest`) never makes one."""

    identity: str
    home: Path
    given_token: str = field(default="", repr=False)
    given_digest: bytes = field(default=b"", repr=False)

    @classmethod
    def from_env(cls, identity: str, home: Path, environ: Mapping[str, str] | None = None) -> Credential:
        """MEND_<IDENTITY>_TOKEN and MEND_<IDENTITY>_TOKEN_SHA256 (either, both, or neither)."""
        if identity not in IDENTITIES:
            raise ValueError(f"{identity!r} is not one of {', '.join(IDENTITIES)}")
        token = env_str(token_variable(identity), "", environ=environ)
        if token and not is_token(token):
            raise SettingsError(f"{token_variable(identity)} must be at least {MIN_TOKEN_CHARS} characters of "
                                "letters, digits and -._~+/ (e.g. `openssl rand -hex 32`)")
        raw_digest = env_str(digest_variable(identity), "", environ=environ)
        if raw_digest and not _DIGEST.fullmatch(raw_digest):
            raise SettingsError(f"{digest_variable(identity)} must be the SHA-256 of the token in 64 hexadecimal "
                                "digits (`printf %s \"$TOKEN\" | sha256sum`)")
        digest = bytes.fromhex(raw_digest) if raw_digest else b""
        if token and digest and not hmac.compare_digest(digest_of(token), digest):
            raise SettingsError(f"{token_variable(identity)} and {digest_variable(identity)} disagree: "
                                "set one of them")
        return cls(identity, home, token, digest)

    def _kept(self) -> str:
        return kept(self.home, token_file(self.identity), lambda: secrets.token_urlsafe(32).encode()).decode().strip()

    def token(self) -> str:
        """The token itself, to send. Only its digest given: a SettingsError naming the variable."""
        if self.given_token:
            return self.given_token
        if self.given_digest:
            raise SettingsError(f"{token_variable(self.identity)} is required to call as {self.identity} "
                                f"({digest_variable(self.identity)} only lets a service check it)")
        return self._kept()

    def digest(self) -> bytes:
        """The SHA-256 of the token, to check one presented."""
        return self.given_digest or digest_of(self.given_token or self._kept())


def callers_from_env(home: Path, own: Credential | None = None,
                     environ: Mapping[str, str] | None = None) -> tuple[Credential, ...]:
    """Every identity's credential, for a server to tell who calls: it knows them
    all (a service's token is PERMISSION_DENIED where that service has no right,
    not unknown), and its access rules say what each may do. `own`, the
    service's own credential, stands for its identity."""
    return tuple(own if own is not None and own.identity == identity else Credential.from_env(identity, home, environ)
                 for identity in IDENTITIES)


class Verifier:
    """Tells which identity a presented token belongs to, if any."""

    def __init__(self, digests: Mapping[str, bytes]) -> None:
        self._digests = dict(digests)

    @classmethod
    def of(cls, credentials: Iterable[Credential]) -> Verifier:
        return cls({credential.identity: credential.digest() for credential in credentials})

    @classmethod
    def of_tokens(cls, tokens: Mapping[str, str]) -> Verifier:
        """From tokens themselves (tests, an in-process mesh)."""
        return cls({identity: digest_of(token) for identity, token in tokens.items()})

    @property
    def identities(self) -> frozenset[str]:
        return frozenset(self._digests)

    def identify(self, token: str) -> str | None:
        presented = digest_of(token)
        found = None
        for identity, digest in self._digests.items():  # every one, whichever matches
            if hmac.compare_digest(presented, digest):
                found = identity
        return found

    def __repr__(self) -> str:
        return f"Verifier({sorted(self._digests)})"

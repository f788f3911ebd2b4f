"""Opaque, signed page tokens for AIP-158 list RPCs.

A token carries the keyset cursor of the last row served plus a digest of the
filters it was issued for, signed with HMAC-SHA256. A token that was altered,
forged with another secret, or replayed with different filters is rejected
with INVALID_ARGUMENT, never followed. Replicas that serve the same list must
share the secret (`MEND_PAGE_TOKEN_SECRET`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mendkit.errors import InvalidArgument

_MAC_BYTES = 16
T = TypeVar("T")
R = TypeVar("R")


class PageTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the page token secret must be at least 16 bytes")
        self._secret = secret

    @staticmethod
    def _filters_digest(filters: Any) -> str:
        canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, cursor: list[Any], filters: Any) -> str:
        """A token for the page after `cursor`, valid only with `filters`."""
        body = json.dumps({"c": cursor, "f": self._filters_digest(filters)}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).decode().rstrip("=")

    def decode(self, token: str, filters: Any, field: str = "page_token") -> list[Any]:
        """The cursor inside `token`; INVALID_ARGUMENT naming `field` if it is not genuine."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidArgument(field, "is not a page token issued by this service") from None
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidArgument(field, "is not a page token issued by this service") from None
        payload = json.loads(body)
        if payload.get("f") != self._filters_digest(filters):
            raise InvalidArgument(field, "was issued for different filters; start again without a token")
        cursor = payload.get("c")
        if not isinstance(cursor, list):
            raise InvalidArgument(field, "is not a page token issued by this service")
        return cursor

    def after(self, token: str, filters: Any, parse: Callable[[list[Any]], T]) -> T | None:
        """Where a page starts: None without a token (the first page), else the
        token's cursor as `parse` reads it; INVALID_ARGUMENT if it cannot."""
        if not token:
            return None
        cursor = self.decode(token, filters)
        try:
            return parse(cursor)
        except (IndexError, TypeError, ValueError):
            raise InvalidArgument("page_token", "is not a page token issued by this service") from None

    def page(self, rows: Sequence[R], size: int, filters: Any,
             cursor_of: Callable[[R], list[Any]]) -> tuple[Sequence[R], str]:
        """The page and the token for the next one ("" after the last). `rows`
        were fetched as size + 1: the extra row only says that more follow."""
        if len(rows) <= size:
            return rows, ""
        rows = rows[:size]
        return rows, self.encode(cursor_of(rows[-1]), filters)


def secret_from_env() -> bytes:
    """MEND_PAGE_TOKEN_SECRET, or a random per-process secret when unset: fine
    for one replica, wrong for several (Helm always sets one)."""
    import os
    import secrets

    from mendkit.settings import SettingsError

    value = os.environ.get("MEND_PAGE_TOKEN_SECRET", "").strip()
    if value and len(value) < 16:
        raise SettingsError("MEND_PAGE_TOKEN_SECRET must be at least 16 characters")
    return value.encode() if value else secrets.token_bytes(32)

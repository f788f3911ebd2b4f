"""Conversation tokens: the secret that proves a client is the one a
conversation was issued to.

The bot issues one with the first answer of a conversation and returns it with
every answer; the client sends it back to continue the conversation and with
each vote. A token is the HMAC-SHA256 of the conversation id under a key
derived from the shared secret (`MEND_PAGE_TOKEN_SECRET`) with a domain
separator, so it is stateless, never usable as a page token (nor the other way
round), and checked in constant time. Every service that checks tokens (the bot,
interactions) must share the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from mendkit.errors import InvalidArgument
from mendkit.kept import kept

_DOMAIN = b"mend.conversation-token.v1"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url without padding
KEY_FILE = "conversation-token.key"


class ConversationTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the conversation token secret must be at least 16 bytes")
        self._key = hmac.new(secret, _DOMAIN, hashlib.sha256).digest()

    @classmethod
    def random(cls) -> ConversationTokens:
        """Tokens only this object accepts: for a single process (tests); a
        service that issues tokens another checks is given the shared secret."""
        return cls(secrets.token_bytes(32))

    def _mac(self, conversation_id: str) -> bytes:
        return hmac.new(self._key, conversation_id.encode(), hashlib.sha256).digest()

    def issue(self, conversation_id: str) -> str:
        """The token of `conversation_id` (the same every time it is asked)."""
        return base64.urlsafe_b64encode(self._mac(conversation_id)).decode().rstrip("=")

    def valid(self, conversation_id: str, token: str, field: str = "conversation_token") -> bool:
        """Whether `token` was issued for `conversation_id`. An empty token is
        not valid; one that is not a token at all is INVALID_ARGUMENT naming
        `field`. No conversation (an empty id) has a valid token."""
        if not token:
            return False
        mac = _decoded(token, field)
        return bool(conversation_id) and hmac.compare_digest(mac, self._mac(conversation_id))


def _decoded(token: str, field: str) -> bytes:
    if not _TOKEN.fullmatch(token):
        raise InvalidArgument(field, "is not a conversation token issued by the bot")
    try:
        return base64.urlsafe_b64decode(token + "=")
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, "is not a conversation token issued by the bot") from None


def secret_from_env(home: Path) -> bytes:
    """MEND_PAGE_TOKEN_SECRET (the same on every replica; Helm always sets it),
    or, when unset, a random key kept in `home` (MEND_HOME): made once by
    whichever service starts first, so that the bot and interactions of the
    embedded mesh agree without any setting."""
    from mendkit.page_tokens import secret_from_env as shared_secret

    if os.environ.get("MEND_PAGE_TOKEN_SECRET", "").strip():
        return shared_secret()
    return kept(home, KEY_FILE, lambda: secrets.token_bytes(32))

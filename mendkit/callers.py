"""Who is calling: the public gateway marks every request it forwards.

Envoy's public listener sets `x-mend-caller: public` on each request,
overwriting whatever the client sent (and drops any `authorization` the client
sent), so a call carrying it came from the internet through the gateway. Such a
call reaches public methods only, whatever credential it carries
(`mendkit.access`); a call without it is anonymous unless its bearer token says
who it is (`mendkit.credentials`).
"""

from __future__ import annotations

from typing import Any

CALLER_HEADER = "x-mend-caller"
PUBLIC = "public"


def marked_public(metadata: Any) -> bool:
    """Whether a call's metadata carries the gateway's public mark."""
    return any(key == CALLER_HEADER and value == PUBLIC for key, value in metadata or ())

"""Who is calling: the public gateway marks every request it forwards.

Envoy's public listener sets `x-mend-caller: public` on each request,
overwriting whatever the client sent, so a call carrying it came from the
internet through the gateway. A call without it came from the internal network
(another service, a benchmark, an administrator), which only loopback binding
or a NetworkPolicy protects until admin RPCs get credentials.
"""

from __future__ import annotations

import grpc

CALLER_HEADER = "x-mend-caller"
PUBLIC = "public"


def is_public(context: grpc.aio.ServicerContext) -> bool:
    """Whether the call came through the public gateway."""
    return any(key == CALLER_HEADER and value == PUBLIC for key, value in context.invocation_metadata() or ())

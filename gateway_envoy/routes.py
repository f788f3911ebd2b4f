"""Which RPCs the public listener serves, and how each is bounded.

The public listener is what a browser (or anyone on the internet) reaches. It
serves the customer-facing RPCs only; everything else under `/mend.` -
knowledge admin, the trainer, listing interactions, reflection, health - is
answered PERMISSION_DENIED by Envoy itself and never reaches a service.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublicRoute:
    path: str
    upstream: str  # "bot" or "interactions"
    # Unary calls are bounded; a server stream gets no route timeout (the
    # answer is written token by token and may take a while on a laptop CPU)
    # and only an idle timeout between messages.
    streaming: bool
    # Envoy retries a call only when repeating it is harmless: any call whose
    # connection was refused (the request never reached a server), and an
    # idempotent call also on UNAVAILABLE from the server.
    idempotent: bool
    timeout_s: int = 0


PUBLIC_ROUTES = (
    PublicRoute("/mend.bot.v1.ChatService/Chat", "bot", streaming=False, idempotent=False, timeout_s=120),
    PublicRoute("/mend.bot.v1.ChatService/ChatStream", "bot", streaming=True, idempotent=False),
    # A second vote replaces the first, so a repeated SubmitFeedback is harmless.
    PublicRoute("/mend.interactions.v1.InteractionsService/SubmitFeedback", "interactions",
                streaming=False, idempotent=True, timeout_s=10),
)

# Everything gRPC that is not public: the message names no method, so that the
# listener does not confirm which admin methods exist.
DENIED_MESSAGE = "this method is not served on the public listener"

"""A follow-up the bot answered unsure (Interaction.unsure: "can I rent one
while it's being repaired?" after "My tent pole broke, can you fix it?", which
nothing covers on its own and which the bot answered from the conversation's
topic) means little on its own. As a fix's phrasing it would match any
question about "one" or "it", and the teacher would not know what "one" is.
So the trainer reads it as the bot searched it: after the question it followed
in its conversation (the last turn logged before it)."""

from __future__ import annotations

from collections.abc import Sequence

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.validation import MAX_QUESTION_CHARS

# The earlier question is kept to its last this many characters: the follow-up
# stays the point of the phrasing (the bot's context search is bounded alike).
EARLIER_CHARS = 300
TURNS_PAGE = 1000


async def in_context(interactions: ipb_grpc.InteractionsServiceAsyncStub,
                     items: Sequence[ipb.Interaction]) -> list[ipb.Interaction]:
    """The items, each unsure follow-up's question preceded by the question it followed."""
    read = []
    for item in items:
        earlier = await _earlier_question(interactions, item) if item.unsure and item.conversation_id else ""
        # A phrasing is a question too: the two together within the bot's limit for one.
        room = min(EARLIER_CHARS, MAX_QUESTION_CHARS - len(item.user_query) - 1)
        earlier = earlier[-room:].strip() if room > 0 else ""
        if earlier:
            copy = ipb.Interaction()
            copy.CopyFrom(item)
            copy.user_query = f"{earlier} {item.user_query}"
            item = copy
        read.append(item)
    return read


async def _earlier_question(interactions: ipb_grpc.InteractionsServiceAsyncStub, item: ipb.Interaction) -> str:
    """The question of the conversation's last turn logged before `item` ("" if none)."""
    last, token = "", ""
    while True:
        page = await interactions.ListInteractions(ipb.ListInteractionsRequest(
            conversation_id=item.conversation_id, end_time=item.timestamp, page_size=TURNS_PAGE, page_token=token))
        if page.interactions:  # oldest first; `end_time` leaves `item` itself out
            last = page.interactions[-1].user_query
        token = page.next_page_token
        if not token:
            return last

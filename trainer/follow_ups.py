"""A follow-up the bot answered unsure (Interaction.unsure: "can I rent one
while it's being repaired?" after "My tent pole broke, can you fix it?") was
answered from the entry of an earlier answer because it points back at it, not
because anything covers it on its own. Alone it means little: as a fix's
phrasing it would match any question about "one" or "it", and the teacher would
not know what "one" is. So the trainer reads it after the question whose answer
it pointed back at: the conversation's last confident turn logged before it
that was answered from the same entry.

The lookup is a `ListInteractions` of the conversation, like the page's own
listing: if interactions fails it, the run fails as it would on the page."""

from __future__ import annotations

from collections.abc import Sequence

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit.personal_data import mask
from mendkit.validation import MAX_QUESTION_CHARS

# At most this much of the earlier question, its newest words: the follow-up
# stays the point of the phrasing.
EARLIER_CHARS = 300
TURNS_PAGE = 1000


async def in_context(interactions: ipb_grpc.InteractionsServiceAsyncStub,
                     items: Sequence[ipb.Interaction]) -> list[ipb.Interaction]:
    """The (masked) items, each unsure follow-up's question preceded by the
    question it pointed back at, masked too, within the bot's limit for a question."""
    read = []
    for item in items:
        earlier = await _pointed_at(interactions, item) if item.unsure and item.sources else ""
        earlier = _newest_words(mask(earlier), min(EARLIER_CHARS, MAX_QUESTION_CHARS - len(item.user_query) - 1))
        if earlier:
            copy = ipb.Interaction()
            copy.CopyFrom(item)
            copy.user_query = f"{earlier} {item.user_query}"
            item = copy
        read.append(item)
    return read


def _newest_words(text: str, chars: int) -> str:
    """The end of `text` in at most `chars` characters, whole words only."""
    text = text.strip()
    if len(text) <= chars:
        return text
    if chars <= 0:
        return ""
    tail = text[-chars:]
    if not text[-chars - 1].isspace():
        tail = tail.partition(" ")[2]  # the word the cut went through
    return tail.strip()


async def _pointed_at(interactions: ipb_grpc.InteractionsServiceAsyncStub, item: ipb.Interaction) -> str:
    """The question of the conversation's last turn logged before `item` that
    was answered, confidently, from the entry `item` was ("" if none). An unsure
    turn in between points back at that same entry and says no more than `item`."""
    if not item.conversation_id:
        return ""
    entry, found, token = item.sources[0].entry_id, "", ""
    while True:
        page = await interactions.ListInteractions(ipb.ListInteractionsRequest(
            conversation_id=item.conversation_id, end_time=item.timestamp, page_size=TURNS_PAGE, page_token=token))
        for turn in page.interactions:  # oldest first; `end_time` leaves `item` itself out
            if not turn.unsure and turn.sources and turn.sources[0].entry_id == entry:
                found = turn.user_query
        token = page.next_page_token
        if not token:
            return found

"""The trainer never carries a customer's personal data further: the questions
and comments it reads are masked before the teacher sees them and before they
become a fix's phrasings, title or provenance (trainer/privacy.py), while
interactions keeps what the customer wrote. Planted values, a real run."""

from __future__ import annotations

import json

from google.protobuf import json_format

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit.personal_data import CARD, EMAIL, ORDER, PHONE
from tests.support import BRAND, RETURNS, Teacher, processed, upsert
from tests.trainer.builders import disliked, liked
from trainer.loop import SOURCE, Policy, run_once

PLANTED = ("jane.doe@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "AF-203914")
AUTO = Policy(threshold=1, publish="auto", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)


class RecordingTeacher(Teacher):
    """The test teacher, keeping every message it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def stream(self, messages, max_tokens):
        self.sent += [message.content for message in messages]
        async for piece in super().stream(messages, max_tokens):
            yield piece


async def test_a_run_sends_and_publishes_no_planted_personal_data(interactions, knowledge):
    await upsert(knowledge, RETURNS)
    gap = await disliked(interactions, "Can I rent a tent? Mail me at jane.doe@example.com or call +44 20 7946 0958",
                         comment="my card 4111 1111 1111 1111 was charged for order AF-203914",
                         # A model in the bot echoed the customer: the teacher reads this answer too.
                         answer="Sorry jane.doe@example.com, I cannot see order AF-203914.")
    stale = await disliked(interactions, "Can I send back my order AF-203914? It came to jane.doe@example.com",
                           source=("faq-returns", 0.9), answer=RETURNS.content,
                           reason=ipb.FEEDBACK_REASON_OUTDATED,
                           comment="You changed the policy, my card 4111 1111 1111 1111 got no refund")
    await liked(interactions, "How do I return an item? My email is jane.doe@example.com", "faq-returns")
    teacher = RecordingTeacher()
    counts = await run_once(interactions, knowledge, teacher, AUTO)
    assert counts.fixed >= 1 and teacher.sent
    entries = (await knowledge.ListEntries(bpb.ListEntriesRequest(page_size=100))).entries
    published = json.dumps([json_format.MessageToDict(entry) for entry in entries])
    for value in PLANTED:
        assert not any(value in text for text in teacher.sent), value
        assert value not in published, value
    # What the customer asked still reads, with a placeholder where the value was.
    fix = next(entry for entry in entries if entry.source == SOURCE)
    assert "rent a tent" in fix.title and EMAIL in fix.title and PHONE in fix.title
    assert any(CARD in text and ORDER in text for text in teacher.sent)
    # Interactions, the owner, keeps the customer's words as written.
    stored = await processed(interactions)
    assert "jane.doe@example.com" in stored[gap].user_query
    assert "4111 1111 1111 1111" in stored[stale].feedback_comment

"""trainer/privacy.masked on one interaction: the question, the comment and the
bot's answer masked, every other field kept, the interaction read left as it
was. Pinned where the mutation run (scripts/mutate, docs/testing.md) may find a
change that the whole run of tests/trainer/test_privacy.py does not notice."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit.personal_data import EMAIL, ORDER
from trainer.privacy import masked


def test_the_question_the_comment_and_the_answer_are_masked_and_everything_else_kept():
    item = ipb.Interaction(interaction_id="i-1", conversation_id="c-1", user_query="Mail me at jane@example.com",
                           bot_response="Write to help@example.com", feedback_comment="order #20931 never came",
                           feedback_reason=ipb.FEEDBACK_REASON_OUTDATED,
                           sources=[ipb.KnowledgeSource(entry_id="faq-returns", score=0.5)])
    copy = masked(item)
    assert copy.user_query == f"Mail me at {EMAIL}"
    assert copy.feedback_comment == f"order {ORDER} never came"
    assert copy.bot_response == f"Write to {EMAIL}"  # a model may echo the customer
    expected = ipb.Interaction()
    expected.CopyFrom(item)
    expected.user_query, expected.feedback_comment, expected.bot_response = (
        copy.user_query, copy.feedback_comment, copy.bot_response)
    assert copy == expected  # the ids, the sources and the rest as they were
    assert item.user_query == "Mail me at jane@example.com"  # the interaction read is not changed

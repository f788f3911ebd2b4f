"""The trainer reads every customer's words masked (mendkit/personal_data.py):
what a customer wrote goes to the teacher and the judge (a cloud model in
production) and becomes phrasings and titles of published knowledge entries,
so an e-mail address, phone, card or order number or home address in a
question or a comment must never get that far. Interactions keeps the raw text."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendkit.personal_data import mask


def masked(item: ipb.Interaction) -> ipb.Interaction:
    """The interaction with the customer's question and comment masked, and the
    bot's answer too: a model in the bot may have echoed what the customer wrote,
    and the teacher reads that answer and may copy from it into a fix."""
    copy = ipb.Interaction()
    copy.CopyFrom(item)
    copy.user_query = mask(item.user_query)
    copy.feedback_comment = mask(item.feedback_comment)
    copy.bot_response = mask(item.bot_response)
    return copy

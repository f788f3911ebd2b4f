"""Disliked interactions as the bot logs them (with the sources it answered
from) and as customers rate them (a reason, a comment), for the triage tests."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as ipb

DONT_KNOW = "I don't know that one; please contact our care team."


async def disliked(interactions, question: str, *, answer: str = DONT_KNOW, source: tuple[str, float] | None = None,
                   reason: int = ipb.FEEDBACK_REASON_NOT_RELEVANT, comment: str = "") -> str:
    """Logs `question` answered with `answer` from `source` (entry id, score; None: the bot did not
    know), disliked with `reason` and `comment`; returns the interaction id."""
    sources = [ipb.KnowledgeSource(entry_id=source[0], title=source[0], score=source[1])] if source else []
    created = (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        user_query=question, bot_response=answer, sources=sources)))).interaction
    await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(
        interaction_id=created.interaction_id, rating=ipb.RATING_DISLIKE, reason=reason, comment=comment))
    return created.interaction_id


async def liked(interactions, question: str, source: str) -> str:
    """Logs `question` answered from entry `source` and liked; returns the interaction id."""
    created = (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        user_query=question, bot_response="(the entry's answer)",
        sources=[ipb.KnowledgeSource(entry_id=source, title=source, score=0.6)])))).interaction
    await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(interaction_id=created.interaction_id,
                                                                rating=ipb.RATING_LIKE))
    return created.interaction_id

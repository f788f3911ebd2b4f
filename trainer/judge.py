"""Does an existing entry answer a disliked question the bot did not answer
from it? trainer/triage.py names the candidates (published entries other than
the one the customer disliked, best first); a judge picks the one that answers,
or none. Two judges:

- `SimilarityJudge`: the first candidate at least this similar. The judge of
  the embedded model, which is too weak to judge reliably.
- `ModelJudge`: a model (Claude 3 Haiku on Bedrock by default) reads the best
  candidate and answers strictly yes or no.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mend.bot.v1 import bot_service_pb2 as bpb
from mendmodels.chat.base import ChatModel, Message


@dataclass(frozen=True)
class Hit:
    """An entry a search found for a question, and how similar (cosine)."""

    entry: bpb.KnowledgeEntry
    score: float


class Judge(Protocol):
    async def covering(self, question: str, candidates: Sequence[Hit]) -> Hit | None:
        """The candidate that answers `question`, or None."""


class SimilarityJudge:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    async def covering(self, question: str, candidates: Sequence[Hit]) -> Hit | None:
        return next((hit for hit in candidates if hit.score >= self.threshold), None)


class ModelJudge:
    def __init__(self, model: ChatModel) -> None:
        self.model = model

    async def covering(self, question: str, candidates: Sequence[Hit]) -> Hit | None:
        if not candidates:
            return None
        best = candidates[0]
        messages = [
            Message("system", "You check a customer-care knowledge base. Answer with exactly one word: yes or no."),
            Message("user", f"Knowledge:\n[1] {best.entry.title}: {best.entry.content}\n\nQuestion: {question}\n\n"
                            "Does the knowledge above already answer the question?"),
        ]
        reply = "".join([piece async for piece in self.model.stream(messages, 3)]).strip().lower()
        # Anything but a clear yes means no: a needless new entry is reviewable, phrasings
        # added to the wrong entry make its answers wrong.
        return best if reply.startswith("yes") else None

"""Does the knowledge base already answer a question? Two judges:

- `SimilarityJudge`: a published entry at least this similar covers it. The
  fallback for the embedded model, which is too weak to judge reliably.
- `ModelJudge`: a model (Claude 3 Haiku on Bedrock by default) reads the k=3
  retrieved entries and answers strictly yes or no.
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
    async def covering(self, question: str, published: Sequence[Hit]) -> Hit | None:
        """The entry that already answers `question`, or None."""


class SimilarityJudge:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    async def covering(self, question: str, published: Sequence[Hit]) -> Hit | None:
        return next((hit for hit in published if hit.score >= self.threshold), None)


class ModelJudge:
    def __init__(self, model: ChatModel) -> None:
        self.model = model

    async def covering(self, question: str, published: Sequence[Hit]) -> Hit | None:
        if not published:
            return None
        context = "\n".join(f"[{n}] {hit.entry.title}: {hit.entry.content}" for n, hit in enumerate(published, 1))
        messages = [
            Message("system", "You check a customer-care knowledge base. Answer with exactly one word: yes or no."),
            Message("user", f"Knowledge:\n{context}\n\nQuestion: {question}\n\n"
                            "Does the knowledge above already answer the question?"),
        ]
        reply = "".join([piece async for piece in self.model.stream(messages, 3)]).strip().lower()
        # Anything but a clear yes means not covered: a needless fix is reviewable, a missed one is not.
        return published[0] if reply.startswith("yes") else None

"""The chat-model interface: a streamed completion of a chat."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


class ChatModel(Protocol):
    model_id: str
    # How many answers it generates at once without refusing (RESOURCE_EXHAUSTED,
    # "busy"); callers that fan out, like the trainer, stay within it.
    concurrency: int
    # Whether what it is sent leaves this machine (a cloud or a remote model):
    # callers mask customers' personal data first (mendkit/personal_data.py).
    leaves_the_machine: bool

    def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        """Yields the answer's text as it is generated. Closing the iterator
        early stops the generation."""

"""The brand persona and the grounded prompt built from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.conversations import History
from bot.knowledge import Hit
from mendmodels.chat.base import Message


@dataclass(frozen=True)
class Persona:
    brand: str
    bot_name: str
    tone: str
    # How a customer reaches a person: said whenever the bot does not know.
    handoff: str
    # Replaces the default instructions entirely when set.
    system_prompt: str = ""
    # Said before the first answer of a conversation when set (e.g. "Hi, I'm Finch!").
    greeting: str = ""

    def instructions(self) -> str:
        if self.system_prompt:
            return self.system_prompt
        # Short on purpose: a small local model follows a few plain rules best.
        # The facts travel with the question (see `messages`), where a small
        # model attends to them more reliably than in the system prompt.
        return (
            f"You are {self.bot_name}, the customer-care assistant of {self.brand}. Your tone: {self.tone}. "
            "Answer in at most three short sentences, using only the facts given with the question, "
            "and quote their numbers exactly. If the facts do not answer the question, say you don't know. "
            "Never invent order numbers, prices, dates or policies."
        )

    def opening(self) -> str:
        """What a conversation's first answer starts with: the greeting, if any."""
        return f"{self.greeting} " if self.greeting else ""

    def unsure(self, title: str) -> str:
        """Before an answer that may not be what was asked: from an entry that
        matches the question only loosely (Relevance.sure), or from the entry the
        conversation was about, given to a follow-up nothing covers on its own
        (bot/chat.py, `pointed_at`)."""
        about = f' about "{title}"' if title else ""
        return f"I'm not sure I understood, but this is what I know{about}: "

    def or_ask_a_person(self) -> str:
        """After such an answer (`unsure`): it may not be what the customer asked."""
        return (f" If that doesn't answer your question, you can {self.handoff}, "
                "and a person from our team will help you.")

    def dont_know(self) -> str:
        return (f"I'm sorry, I don't know the answer to that. You can {self.handoff}, "
                "and a person from our team will help you.")


def messages(persona: Persona, hits: Sequence[Hit], history: History, query: str) -> list[Message]:
    facts = "\n".join(f"[{n}] {hit.entry.title}: {hit.entry.content}" for n, hit in enumerate(hits, start=1))
    instructions = persona.instructions()
    if history.earlier:
        # A long conversation's older turns, in a line each: bounded, and enough
        # for "the Japan order" to mean something twenty turns later.
        instructions += f"\n\nEarlier in this conversation the customer asked: {history.summary()}."
    chat = [Message("system", instructions)]
    for turn in history.turns:
        chat += [Message("user", turn.query), Message("assistant", turn.answer)]
    return chat + [Message("user", f"Facts:\n{facts}\n\nQuestion: {query}")]

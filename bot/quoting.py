"""Answering by quoting the knowledge: a Q&A entry's answer as a person wrote or
approved it, or the passage of an article that answers the question. The
honest default with the embedded model, which makes things up when the facts
do not cover a question (issue 13 measured 9 made-up claims in 12 out-of-scope
questions): a quoted answer can only say what the knowledge says. It needs no
model call, so its first words come as soon as retrieval is done."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

import numpy as np

from bot.conversations import History
from bot.exchange import Tally
from bot.knowledge import Hit
from bot.persona import Persona
from mendmodels.embeddings.base import Embedder

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# An article chunk is up to 1,200 characters: its best passage and, when that is
# short, the next one, keep a quoted answer about as long as a written one.
SHORT_PASSAGE_CHARS = 200


def sentences(text: str) -> list[str]:
    """`text` cut into sentences, each with what follows it (a space, or the line
    break that ends a paragraph or list item), so that joined they are the text
    with its layout; streamed one at a time."""
    lines = [line.strip() for line in text.strip().splitlines()]
    found: list[str] = []
    for number, line in enumerate(lines):
        if not line:
            if found:
                found[-1] = found[-1].rstrip(" ") + "\n"
            continue
        pieces = [piece for piece in _SENTENCE_END.split(line) if piece]
        found += [piece + " " for piece in pieces[:-1]]
        found.append(pieces[-1] + ("\n" if number + 1 < len(lines) else ""))
    return found


def passages(text: str) -> list[str]:
    """An article's paragraphs, a list kept with the sentence that introduces it."""
    found: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        block = block.strip()
        if not block:
            continue
        if found and (_LIST_ITEM.match(block) or found[-1].endswith(":")):
            found[-1] = f"{found[-1]}\n{block}"
        else:
            found.append(block)
    return found


class Quoting:
    """Answers with the best hit's own text, sentence by sentence."""

    def __init__(self, embedder: Embedder, persona: Persona) -> None:
        self.embedder = embedder
        self.persona = persona

    async def text(self, query: str, hit: Hit) -> str:
        """What is quoted from `hit`: a Q&A answer whole; for an article, the
        passage closest to the question (and the next, when it is short)."""
        if hit.entry.kind == "qa":
            return hit.entry.content.strip()
        found = passages(hit.entry.content)
        if len(found) <= 1:
            return hit.entry.content.strip()
        # The query's vector is in the embedder's cache from the search.
        vectors = await self.embedder.embed([query, *found])
        best = int(np.argmax(vectors[1:] @ vectors[0]))
        chosen = found[best]
        if len(chosen) < SHORT_PASSAGE_CHARS and best + 1 < len(found):
            chosen = f"{chosen}\n\n{found[best + 1]}"
        return chosen

    async def pieces(self, query: str, hits: Sequence[Hit], history: History,
                     tally: Tally | None = None) -> AsyncIterator[str]:
        if not history.turns and self.persona.opening():
            yield self.persona.opening()
        for sentence in sentences(await self.text(query, hits[0])):
            yield sentence

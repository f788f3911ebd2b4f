"""Does the knowledge say what a generated sentence says? A lexical check, cheap
enough to run on every sentence before it is streamed: every number it states
must be in the sources; most of its content words must come from the sources
or the question; and at least one must come from the sources alone. A model
that echoes the question ("Yes, you can send back a tent you haven't used
within 60 days") is fine when it adds the sources' facts, but an echo and
nothing else ("Yes, you can hire a kayak from us", "No, we don't rent out
tents") is exactly the made-up claim to catch. It cannot catch a claim made of
the sources' own words (a contradiction, a fact moved to another product):
that is why quoting is the default with the embedded model."""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# Words that carry no claim of their own.
_STOPWORDS = frozenset("""
a an the and or but if then so than that this these those there here it its it's they them their theirs we us our
ours you your yours i me my he she his her is are was were be been being am do does did done doing have has had
having can could will would shall should may might must not no nor yes of in on at to for from by with about as
into onto over under up down out off again also just only very too more most some any each every all both either
neither other such own same what which who whom whose when where why how please thanks thank sorry hi hello
let know help get got make made take like want need one ones just sure ok okay way ways thing things
anything else something don't doesn't didn't can't won't isn't aren't haven't hasn't cannot
course happy glad great welcome question questions i'm i've i'll answer
i'd we're we've we'll we'd you're you've you'll you'd they're they've they'll they'd he's she's that's there's
here's what's let's wasn't weren't hadn't wouldn't shouldn't couldn't
""".split())  # noqa: SIM905 - a word list reads best as text
# Share of a sentence's content words that must be in the sources or the question.
SUPPORTED_SHARE = 0.7
STEM = 5  # "returns", "returned", "returning" all count as "retur"


def _stems(words: Iterable[str]) -> set[str]:
    return {word[:STEM] for word in words}


def claims(sentence: str) -> bool:
    """Whether a sentence states something checkable: content words or a number.
    "Of course!" does not, and neither does a bare "Yes!": it says whatever the
    next sentence says, so it stands or falls with that one."""
    return bool(content_words(sentence) or _NUMBER.search(sentence))


def content_words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower().replace("’", "'"))
            if word not in _STOPWORDS and not word.isdigit() and len(word) > 1]


class Support:
    """The sources of one answer, and its question, ready to check its sentences against."""

    def __init__(self, sources: Iterable[str], question: str, brand: str = "") -> None:
        text = " ".join(sources)
        self.numbers = set(_NUMBER.findall(text))
        self.stems = _stems(content_words(text))
        # The customer's words and the brand's name may be repeated, but say nothing the sources say.
        self.asked = _stems(content_words(f"{question} {brand}"))

    def supports(self, sentence: str) -> bool:
        if any(number not in self.numbers for number in _NUMBER.findall(sentence)):
            return False
        stems = [word[:STEM] for word in content_words(sentence)]
        if not stems:
            return True  # "Of course!" claims nothing
        known = sum(1 for stem in stems if stem in self.stems or stem in self.asked)
        from_sources = any(stem in self.stems and stem not in self.asked for stem in stems)
        return from_sources and known / len(stems) >= SUPPORTED_SHARE

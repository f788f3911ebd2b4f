"""Fixes that change an existing entry instead of writing a new one: the
customers' phrasings added to the entry that answers them (misrouted
questions, ADD_PHRASINGS), or the entry's answer revised (wrong or outdated
answers, EDIT_ANSWER). Under review such a fix is a proposal kept in the
trainer's own table: the entry is untouched until a person approves it. So
what to apply, and once applied what to undo (the phrasings it added, the
answer it replaced), is kept with the fix; these helpers compute both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mend.bot.v1 import bot_service_pb2 as bpb
from mendkit.errors import FailedPrecondition
from trainer.fold import MAX_QUESTIONS

NEW_ENTRY = "new_entry"
ADD_PHRASINGS = "add_phrasings"
EDIT_ANSWER = "edit_answer"


@dataclass
class Change:
    """An ADD_PHRASINGS or EDIT_ANSWER fix, as on record."""

    fix_id: str
    kind: str  # ADD_PHRASINGS | EDIT_ANSWER
    entry_id: str  # the entry it changes
    run_id: str  # the run that wrote it
    questions: list[str]  # the disliked phrasings it answers
    answer: str  # EDIT_ANSWER: the revised answer; ADD_PHRASINGS: the entry's (unchanged) answer
    interaction_ids: list[str]
    state: str  # proposed | published | rejected | rolled_back
    added_questions: list[str] = field(default_factory=list)  # ADD_PHRASINGS: what it adds (would add)
    previous_answer: str = ""  # EDIT_ANSWER: the answer it replaces (replaced)
    teacher_model: str = ""
    prompt_version: str = ""
    # The regression gate's verdict (trainer/regressions.py): right answers it
    # would take (regressions.Regression), and the phrasings it withheld.
    regressions: list = field(default_factory=list)
    withheld_questions: list[str] = field(default_factory=list)


class Ledger(Protocol):
    """Where a run keeps its changes (trainer/repository.py; in memory for a bare `run_once`)."""

    async def pending(self, entry_ids: Sequence[str], run_id: str) -> list[Change]:
        """The changes of these entries that new questions may still join:
        proposed ones, and those run `run_id` wrote."""

    async def save(self, changes: Sequence[Change]) -> None:
        """Records changes: a new one whole; one on record gains its questions,
        interactions and added phrasings (its state and answer are the reviewer's)."""

    async def turned_down(self, entry_ids: Sequence[str]) -> dict[str, set[str]]:
        """By entry, the phrasings of its ADD_PHRASINGS changes a reviewer
        rejected or rolled back: not to be proposed again."""


class MemoryLedger:
    def __init__(self) -> None:
        self.changes: dict[str, Change] = {}

    async def pending(self, entry_ids: Sequence[str], run_id: str) -> list[Change]:
        return [c for c in self.changes.values()
                if c.entry_id in entry_ids and (c.state == "proposed" or c.run_id == run_id)]

    async def save(self, changes: Sequence[Change]) -> None:
        for change in changes:
            kept = self.changes.get(change.fix_id)
            if kept is None:
                self.changes[change.fix_id] = change
            else:
                kept.questions, kept.interaction_ids = change.questions, change.interaction_ids
                kept.added_questions = change.added_questions
                kept.regressions, kept.withheld_questions = change.regressions, change.withheld_questions

    async def turned_down(self, entry_ids: Sequence[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for change in self.changes.values():
            if (change.kind == ADD_PHRASINGS and change.entry_id in entry_ids
                    and change.state in ("rejected", "rolled_back")):
                found.setdefault(change.entry_id, set()).update(change.questions)
        return found


def missing(entry: bpb.KnowledgeEntry, questions: Sequence[str], limit: bool = True) -> list[str]:
    """Those of `questions` the entry does not list yet, as many as it has room for (all with `limit` off)."""
    listed = {q.strip().lower() for q in entry.questions}
    found: list[str] = []
    for question in questions:
        key = question.strip().lower()
        if key not in listed:
            listed.add(key)
            found.append(question)
    return found[:max(0, MAX_QUESTIONS - len(entry.questions))] if limit else found


def copy(entry: bpb.KnowledgeEntry) -> bpb.KnowledgeEntry:
    """The entry to write back: as stored, less the fields the server sets."""
    made = bpb.KnowledgeEntry()
    made.CopyFrom(entry)
    made.ClearField("create_time")
    made.ClearField("update_time")
    return made


def with_phrasings(entry: bpb.KnowledgeEntry, added: Sequence[str]) -> bpb.KnowledgeEntry:
    made = copy(entry)
    made.questions.extend(added)
    return made


def without_phrasings(entry: bpb.KnowledgeEntry, added: Sequence[str], fix_id: str) -> bpb.KnowledgeEntry:
    """The entry less the phrasings a fix added (and no others)."""
    made = copy(entry)
    kept = [q for q in entry.questions if q not in set(added)]
    if not kept:
        raise FailedPrecondition(f"entry {entry.entry_id!r} lists only the phrasings fix {fix_id!r} added; removing "
                                 "them would leave it without a question: delete or edit the entry instead")
    del made.questions[:]
    made.questions.extend(kept)
    return made


def with_answer(entry: bpb.KnowledgeEntry, answer: str) -> bpb.KnowledgeEntry:
    made = copy(entry)
    made.content = answer
    return made

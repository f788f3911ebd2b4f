"""How one page of disliked questions becomes fixes: which questions join a
fix, which are left for the judge, which lead a new fix. Decisions only, on the
page's batch search; trainer/loop.py does the calls.

Per question, in the page's order:
1. A self-healing entry lists the question's interaction in its provenance (or
   carries the id derived from it): a run that died before marking it wrote that
   fix. The fix is adopted and the question stays in it, so a re-run neither
   writes a second fix nor loses the first.
2. A fix of this run (from an earlier page), or a fix of an earlier run still
   waiting for review (a PROPOSED self-healing entry), is among its hits, at
   least `threshold` similar: it joins the best one with room. So new dislikes
   on a topic grow its pending fix instead of starting a second one. Not a
   question the triage settles without a new entry (a complaint about the
   entry the bot answered from: an edit of it; noise).
3. (loop.py) Triage: no action, wrong (an edit), misrouted (the judge says a
   published entry answers it), or a gap.
4. An earlier question of the page, at least `threshold` similar, is in a fix
   with room: it joins that fix. The page was searched before its new fixes
   were written, so the batch search's `peers` stand in for the index here.
5. Otherwise it leads a new fix, which the teacher answers.
6. (loop.py) A new group whose questions' nearest liked questions were answered
   from one entry is misrouted to it (trainer/evidence.py): it leaves the fold
   (`release`) for an ADD_PHRASINGS change of that entry.
Step 3 runs before step 4, so every question that would start or join a new fix
of its page is judged first: a covered question never joins a fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from trainer.judge import Hit

# The contract's limits on one entry (KnowledgeEntry.questions, Provenance.interaction_ids).
# A fix that reaches one takes no more questions: the next near-duplicate leads a new fix.
MAX_QUESTIONS = 100
MAX_INTERACTIONS = 1000


def entry_id(first_interaction_id: str) -> str:
    """A fix's id, derived from its first interaction: a re-run rewrites the same entry."""
    return "fix-" + hashlib.sha256(first_interaction_id.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Nearby:
    """A published Q&A entry near a new fix's questions, shown to its reviewer
    (Fix.nearby_entries): the topic may be covered already."""

    entry_id: str
    title: str
    score: float  # the entry's best similarity to any of the fix's questions


@dataclass
class Fix:
    """A fix of this run, as last written to the index."""

    entry: bpb.KnowledgeEntry
    interaction_ids: list[str] = field(default_factory=list)
    # The regression gate's verdict on what this page wrote (trainer/regressions.py):
    # right answers it would take (regressions.Regression) and phrasings it withheld.
    regressions: list = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    nearby: list[Nearby] = field(default_factory=list)


def nearby(found: Sequence[Sequence[Hit]], most: int) -> list[Nearby]:
    """The `most` entries of the searches `found` (one per question of a fix)
    with the best score for any of them, best first."""
    best: dict[str, Nearby] = {}
    for hits in found:
        for hit in hits:
            kept = best.get(hit.entry.entry_id)
            if kept is None or hit.score > kept.score:
                best[hit.entry.entry_id] = Nearby(hit.entry.entry_id, hit.entry.title, round(hit.score, 4))
    return sorted(best.values(), key=lambda n: (-n.score, n.entry_id))[:most]


@dataclass(eq=False)  # compared and hashed by identity
class Group:
    """The questions of one page that end in one fix: an existing fix of this run,
    or (`fix` None) a new one that its first member leads."""

    fix: Fix | None
    members: list[int] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    interaction_ids: list[str] = field(default_factory=list)

    @classmethod
    def extending(cls, fix: Fix) -> Group:
        return cls(fix, [], list(fix.entry.questions), list(fix.interaction_ids))

    def takes(self, item: ipb.Interaction) -> bool:
        return ((item.interaction_id in self.interaction_ids or len(self.interaction_ids) < MAX_INTERACTIONS)
                and (item.user_query in self.questions or len(self.questions) < MAX_QUESTIONS))

    def add(self, index: int, item: ipb.Interaction) -> None:
        self.members.append(index)
        if item.user_query not in self.questions:
            self.questions.append(item.user_query)
        if item.interaction_id not in self.interaction_ids:
            self.interaction_ids.append(item.interaction_id)

    @property
    def changed(self) -> bool:
        return (self.fix is None or self.questions != list(self.fix.entry.questions)
                or self.interaction_ids != self.fix.interaction_ids)


class Fold:
    def __init__(self, items: Sequence[ipb.Interaction], hits: Sequence[Sequence[Hit]], fixes: dict[str, Fix],
                 threshold: float, source: str) -> None:
        self.items = items
        self.hits = hits
        self.fixes = fixes  # this run's fixes, by entry id; adopted ones are added
        self.threshold = threshold
        self.source = source
        self.groups: list[Group] = []  # those with members, in order of their first
        self.group_of: dict[int, Group] = {}
        self._extending: dict[str, Group] = {}
        self.peers: Sequence[Sequence[tuple[int, float]]] = [[] for _ in items]

    def _join(self, index: int, group: Group) -> None:
        if not group.members:
            self.groups.append(group)
        group.add(index, self.items[index])
        self.group_of[index] = group

    def _extend(self, fix: Fix) -> Group:
        """The page's group for an existing fix (one per fix, however many questions join it)."""
        if fix.entry.entry_id not in self._extending:
            self._extending[fix.entry.entry_id] = Group.extending(fix)
        return self._extending[fix.entry.entry_id]

    def _adopt(self, entry: bpb.KnowledgeEntry) -> Fix:
        """A self-healing entry in the index as a fix of this run (once)."""
        if entry.entry_id not in self.fixes:
            adopted = bpb.KnowledgeEntry()
            adopted.CopyFrom(entry)
            self.fixes[entry.entry_id] = Fix(adopted, list(entry.provenance.interaction_ids))
        return self.fixes[entry.entry_id]

    def _adopted(self, item: ipb.Interaction, found: Sequence[Hit]) -> Fix | None:
        for hit in found:
            entry = hit.entry
            if entry.source == self.source and (entry.entry_id == entry_id(item.interaction_id)
                                                or item.interaction_id in entry.provenance.interaction_ids):
                return self._adopt(entry)
        return None

    def _pending(self, hit: Hit) -> bool:
        """A fix of an earlier run that still waits for review, close enough to join."""
        return (hit.entry.source == self.source and hit.entry.status == bpb.ENTRY_STATUS_PROPOSED
                and hit.score >= self.threshold)

    def join_fixes(self, open_question: Callable[[int], bool] = lambda index: True) -> list[int]:
        """Steps 1 and 2. Returns the questions left for the judge. Only an
        `open_question` (one the triage leaves open: not a complaint about the
        entry the bot answered from, nor noise) joins a fix by similarity: one
        about its own entry's answer asks for an edit of that entry, however close
        a new-entry fix on the topic is."""
        left = []
        for index, (item, found) in enumerate(zip(self.items, self.hits, strict=True)):
            adopted = self._adopted(item, found)
            if adopted is not None:
                self._join(index, self._extend(adopted))  # already in it: no room needed
                continue
            for hit in found:
                if hit.entry.entry_id not in self.fixes and self._pending(hit):
                    self._adopt(hit.entry)
            close = (self._extend(self.fixes[hit.entry.entry_id]) for hit in found
                     if hit.entry.entry_id in self.fixes and hit.score >= self.threshold)
            group = next((g for g in close if g.takes(item)), None) if open_question(index) else None
            if group is None:
                left.append(index)
            else:
                self._join(index, group)
        return left

    def fold(self, uncovered: Sequence[int], peers: Sequence[Sequence[tuple[int, float]]]) -> None:
        """Steps 4 and 5 for the questions the judge did not find covered."""
        self.peers = peers
        for index in uncovered:
            close = (self.group_of[peer] for peer, score in peers[index]
                     if score >= self.threshold and peer in self.group_of)
            group = next((g for g in close if g.takes(self.items[index])), None)
            self._join(index, group or Group(None))

    def phrasings(self, group: Group, most: int) -> list[str]:
        """The questions a new fix lists as its phrasings: at most `most`, those
        with the most near-duplicates among the group's other questions (the
        page's peers), in the group's order. The topic's core, not its outliers:
        every phrasing makes the fix a closer match for any question, another
        topic's included, while one phrasing per seeded entry stands against it."""
        if len(group.questions) <= most:
            return list(group.questions)
        members = set(group.members)
        degree = dict.fromkeys(group.members, 0)
        for index in group.members:
            for peer, _ in self.peers[index]:
                if peer in members:
                    degree[index] += 1
                    degree[peer] += 1
        order = {index: rank for rank, index in enumerate(group.members)}
        kept = sorted(sorted(group.members, key=lambda i: (-degree[i], order[i]))[:most], key=order.__getitem__)
        chosen = list(dict.fromkeys(self.items[index].user_query for index in kept))
        return chosen or list(group.questions[:most])

    def cohesion(self, group: Group) -> float:
        """The mean, over the group's questions, of each one's best similarity to
        another of the group (the page's peers); 1 for a group of one."""
        members = set(group.members)
        best = dict.fromkeys(group.members, 0.0)
        for index in group.members:
            for peer, score in self.peers[index]:
                if peer in members:
                    best[index] = max(best[index], score)
                    best[peer] = max(best[peer], score)
        return sum(best.values()) / len(best) if len(best) > 1 else 1.0

    def release(self, group: Group, keep: Sequence[int]) -> None:
        """Takes a new group out of the fold (its questions get another kind of
        fix); those of its members in `keep` form a new group of their own."""
        assert group.fix is None
        self.groups.remove(group)
        for index in group.members:
            del self.group_of[index]
        if keep:
            rest = Group(None)
            for index in keep:
                self._join(index, rest)

    def published(self, index: int) -> list[Hit]:
        """What the judge and the teacher see: published entries that are not this run's fixes."""
        return [hit for hit in self.hits[index]
                if hit.entry.entry_id not in self.fixes and hit.entry.status == bpb.ENTRY_STATUS_PUBLISHED]

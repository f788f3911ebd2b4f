"""The healing benchmark's ground truth and scoring: what each topic holds, what
the simulated customer thinks of a reply, the triage class of each dislike, and
the report's numbers. Pure functions over what the benchmark saw through the
RPCs; nothing here calls a service."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as tpb

CLASSES = ("gap", "misrouted", "wrong", "no_action")
# The trainer's action on a dislike that is right for each class.
RIGHT_ACTION = {"gap": "new_entry", "misrouted": "add_phrasings (right entry)",
                "wrong": "edit_answer (right entry)", "no_action": "no fix"}


def words(intent: str) -> str:
    return intent.replace("_", " ")


def reference(intent: str) -> str:
    """The right answer of a topic: what a reviewer publishes for it."""
    return f"Answer for {intent}: this is how {words(intent)} works here, per the current rule {intent}/2026."


def stale(intent: str) -> str:
    """The wrong (outdated) answer a few seeded topics start with."""
    return f"Answer for {intent}: this is how {words(intent)} works here, per the old rule {intent}/2019."


def correction(intent: str) -> str:
    """The comment with which the customer says a stale answer is wrong, stating the right fact."""
    return f"This is out of date. The right answer: {reference(intent)}"


@dataclass(frozen=True)
class Topic:
    """One intent of the dataset and its part in the run."""

    intent: str
    seeded: bool  # has a Q&A entry before the run
    wrong: bool  # ... whose answer is stale
    phrasing: str  # the seeded entry's one phrasing (a train question)
    seen: tuple[str, ...]  # train questions asked before the run (their dislikes feed it)
    unseen: tuple[str, ...]  # test questions asked before and after the run

    @property
    def entry_id(self) -> str:
        return "seed-" + re.sub(r"[^A-Za-z0-9_.:-]", "-", self.intent) if self.seeded else ""


@dataclass
class Reply:
    """One Chat answer as the customer saw it: the entry it came from (the first
    source; empty for "don't know") and that entry's text."""

    intent: str
    question: str
    interaction_id: str = ""
    entry_id: str = ""
    source: str = ""
    snippet: str = ""
    answer: str = ""
    error: str = ""

    def right(self) -> bool:
        """Answered from an entry carrying the topic's reference answer."""
        return not self.error and self.snippet.strip() == reference(self.intent)


@dataclass
class Vote:
    """The simulated customer's verdict on a seen reply."""

    reply: Reply
    liked: bool
    truth: str  # the dislike's triage class (CLASSES); "" for a like
    reason: ipb.FeedbackReason = ipb.FEEDBACK_REASON_UNSPECIFIED
    comment: str = ""
    error: str = ""  # SubmitFeedback failed


def truth(topic: Topic, reply: Reply) -> str:
    """The triage class of the customer's reaction to a seen reply: "" when
    it is the right entry with the right answer (liked), else why it is disliked."""
    if topic.seeded and reply.entry_id == topic.entry_id:
        return "wrong" if topic.wrong else ""
    return "misrouted" if topic.seeded else "gap"


def fix_kind(fix: tpb.Fix) -> str:
    """new_entry | add_phrasings | edit_answer; a trainer without fix kinds writes new entries only."""
    field = fix.DESCRIPTOR.fields_by_name.get("kind")
    if field is None or field.enum_type is None:
        return "new_entry"
    value = next((v for f, v in fix.ListFields() if f.name == "kind"), 0)  # unset: 0
    name = field.enum_type.values_by_number[value].name.removeprefix("FIX_KIND_").lower()
    return "new_entry" if name == "unspecified" else name


def majority(intents: Iterable[str]) -> str:
    counts = Counter(intents)
    return min(counts, key=lambda intent: (-counts[intent], intent)) if counts else ""


def fix_intent(fix: tpb.Fix, intent_of: Mapping[str, str], entry_intent: Mapping[str, str]) -> str:
    """The topic a fix is about: its target entry's for an edit or added
    phrasings of a seeded entry, else the majority of its interactions' topics."""
    if fix_kind(fix) != "new_entry" and fix.entry_id in entry_intent:
        return entry_intent[fix.entry_id]
    return majority(intent_of[i] for i in fix.interaction_ids if i in intent_of)


def action(topic: Topic, fix: tpb.Fix | None, outcome: int) -> str:
    """What the trainer did with one disliked interaction."""
    if fix is not None:
        kind = fix_kind(fix)
        if kind == "new_entry":
            return kind
        return f"{kind} ({'right' if topic.seeded and fix.entry_id == topic.entry_id else 'other'} entry)"
    if outcome == ipb.TRAINING_OUTCOME_FAILED:
        return "failed"
    if outcome == ipb.TRAINING_OUTCOME_UNSPECIFIED:
        return "unprocessed"
    return "no fix"  # covered, or any outcome that left the knowledge base as it was


def pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 3) if whole else None


def triage(topics: Mapping[str, Topic], votes: Sequence[Vote], fixes: Sequence[tpb.Fix],
           marks: Mapping[str, tuple[int, str]]) -> tuple[dict, dict]:
    """Per class: the trainer's actions on its dislikes and how many were right;
    and the judge's precision and recall on "an existing entry answers it"
    (misrouted, positive, against gap, negative). `marks`: interaction id ->
    (training outcome, entry id) as the run left them."""
    fix_of = {i: fix for fix in fixes for i in fix.interaction_ids}
    intent_of = {v.reply.interaction_id: v.reply.intent for v in votes}
    table: dict[str, dict] = {}
    tp = fp = fn = strict_tp = 0
    for name in CLASSES:
        mine = [v for v in votes if not v.liked and not v.error and v.truth == name]
        done = {v.reply.interaction_id: action(topics[v.reply.intent], fix_of.get(v.reply.interaction_id),
                                               marks.get(v.reply.interaction_id, (0, ""))[0]) for v in mine}
        actions = Counter(done.values())
        right = actions[RIGHT_ACTION[name]]
        entry: dict = {"interactions": len(mine), "actions": dict(actions.most_common()), "right": right,
                       "right_pct": pct(right, len(mine))}
        if name == "gap":  # in a new entry, and one about this very topic
            entry["in_a_new_entry_of_its_topic"] = sum(
                1 for v in mine if done[v.reply.interaction_id] == "new_entry"
                and majority(intent_of[i] for i in fix_of[v.reply.interaction_id].interaction_ids
                             if i in intent_of) == v.reply.intent)
        table[name] = entry
        if name not in ("gap", "misrouted"):
            continue
        for v in mine:
            what = done[v.reply.interaction_id]
            if what in ("failed", "unprocessed"):
                continue
            said_existing = what != "new_entry"
            if name == "gap":
                fp += said_existing
                continue
            tp += said_existing
            fn += not said_existing
            marked_entry = marks.get(v.reply.interaction_id, (0, ""))[1]
            strict_tp += said_existing and (what.endswith("(right entry)") or (
                what == "no fix" and marked_entry == topics[v.reply.intent].entry_id))
    judge = {"positive": "misrouted (an existing entry answers it)", "negative": "gap",
             "true_positive": tp, "false_positive": fp, "false_negative": fn,
             "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
             "right_entry": {"true_positive": strict_tp, "precision": ratio(strict_tp, tp + fp),
                             "recall": ratio(strict_tp, tp + fn)}}
    return table, judge


def spread(values: Sequence[int]) -> dict:
    return {"mean": round(statistics.mean(values), 2) if values else None, "max": max(values) if values else None}

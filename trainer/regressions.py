"""The regression gate: a fix must not take answers away from entries that were
right. What is right comes from the customers and the knowledge itself, the
regression set:
- each liked question, answered right by the entry it was answered from (its
  first source; trainer/evidence.py reads them);
- each published Q&A entry's own phrasings, answered right by that entry
  (approved fixes' phrasings among them).

Before a run writes a fix, the set is replayed against the index as it would
be with the fix (the bot's ReplayKnowledge: the same search and relevance rule
as the chat, nothing written). A question of the set that the bot answers
right now and that a phrasing of the fix would take (it scores at least as
high as the question's own entry) is a regression. The cheap remedy comes
first: such phrasings are withheld from the fix, which keeps the others. A fix
that would still take some (a new entry whose every phrasing takes one) keeps
its phrasings and the list: it is not published under `auto`, and approving
it needs an explicit override (trainer/runs.py replays it again then).

The same replay without changes is the evaluation on feedback: how much of the
set the published knowledge answers right (EvaluateKnowledge; each run records
it before and after its fixes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from trainer import evidence

# Questions per ReplayKnowledge call (the contract's maximum), and changes per call.
REPLAY_QUERIES = 5_000
REPLAY_CHANGES = 500
# The regression set's size: liked questions first, then entries' phrasings. Well
# inside the bot's memory of embeddings (20,000, mendmodels/embeddings/cache.py),
# which also holds chat's and the page's questions: a set as large as that memory
# would be embedded again on every replay.
MAX_CASES = 12_000
# The most overtakes ReplayKnowledge lists per question (its contract).
OVERTAKES_LISTED = 20
# Wrong questions an evaluation lists, and regressions a fix records.
MAX_LISTED = 20
REPLAY_TIMEOUT_S = 300
ENTRIES_PAGE = 1_000


@dataclass(frozen=True)
class Case:
    """A question of the regression set and the entry that answers it right."""

    question: str
    entry_id: str
    liked: bool


@dataclass(frozen=True)
class Regression:
    """A question right now that a fix would take (or an evaluation found wrong)."""

    question: str
    entry_id: str
    entry_score: float
    moved_to_entry_id: str
    moved_to_score: float


@dataclass(frozen=True)
class Evaluation:
    questions: int
    liked: int
    right: int
    wrong: list[Regression] = field(default_factory=list)
    evaluate_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def accuracy(self) -> float:
        return self.right / self.questions if self.questions else 0.0

    def record(self) -> dict:
        """As the runs table keeps it (JSON)."""
        return {**asdict(self), "evaluate_time": self.evaluate_time.isoformat()}

    @classmethod
    def from_record(cls, record: dict) -> Evaluation:
        return cls(questions=record["questions"], liked=record["liked"], right=record["right"],
                   wrong=[Regression(**r) for r in record["wrong"]],
                   evaluate_time=datetime.fromisoformat(record["evaluate_time"]))


@dataclass(frozen=True)
class Verdict:
    """The gate on one fix: the phrasings to withhold from it, and the right
    answers it would still take with the rest."""

    withheld: list[str]
    regressions: list[Regression]


async def published_entries(knowledge: bpb_grpc.KnowledgeServiceAsyncStub) -> dict[str, bpb.KnowledgeEntry]:
    """Every published entry (Q&A entries and article chunks), by id."""
    entries: dict[str, bpb.KnowledgeEntry] = {}
    token = ""
    while True:
        page = await knowledge.ListEntries(bpb.ListEntriesRequest(
            status=bpb.ENTRY_STATUS_PUBLISHED, page_size=ENTRIES_PAGE, page_token=token))
        entries.update((entry.entry_id, entry) for entry in page.entries)
        token = page.next_page_token
        if not token:
            return entries


async def regression_set(interactions: ipb_grpc.InteractionsServiceAsyncStub,
                         knowledge: bpb_grpc.KnowledgeServiceAsyncStub,
                         liked: Sequence[evidence.Liked] | None = None,
                         entries: dict[str, bpb.KnowledgeEntry] | None = None) -> list[Case]:
    """The liked questions and every published Q&A entry's phrasings (each read when not given)."""
    if liked is None:
        liked = await evidence.liked(interactions)
    if entries is None:
        entries = await published_entries(knowledge)
    cases: dict[str, Case] = {}
    for like in liked:
        if like.entry_id in entries:  # an entry withdrawn since can answer nothing right
            cases.setdefault(like.question, Case(like.question, like.entry_id, True))
    for entry in entries.values():
        for question in entry.questions:  # a Q&A entry's phrasings (an article chunk has none)
            cases.setdefault(question, Case(question, entry.entry_id, False))
    return list(cases.values())[:MAX_CASES]


async def replay(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, cases: Sequence[Case],
                 changes: Sequence[bpb.KnowledgeEntry] = (), each_alone: bool = False) -> list[bpb.ReplayResult]:
    """Each case's ReplayResult against `changes` (entries as they would be
    published; `each_alone`: each as if it were the only one)."""
    results: list[bpb.ReplayResult] = [bpb.ReplayResult() for _ in cases]
    if not cases:
        return results
    batches = [list(changes[n:n + REPLAY_CHANGES]) for n in range(0, len(changes), REPLAY_CHANGES)] or [[]]
    for first in range(0, len(cases), REPLAY_QUERIES):
        chunk = cases[first:first + REPLAY_QUERIES]
        for number, batch in enumerate(batches):
            response = await knowledge.ReplayKnowledge(bpb.ReplayKnowledgeRequest(
                queries=[case.question for case in chunk], changes=batch, each_alone=each_alone),
                timeout=REPLAY_TIMEOUT_S)
            for row, result in enumerate(response.results):
                if number == 0:
                    results[first + row].CopyFrom(result)
                else:  # a later batch of changes: its overtakes join the first's
                    results[first + row].overtaken_by.extend(result.overtaken_by)
    return results


def right_now(case: Case, result: bpb.ReplayResult) -> bool:
    return result.answered and result.entry_id == case.entry_id


async def evaluate(knowledge: bpb_grpc.KnowledgeServiceAsyncStub, cases: Sequence[Case]) -> Evaluation:
    return evaluation_of(cases, await replay(knowledge, cases))


def evaluation_of(cases: Sequence[Case], results: Sequence[bpb.ReplayResult]) -> Evaluation:
    wrong = [Regression(case.question, case.entry_id, 0.0, result.entry_id if result.answered else "",
                        result.score)
             for case, result in zip(cases, results, strict=True) if not right_now(case, result)]
    return Evaluation(questions=len(cases), liked=sum(case.liked for case in cases),
                      right=len(cases) - len(wrong), wrong=wrong[:MAX_LISTED])


def gate(cases: Sequence[Case], results: Sequence[bpb.ReplayResult], changed: Sequence[bpb.KnowledgeEntry],
         adding: dict[str, set[str]]) -> dict[str, Verdict]:
    """The verdict on each changed entry (by id) that would take a right
    answer. `adding[entry_id]` are the phrasings the fix adds to it (all of a
    new entry's): only those can be withheld; withholding never leaves an entry
    without a phrasing."""
    keys = {entry.entry_id: list(entry.questions) for entry in changed}
    taking: dict[str, dict[str, list[tuple[Case, bpb.ReplayResult, bpb.ReplayOvertake]]]] = {}
    for case, result in zip(cases, results, strict=True):
        if not right_now(case, result):
            continue
        # An overtake by the question's own entry is a phrasing the fix adds to it
        # that weakens it (bot/replay.py): withheld like any other.
        for overtake in result.overtaken_by:
            if overtake.entry_id in keys:
                taking.setdefault(overtake.entry_id, {}).setdefault(overtake.question, []).append(
                    (case, result, overtake))
    verdicts = {}
    for entry_id, by_key in taking.items():
        withheld = [key for key in keys[entry_id] if key in by_key and key in adding.get(entry_id, set())]
        if len(withheld) == len(keys[entry_id]):
            withheld = []  # an entry needs a phrasing: keep them, and block it
        left = [hit for key, hits in by_key.items() if key not in withheld for hit in hits]
        # A question whose list of overtakes is full may be taken by keys the list
        # left out: withholding the listed ones does not clear it.
        left += [hit for key, hits in by_key.items() if key in withheld
                 for hit in hits if len(hit[1].overtaken_by) >= OVERTAKES_LISTED]
        best: dict[str, Regression] = {}
        for case, result, overtake in left:
            known = best.get(case.question)
            if known is None or overtake.score > known.moved_to_score:
                best[case.question] = Regression(case.question, case.entry_id, result.score, entry_id, overtake.score)
        regressions = sorted(best.values(), key=lambda r: (r.entry_score - r.moved_to_score, r.question))
        verdicts[entry_id] = Verdict(withheld, regressions[:MAX_LISTED])
    return verdicts

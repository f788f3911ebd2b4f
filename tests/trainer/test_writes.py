"""A page's write to an entry that exists keeps what others changed since the
page read it (trainer/writes.py): the merge of the run's change into the entry
as stored, and the conditional update that retries when another write comes
between its read and its write. Against the bot's real KnowledgeService."""

from __future__ import annotations

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from tests.support import RETURNS, expect_status, upsert
from trainer import writes


def entry(questions: list[str], content: str = "Returns are free.", ids: tuple[str, ...] = (),
          status: int = bpb.ENTRY_STATUS_PUBLISHED) -> bpb.KnowledgeEntry:
    made = bpb.KnowledgeEntry(entry_id="faq-returns", kind=bpb.ENTRY_KIND_QA, source="test-kb", content=content,
                              questions=questions, status=status)
    made.provenance.interaction_ids.extend(ids)
    return made


def test_the_runs_change_applies_to_the_entry_as_stored():
    base = entry(["a", "b", "c"], ids=("i1",), status=bpb.ENTRY_STATUS_PROPOSED)
    ours = entry(["a", "c", "d"], ids=("i1", "i2"), status=bpb.ENTRY_STATUS_PUBLISHED)  # -b, +d
    stored = entry(["a", "b", "c", "x"], content="Edited by a reviewer.", ids=("i1", "i9"),
                   status=bpb.ENTRY_STATUS_PROPOSED)
    result = writes.merged(base, ours, stored)
    assert list(result.questions) == ["a", "c", "x", "d"]  # theirs kept, ours added and removed
    assert result.content == "Edited by a reviewer."  # the run did not change the answer
    assert result.status == bpb.ENTRY_STATUS_PUBLISHED  # the run did change the status
    assert list(result.provenance.interaction_ids) == ["i1", "i9", "i2"]
    # A phrasing both added appears once, whatever its case and spaces.
    result = writes.merged(base, entry(["a", "b", "c", " X ", "y"]), stored)
    assert list(result.questions) == ["a", "b", "c", "x", "y"]
    # Nothing changed by anyone: the entry as stored.
    assert writes.merged(base, base, stored) == stored


def test_a_field_both_changed_differently_is_a_conflict_not_an_overwrite():
    base = entry(["a"], content="Returns are free.")
    stored = entry(["a"], content="Edited by a reviewer.")
    with pytest.raises(writes.Conflict, match="content of faq-returns"):
        writes.merged(base, entry(["a"], content="The run's answer."), stored)
    # Changed the same way by both: no conflict.
    assert writes.merged(base, entry(["a"], content="Edited by a reviewer."), stored).content == "Edited by a reviewer."
    with pytest.raises(writes.Conflict, match="status"):
        writes.merged(entry(["a"], status=bpb.ENTRY_STATUS_PROPOSED), entry(["a"], status=bpb.ENTRY_STATUS_PUBLISHED),
                      entry(["a"], status=bpb.ENTRY_STATUS_ARCHIVED))


def test_what_the_run_adds_takes_only_the_room_the_entry_has_left():
    """A reviewer approved phrasings into the entry meanwhile: the contract's
    100 phrasings and 1,000 interactions still hold."""
    base = entry([f"q{n}" for n in range(90)], ids=tuple(f"i{n}" for n in range(995)))
    ours = entry([*base.questions, *(f"new{n}" for n in range(5))], ids=(*base.provenance.interaction_ids,
                                                                        *(f"j{n}" for n in range(10))))
    stored = entry([*base.questions, *(f"theirs{n}" for n in range(8))],
                   ids=(*base.provenance.interaction_ids, "k1", "k2"))
    result = writes.merged(base, ours, stored)
    assert list(result.questions)[-10:] == [*(f"theirs{n}" for n in range(8)), "new0", "new1"]
    assert len(result.questions) == 100 and len(result.provenance.interaction_ids) == 1000
    assert list(result.provenance.interaction_ids)[-3:] == ["j0", "j1", "j2"]


async def returns_and_a_phrasing_more(knowledge) -> tuple[bpb.KnowledgeEntry, bpb.KnowledgeEntry]:
    """The returns entry as stored, and as a run that adds a phrasing would have it."""
    base = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    ours = bpb.KnowledgeEntry()
    ours.CopyFrom(base)
    ours.questions.append("Can I send my boots back?")
    return base, ours


class Interleaved:
    """The bot's KnowledgeService, where another writer adds a phrasing between
    the run's read and its write, `times` times."""

    def __init__(self, knowledge, times: int) -> None:
        self.knowledge, self.times, self.updates = knowledge, times, 0

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def UpdateEntry(self, request, **options):
        self.updates += 1
        if self.times:
            self.times -= 1
            stored = (await self.knowledge.GetEntry(bpb.GetEntryRequest(entry_id=request.entry.entry_id))).entry
            stored.questions.append(f"a reviewer's phrasing {self.times}")
            await self.knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=stored, update_mask={"paths": ["questions"]}))
        return await self.knowledge.UpdateEntry(request, **options)


@pytest.mark.parametrize("between", [0, 1, writes.UPDATE_ATTEMPTS - 1])
async def test_an_update_is_read_and_merged_again_when_another_write_comes_between(knowledge, between):
    await upsert(knowledge, RETURNS)
    base, ours = await returns_and_a_phrasing_more(knowledge)
    racing = Interleaved(knowledge, between)
    failures: list[str] = []
    failed, stored = await writes.update(racing, [("key", base, ours)], failures)
    assert (failed, failures, racing.updates) == (set(), [], between + 1)
    theirs = [f"a reviewer's phrasing {n}" for n in reversed(range(between))]
    assert list(stored["key"].questions) == [*RETURNS.questions, *theirs, "Can I send my boots back?"]
    assert (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry == stored["key"]


async def test_an_update_that_keeps_losing_the_race_or_whose_entry_is_gone_fails_only_its_own_key(knowledge):
    await upsert(knowledge, RETURNS)
    base, ours = await returns_and_a_phrasing_more(knowledge)
    gone = bpb.KnowledgeEntry(entry_id="faq-gone", kind=bpb.ENTRY_KIND_QA, content="x", questions=["y"])
    racing = Interleaved(knowledge, writes.UPDATE_ATTEMPTS)
    failures: list[str] = []
    failed, stored = await writes.update(racing, [("lost", base, ours), ("gone", gone, gone)], failures)
    assert failed == {"lost", "gone"} and stored == {} and len(failures) == 2
    assert "FAILED_PRECONDITION" in failures[0] and "NOT_FOUND" in failures[1]
    # The other writer's phrasings stand; the run's is not there.
    now = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert "Can I send my boots back?" not in now.questions and len(now.questions) == len(RETURNS.questions) + 3
    await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-gone")), grpc.StatusCode.NOT_FOUND)


class Refusing:
    """The bot's KnowledgeService when a service it depends on refuses the write:
    FAILED_PRECONDITION, as for a newer revision, but the entry has not moved."""

    def __init__(self, knowledge) -> None:
        self.knowledge, self.updates = knowledge, 0

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def UpdateEntry(self, request, **options):
        self.updates += 1
        raise grpc.aio.AioRpcError(grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details="the vector store refused the write")


async def test_a_refusal_that_is_no_race_is_not_tried_again(knowledge):
    await upsert(knowledge, RETURNS)
    base, ours = await returns_and_a_phrasing_more(knowledge)
    refusing = Refusing(knowledge)
    failures: list[str] = []
    failed, _ = await writes.update(refusing, [("key", base, ours)], failures)
    assert failed == {"key"} and refusing.updates == 1 and "the vector store refused" in failures[0]


async def test_a_runs_fix_deleted_meanwhile_is_written_anew(knowledge):
    """A fix's record still holds it (and its review and rollback need it), so
    the page writes the fix as it has it; an existing entry the run only
    changes is not brought back (test above)."""
    fix = bpb.KnowledgeEntry(entry_id="fix-tents", kind=bpb.ENTRY_KIND_QA, source="self-healing-feedback",
                             content="We don't rent out tents.", questions=["Do you rent out tents?"],
                             status=bpb.ENTRY_STATUS_PUBLISHED)
    grown = bpb.KnowledgeEntry()
    grown.CopyFrom(fix)
    grown.questions.append("Can I hire a tent?")
    failures: list[str] = []
    failed, stored = await writes.update(knowledge, [("tents", fix, grown)], failures, recreate=True)
    assert (failed, failures) == (set(), [])
    assert list(stored["tents"].questions) == ["Do you rent out tents?", "Can I hire a tent?"]
    now = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="fix-tents"))).entry
    assert list(now.questions) == list(grown.questions) and now.status == bpb.ENTRY_STATUS_PUBLISHED


def test_an_entry_whose_interactions_are_full_takes_no_more():
    """At the contract's 1,000 interaction ids (a reviewer's approvals filled it), the run adds none."""
    full = tuple(f"i{n}" for n in range(1000))
    base = entry(["a"], ids=full[:-5])
    ours = entry(["a", "b"], ids=(*base.provenance.interaction_ids, "mine"))
    result = writes.merged(base, ours, entry(["a"], ids=full))
    assert list(result.questions) == ["a", "b"] and list(result.provenance.interaction_ids) == list(full)


class Failing:
    """The bot's KnowledgeService when GetEntry fails with a long message."""

    def __init__(self, knowledge, error: Exception) -> None:
        self.knowledge, self.error = knowledge, error

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def GetEntry(self, request, **options):
        raise self.error


async def test_a_failed_write_says_what_kind_of_error_it_was_in_at_most_300_characters(knowledge, caplog):
    """What the run's error message and log show for each failed write."""
    await upsert(knowledge, RETURNS)
    base, ours = await returns_and_a_phrasing_more(knowledge)
    failures: list[str] = []
    failed, _ = await writes.update(Failing(knowledge, RuntimeError("the index is gone " * 40)), [("key", base, ours)],
                                    failures)
    assert failed == {"key"} and failures == [("RuntimeError: " + "the index is gone " * 40)[:300]]
    (line,) = [r for r in caplog.records if r.name == "trainer"]
    assert (line.getMessage(), line.error, line.entry_id) == ("could not write a fix", failures[0], "faq-returns")
    # Both changed the answer: the failure names the conflict.
    stored = bpb.KnowledgeEntry()
    stored.CopyFrom(base)
    stored.content = "Edited by a reviewer."
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(entry=stored, update_mask={"paths": ["content"]}))
    ours.content = "The run's answer."
    failures.clear()
    await writes.update(knowledge, [("key", base, ours)], failures)
    assert failures == ["Conflict: content of faq-returns was changed by another writer since the run read it"]


def sized(entry_id: str, size: int) -> bpb.KnowledgeEntry:
    """A fix whose message is exactly `size` bytes."""
    made = bpb.KnowledgeEntry(entry_id=entry_id, kind=bpb.ENTRY_KIND_QA, content="")
    made.content = "x" * (size - made.ByteSize() - 4)
    while made.ByteSize() < size:
        made.content += "x"
    assert made.ByteSize() == size
    return made


def test_a_batch_holds_as_many_bytes_as_the_limit_and_not_one_more():
    """UpsertEntries stays well under gRPC's 4 MiB message limit however large the fixes."""
    half = writes.UPSERT_BYTES // 2
    exact = [("a", sized("a", half)), ("b", sized("b", half)), ("c", sized("c", 10))]
    assert [[key for key, _ in batch] for batch in writes.batches(exact)] == [["a", "b"], ["c"]]
    over = [("a", sized("a", half)), ("b", sized("b", half + 1)), ("c", sized("c", half - 1))]
    assert [[key for key, _ in batch] for batch in writes.batches(over)] == [["a"], ["b", "c"]]
    small = [(n, sized(f"e{n}", 100)) for n in range(writes.UPSERT_ENTRIES + 1)]
    assert [len(batch) for batch in writes.batches(small)] == [writes.UPSERT_ENTRIES, 1]


async def test_every_batch_is_written_and_a_refused_one_is_logged_then_written_one_by_one(
        knowledge, monkeypatch, caplog):
    """Four fixes, two a batch: the second batch holds one the bot refuses (no phrasing)."""
    monkeypatch.setattr(writes, "UPSERT_ENTRIES", 2)

    def fix(entry_id: str, questions: list[str]) -> bpb.KnowledgeEntry:
        return bpb.KnowledgeEntry(entry_id=entry_id, kind=bpb.ENTRY_KIND_QA, source="self-healing-feedback",
                                  content="We don't rent out tents.", questions=questions)

    changes = [("one", fix("fix-one", ["Do you rent out tents?"])), ("two", fix("fix-two", ["Can I hire a tent?"])),
               ("bad", fix("fix-bad", [])), ("four", fix("fix-four", ["Do you lend tents?"]))]
    failures: list[str] = []
    failed = await writes.upsert(knowledge, changes, failures)
    assert failed == {"bad"} and len(failures) == 2
    for entry_id in ("fix-one", "fix-two", "fix-four"):
        assert (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=entry_id))).entry.content
    logged = [(r.getMessage(), getattr(r, "entries", None), getattr(r, "error", "")[:12]) for r in caplog.records
              if r.name == "trainer"]
    assert logged == [("could not write fixes", 2, "AioRpcError:"), ("could not write a fix", None, "AioRpcError:")]


class Unavailable:
    """The bot's KnowledgeService when the calls named in `failing` (1 for the first, ...) find it unavailable."""

    def __init__(self, knowledge, failing: set[int]) -> None:
        self.knowledge, self.failing, self.calls = knowledge, failing, 0

    def __getattr__(self, name):
        return getattr(self.knowledge, name)

    async def UpsertEntries(self, request, **options):
        self.calls += 1
        if self.calls in self.failing:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details="the index is restarting")
        return await self.knowledge.UpsertEntries(request, **options)


async def test_a_batch_the_bot_could_not_take_fails_whole_and_the_next_batches_are_still_written(
        knowledge, monkeypatch):
    """Unavailable is no verdict on the fixes: their batch fails whole (no one-by-one retry), and
    the failures of every batch are kept."""
    monkeypatch.setattr(writes, "UPSERT_ENTRIES", 2)
    changes = [(n, bpb.KnowledgeEntry(entry_id=f"fix-{n}", kind=bpb.ENTRY_KIND_QA, source="self-healing-feedback",
                                      content="We don't rent out tents.", questions=[f"Tent question {n}?"]))
               for n in range(5)]
    unavailable = Unavailable(knowledge, {1, 3})
    failures: list[str] = []
    failed = await writes.upsert(unavailable, changes, failures)
    assert failed == {0, 1, 4} and unavailable.calls == 3 and len(failures) == 2
    for n in (2, 3):
        assert (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=f"fix-{n}"))).entry.questions

"""Approving a new-entry fix into an existing entry, at its edges: the refusals
a reviewer reads, word for word, and a target left on record by an approval
that changed nothing and could not take it off again. Pinned where the mutation
run (scripts/mutate, docs/testing.md) found a change that no test noticed.
Against the real services: TrainerService, the bot's KnowledgeService,
interactions, PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, expect_status, upsert
from tests.trainer.builders import disliked, forced_run, kinds_of_fix
from trainer.loop import Policy

REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)
STALE = "Delivery takes 1-2 business days now, and is free over 50 euros."
MONEY_BACK = "I want my money back for the boots I sent you"  # a new entry, nearest returns (test_approve_into.py)


async def proposed_new_entry(stub, trainer, interactions) -> pb.Fix:
    """A run under review that proposes one new entry, for MONEY_BACK."""
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="review", reinforce=False)
    await disliked(interactions, MONEY_BACK)
    done = await forced_run(stub)
    [fix] = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert (fix.kind, fix.state) == (pb.FIX_KIND_NEW_ENTRY, pb.FIX_STATE_PROPOSED)
    return fix



def full_entry(questions: list[str]) -> bpb.KnowledgeEntry:
    return bpb.KnowledgeEntry(entry_id="faq-full", kind=bpb.ENTRY_KIND_QA, source="test-kb", title="Full",
                              content="Nothing more fits here.", questions=questions)


async def refused_for_room_while_release_fails(stub, trainer, fix: pb.Fix) -> None:
    """Approves `fix` into the full entry, refused for its room, while taking the
    target off the record fails too (the trainer's database went away for a moment)."""

    async def release_fails(fix_id: str, into: str) -> None:
        raise ConnectionError("the trainer's database went away")

    release = trainer._release
    trainer._release = release_fails
    try:
        await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                 into_entry_id="faq-full")),
                            grpc.StatusCode.FAILED_PRECONDITION, "room for 0")
    finally:
        trainer._release = release

async def test_only_a_new_entry_fix_goes_into_another_entry_and_the_refusals_say_so(trainer_setup, interactions,
                                                                                     knowledge):
    stub, trainer = trainer_setup
    fixes = await kinds_of_fix(stub, trainer, interactions, knowledge, REVIEW, STALE)

    def approve(fix: pb.Fix, into: str) -> pb.ApproveFixRequest:
        return pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana", into_entry_id=into)

    for kind, name in ((pb.FIX_KIND_ADD_PHRASINGS, "ADD_PHRASINGS"), (pb.FIX_KIND_EDIT_ANSWER, "EDIT_ANSWER")):
        fix = fixes[kind]
        details = await expect_status(stub.ApproveFix(approve(fix, "faq-returns")), grpc.StatusCode.INVALID_ARGUMENT)
        assert details == (f"into_entry_id: only a NEW_ENTRY fix can be approved into an existing entry; "
                           f"fix {fix.fix_id!r} is {name}")
    new = fixes[pb.FIX_KIND_NEW_ENTRY]
    details = await expect_status(stub.ApproveFix(approve(new, new.fix_id)), grpc.StatusCode.INVALID_ARGUMENT)
    assert details == "into_entry_id: names the fix's own entry; leave it empty to publish the entry"
    # None of them changed a fix or an entry.
    for fix in fixes.values():
        assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == list(
        RETURNS.questions)


async def test_a_target_an_approval_could_not_take_off_the_record_gives_way_to_the_next_approval(
        trainer_setup, interactions, knowledge):
    """An approval into an entry without room is refused before it writes; when
    taking its target off the record fails too (the trainer's database went away
    for a moment), that target must not hold the fix: approving it into another
    entry goes through."""
    stub, trainer = trainer_setup
    full = full_entry([f"Question number {n} about refunds" for n in range(100)])
    await upsert(knowledge, RETURNS, SHIPPING, full)
    fix = await proposed_new_entry(stub, trainer, interactions)

    await refused_for_room_while_release_fails(stub, trainer, fix)
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-returns"))).fix
    assert (merged.kind, merged.state, merged.entry_id, list(merged.added_questions)) == (
        pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_STATE_PUBLISHED, "faq-returns", [MONEY_BACK])
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == [
        *RETURNS.questions, MONEY_BACK]
    assert len((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-full"))).entry.questions) == 100


async def test_an_approval_into_an_entry_signs_the_proposed_entrys_removal_and_replaces_no_answer(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions)
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana", note="returns covers it",
                                                         into_entry_id="faq-returns"))).fix
    # Its phrasings joined an entry whose answer stays: no answer was replaced (the rollback restores none).
    assert (merged.answer, merged.previous_answer) == (RETURNS.content, "")
    # The proposed entry left the index in a revision that names the fix, its run and the reviewer.
    [gone] = (await knowledge.ListRevisions(bpb.ListRevisionsRequest(entry_id=fix.fix_id, page_size=1))).revisions
    assert (gone.note.author, gone.note.fix_id, gone.note.training_run_id, gone.note.reason) == (
        "ana", fix.fix_id, fix.run_id, f"approved fix {fix.fix_id}: returns covers it")


class _FailingMarks:
    """The interactions service whose MarkProcessed fails once, and with it (when
    given) the knowledge service's next ListRevisions (both went away at that moment)."""

    def __init__(self, interactions, knowledge: _FailingHistory | None = None) -> None:
        self.interactions, self.knowledge, self.failed = interactions, knowledge, False

    def __getattr__(self, name: str):
        return getattr(self.interactions, name)

    async def MarkProcessed(self, request, **options):
        if not self.failed:
            self.failed = True
            if self.knowledge is not None:
                self.knowledge.fail_next = True
            raise ConnectionError("interactions went away")
        return await self.interactions.MarkProcessed(request, **options)


class _FailingHistory:
    """The knowledge service, whose ListRevisions fails once when told to (UNAVAILABLE)."""

    def __init__(self, knowledge) -> None:
        self.knowledge, self.fail_next = knowledge, False

    def __getattr__(self, name: str):
        return getattr(self.knowledge, name)

    async def ListRevisions(self, request, **options):
        if self.fail_next:
            self.fail_next = False
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       "the knowledge service went away")
        return await self.knowledge.ListRevisions(request, **options)


async def test_a_stopped_approval_keeps_its_target_when_the_knowledge_service_fails_as_it_cleans_up(
        trainer_setup, interactions, knowledge):
    """An approval into an entry wrote there and then stopped (interactions went
    away); the trainer cannot read that entry's history to see so (the knowledge
    service went away too). Its target stays on record: only the same approval
    finishes it, so the phrasing it wrote never stays without a fix that owns it."""
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions)
    real_interactions, real_knowledge = trainer.interactions, trainer.knowledge
    trainer.knowledge = _FailingHistory(real_knowledge)
    trainer.interactions = _FailingMarks(real_interactions, trainer.knowledge)
    try:
        await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                 into_entry_id="faq-returns")),
                            grpc.StatusCode.UNAVAILABLE)
    finally:
        trainer.interactions, trainer.knowledge = real_interactions, real_knowledge
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == [
        *RETURNS.questions, MONEY_BACK]
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                       into_entry_id="faq-shipping")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details == (f"fix {fix.fix_id!r} was being approved into entry 'faq-returns' when that approval stopped "
                       "half way (its questions are in that entry already); approve it into that entry again "
                       "(into_entry_id) to finish it, then roll it back if it should not stay")
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-shipping"))).entry.questions) == list(
        SHIPPING.questions)
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-returns"))).fix
    assert (merged.state, merged.entry_id, list(merged.added_questions)) == (
        pb.FIX_STATE_PUBLISHED, "faq-returns", [MONEY_BACK])


async def test_an_approval_overtaken_by_one_into_another_entry_says_which_and_to_look_again(
        trainer_setup, interactions, knowledge):
    """A second approval records its target between the first's record and its
    lock (as in test_approve_into.py): the first refuses, naming the other entry."""
    from trainer import repository

    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions)
    claim = trainer._claim

    async def overtaken(fix_id: str, into: str) -> None:
        await claim(fix_id, into)
        await repository.claim_into(trainer.pool, fix_id, "faq-shipping", replace=True)

    trainer._claim = overtaken
    try:
        details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                           into_entry_id="faq-returns")),
                                      grpc.StatusCode.FAILED_PRECONDITION)
    finally:
        trainer._claim = claim
    assert details == (f"another approval of fix {fix.fix_id!r}, into entry 'faq-shipping', is under way; look at "
                       "the fix again when it has finished")


def archived(entry_id: str, **more) -> bpb.UpdateEntryRequest:
    paths = ["status", *more]
    return bpb.UpdateEntryRequest(entry=bpb.KnowledgeEntry(entry_id=entry_id, status=bpb.ENTRY_STATUS_ARCHIVED, **more),
                                  update_mask={"paths": paths})


async def test_a_stopped_approval_is_finished_even_after_its_entry_was_archived(trainer_setup, interactions,
                                                                                 knowledge):
    """The entry took the fix's phrasing before the approval stopped: finishing
    it needs the entry to exist, not to be published, or the phrasing it wrote
    would stay with no fix that owns it (and no way to roll it back)."""
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions)
    real = trainer.interactions
    trainer.interactions = _FailingMarks(real)
    try:
        await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                 into_entry_id="faq-returns")),
                            grpc.StatusCode.UNAVAILABLE)
    finally:
        trainer.interactions = real
    await knowledge.UpdateEntry(archived("faq-returns"))
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-returns"))).fix
    assert (merged.state, merged.entry_id, list(merged.added_questions)) == (
        pb.FIX_STATE_PUBLISHED, "faq-returns", [MONEY_BACK])
    # Approved without a note, the revision the approval wrote (before the archiving) gives the reason alone.
    _, signed = (await knowledge.ListRevisions(bpb.ListRevisionsRequest(entry_id="faq-returns", page_size=2))).revisions
    assert (signed.note.author, signed.note.fix_id, signed.note.reason) == ("ana", fix.fix_id,
                                                                           f"approved fix {fix.fix_id}")


async def test_an_approval_that_wrote_nothing_is_refused_into_an_entry_archived_since(trainer_setup, interactions,
                                                                                       knowledge):
    """Refused before it wrote (no room), with its target left on record (the
    release failed): approved into that entry again once it has room but is
    archived, it is refused as any approval into an archived entry is."""
    stub, trainer = trainer_setup
    questions = [f"Question number {n} about refunds" for n in range(100)]
    full = full_entry(questions)
    await upsert(knowledge, RETURNS, full)
    fix = await proposed_new_entry(stub, trainer, interactions)

    await refused_for_room_while_release_fails(stub, trainer, fix)
    await knowledge.UpdateEntry(archived("faq-full", questions=questions[:99]))
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                       into_entry_id="faq-full")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details == (f"entry 'faq-full' is not a published Q&A entry; only one can take fix {fix.fix_id!r}'s "
                       "questions as phrasings")
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-full"))).entry.questions) == questions[:99]


async def test_an_approval_into_an_entry_that_a_plain_approval_overtook_says_the_fix_is_published(
        trainer_setup, interactions, knowledge):
    """Two reviewers at once: one approves the fix as a new entry while the
    other's approval into an entry is being replayed. The plain approval wins;
    the other is told the fix is published now, and nothing is written into the entry."""
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions)
    gate = trainer._gate

    async def overtaken(fix_id: str, allow_regressions: bool, into: str = "") -> None:
        await gate(fix_id, allow_regressions, into)
        if into:  # the other reviewer's plain approval lands between this replay and the record of the target
            await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix_id, reviewer="bo"))

    trainer._gate = overtaken
    try:
        details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                                           into_entry_id="faq-returns")),
                                      grpc.StatusCode.FAILED_PRECONDITION)
    finally:
        trainer._gate = gate
    assert details == f"fix {fix.fix_id!r} is published; only a proposed fix can be approved"
    published = (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix
    assert (published.kind, published.entry_id, published.reviewer) == (pb.FIX_KIND_NEW_ENTRY, fix.fix_id, "bo")
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == list(
        RETURNS.questions)

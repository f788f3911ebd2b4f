"""A proposed new entry whose topic an existing entry covers already: the fix
lists the published entries nearest its questions, and a reviewer approves it
into one of them (ApproveFixRequest.into_entry_id) instead of publishing a
duplicate. Against the real services: TrainerService, the bot's
KnowledgeService (pgvector, MiniLM), interactions, PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import ARTICLE, RETURNS, SHIPPING, Teacher, expect_status, processed, upsert
from tests.trainer.builders import PausingTeacher, disliked, finished, forced_run, liked

# Asks about returns in other words: below the judge's 0.8 to every returns
# phrasing, so the run proposes a new entry, yet nearer returns than shipping.
MONEY_BACK = "I want my money back for the boots I sent you"


async def proposed_new_entry(stub, trainer, interactions, question: str) -> pb.Fix:
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="review", reinforce=False)
    await disliked(interactions, question)
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    [fix] = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert fix.kind == pb.FIX_KIND_NEW_ENTRY and fix.state == pb.FIX_STATE_PROPOSED
    return fix


async def best_entry(knowledge, question: str) -> str:
    hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(query=question, k=1))).hits
    return hits[0].entry.entry_id if hits else ""


async def test_a_new_entry_fix_lists_the_published_entries_nearest_its_questions(trainer_setup, interactions,
                                                                                 knowledge):
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING, ARTICLE)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    nearby = list(fix.nearby_entries)
    # Q&A entries only (an article cannot take phrasings), best first, scored as the search scores them.
    assert [n.entry_id for n in nearby] == ["faq-returns", "faq-shipping"]
    assert 0 < nearby[1].score < nearby[0].score < 0.8
    found = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(query=MONEY_BACK, k=1))).hits[0]
    assert abs(nearby[0].score - found.score) < 1e-3
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.nearby_entries == fix.nearby_entries


async def test_a_fix_a_later_page_grows_keeps_the_nearby_entries_its_first_page_found(
        trainer_setup, interactions, knowledge, monkeypatch):
    from trainer import loop

    monkeypatch.setattr(loop, "PAGE", 1)
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="review", reinforce=False)
    ids = [await disliked(interactions, MONEY_BACK), await disliked(interactions, MONEY_BACK + ", please")]
    done = await forced_run(stub)
    [fix] = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert list(fix.interaction_ids) == ids  # grown on the second page
    assert [n.entry_id for n in fix.nearby_entries] == ["faq-returns", "faq-shipping"]


async def test_approved_into_an_existing_entry_the_fix_adds_its_phrasings_there_and_rolls_back_exactly(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING, ARTICLE)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    [interaction_id] = fix.interaction_ids

    def approve(into: str, **more) -> pb.ApproveFixRequest:
        return pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana", into_entry_id=into, **more)

    await expect_status(stub.ApproveFix(approve("faq-returns", answer="Refunds take 5 days.")),
                        grpc.StatusCode.INVALID_ARGUMENT, "answer", "into_entry_id")
    await expect_status(stub.ApproveFix(approve("faq-nothing")), grpc.StatusCode.NOT_FOUND, "faq-nothing")
    await expect_status(stub.ApproveFix(approve(ARTICLE.entry_id)), grpc.StatusCode.FAILED_PRECONDITION,
                        "not a published Q&A entry")
    await expect_status(stub.ApproveFix(approve(fix.fix_id)), grpc.StatusCode.INVALID_ARGUMENT, "into_entry_id")
    await expect_status(stub.ApproveFix(approve("no such id")), grpc.StatusCode.INVALID_ARGUMENT, "into_entry_id")
    # None of the refusals changed anything.
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == list(
        RETURNS.questions)

    merged = (await stub.ApproveFix(approve("faq-returns", note="returns covers it"))).fix
    assert (merged.kind, merged.state, merged.entry_id) == (pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_STATE_PUBLISHED,
                                                            "faq-returns")
    assert (list(merged.added_questions), merged.answer, merged.reviewer) == ([MONEY_BACK], RETURNS.content, "ana")
    returns = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert list(returns.questions) == [*RETURNS.questions, MONEY_BACK] and returns.content == RETURNS.content
    # The proposed duplicate left the index; the customer's question now finds the returns entry.
    await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.fix_id)), grpc.StatusCode.NOT_FOUND)
    assert await best_entry(knowledge, MONEY_BACK) == "faq-returns"
    stored = (await processed(interactions))[interaction_id]
    assert (stored.training_outcome, stored.knowledge_entry_id) == (ipb.TRAINING_OUTCOME_FIXED, "faq-returns")
    # The entry's history names the fix and the reviewer.
    [newest] = (await knowledge.ListRevisions(bpb.ListRevisionsRequest(entry_id="faq-returns", page_size=1))).revisions
    assert (newest.note.fix_id, newest.note.author) == (fix.fix_id, "ana")
    # Retried after it went through (a lost response), the approval finds it published.
    await expect_status(stub.ApproveFix(approve("faq-returns")), grpc.StatusCode.FAILED_PRECONDITION, "published")

    rolled = (await stub.RollbackFix(pb.RollbackFixRequest(fix_id=fix.fix_id, reviewer="ana"))).fix
    assert rolled.state == pb.FIX_STATE_ROLLED_BACK
    returns = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert list(returns.questions) == list(RETURNS.questions)
    await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.fix_id)), grpc.StatusCode.NOT_FOUND)
    stored = (await processed(interactions))[interaction_id]
    assert (stored.training_outcome, stored.knowledge_entry_id) == (ipb.TRAINING_OUTCOME_ROLLED_BACK, "faq-returns")


LIKED = "Can I send back a gift I bought online?"  # liked, answered from returns (0.49, as in test_gate.py)
SEND_BACK = "Can I send back a gift?"  # 0.92 similar to it: as a phrasing of another entry it takes it
GIFT_RETURNS = bpb.KnowledgeEntry(entry_id="returns", kind=bpb.ENTRY_KIND_QA, title="Returns",
                                  questions=["How do I return an item?"], source="faq",
                                  content="Send it back within 30 days with the prepaid label.")


async def test_approving_into_an_entry_that_would_take_a_liked_answer_needs_the_override(
        trainer_setup, interactions, knowledge):
    """The regression gate replays the merge as that entry's added phrasings."""
    stub, trainer = trainer_setup
    await upsert(knowledge, GIFT_RETURNS, SHIPPING)
    await liked(interactions, LIKED, "returns")
    fix = await proposed_new_entry(stub, trainer, interactions, SEND_BACK)
    assert {n.entry_id for n in fix.nearby_entries} == {"returns", "faq-shipping"}
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                             into_entry_id="faq-shipping")),
                        grpc.StatusCode.FAILED_PRECONDITION, "allow_regressions")
    held = (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix
    assert held.state == pb.FIX_STATE_PROPOSED
    assert [(r.question, r.entry_id, r.moved_to_entry_id) for r in held.regressions] == [
        (LIKED, "returns", "faq-shipping")]
    assert await best_entry(knowledge, LIKED) == "returns"
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-shipping"))).entry.questions) == list(
        SHIPPING.questions)
    # Into the entry that answers the liked question, nothing is taken.
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="returns"))).fix
    assert merged.state == pb.FIX_STATE_PUBLISHED and not merged.regressions
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="returns"))).entry.questions) == [
        "How do I return an item?", SEND_BACK]


async def wait_for_fix(stub, run_id: str, question: str) -> pb.Fix:
    for _ in range(300):
        for fix in (await stub.ListFixes(pb.ListFixesRequest(run_id=run_id))).fixes:
            if fix.question == question:
                return fix
        await asyncio.sleep(0.05)
    raise AssertionError(f"no fix for {question!r}")


async def test_a_fix_approved_into_an_entry_while_a_run_grows_it_stays_that_entrys_change(
        trainer_setup, interactions, knowledge, monkeypatch):
    """Under review, a page that grows a fix a reviewer has approved into another
    entry meanwhile writes neither the fix's old entry back nor into that entry."""
    from trainer import loop

    stub, trainer = trainer_setup
    monkeypatch.setattr(loop, "PAGE", 2)
    trainer.teacher = PausingTeacher("Do you repair zips on jackets?")
    trainer.policy = replace(trainer.policy, publish="review", reinforce=False)
    await upsert(knowledge, RETURNS, SHIPPING)
    # Page 2: a near-duplicate of page 1's tents fix, and a question the teacher waits on;
    # page 3: a question the shipping entry answers, which the bot answered from returns.
    ids = [await disliked(interactions, question) for question in (
        "Do you rent out tents?", "Do you sell gift cards?", "Can I rent a tent from you?",
        "Do you repair zips on jackets?")]
    ids.append(await disliked(interactions, "How long does delivery take?!", source=("faq-returns", 0.5)))
    await disliked(interactions, "Do you sell spare stove parts?")
    ids.append(await disliked(interactions, "When will my parcel arrive, roughly?", source=("faq-returns", 0.5)))
    run_id = (await stub.StartRun(pb.StartRunRequest())).run.run_id
    tents = await wait_for_fix(stub, run_id, "Do you rent out tents?")
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=tents.fix_id, reviewer="ana", into_entry_id="faq-shipping"))
    trainer.teacher.release.set()
    run = await finished(stub, run_id)
    assert run.state == pb.RUN_STATE_SUCCEEDED, run.error_message

    fix = (await stub.GetFix(pb.GetFixRequest(fix_id=tents.fix_id))).fix
    assert (fix.kind, fix.state, fix.entry_id) == (pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_STATE_PUBLISHED, "faq-shipping")
    assert list(fix.questions) == ["Do you rent out tents?"] and list(fix.interaction_ids) == [ids[0]]
    await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=tents.fix_id)), grpc.StatusCode.NOT_FOUND)
    shipping = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-shipping"))).entry
    assert list(shipping.questions) == [*SHIPPING.questions, "Do you rent out tents?"]
    stored = await processed(interactions)
    # The near-duplicate that joined it is covered by the entry the reviewer chose.
    assert (stored[ids[2]].training_outcome, stored[ids[2]].knowledge_entry_id) == (
        ipb.TRAINING_OUTCOME_COVERED, "faq-shipping")
    # The misrouted questions (pages 3 and 4) are one new proposal for the shipping entry, not an
    # unreviewed write into it.
    [proposal] = [f for f in (await stub.ListFixes(pb.ListFixesRequest(run_id=run_id))).fixes
                  if f.entry_id == "faq-shipping" and f.fix_id != tents.fix_id]
    assert (proposal.kind, proposal.state) == (pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_STATE_PROPOSED)
    assert list(proposal.questions) == ["How long does delivery take?!", "When will my parcel arrive, roughly?"]
    assert {stored[i].training_outcome for i in ids[4:]} == {ipb.TRAINING_OUTCOME_PROPOSED}

    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=tents.fix_id, reviewer="ana"))
    shipping = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-shipping"))).entry
    assert list(shipping.questions) == list(SHIPPING.questions)
    await expect_status(knowledge.GetEntry(bpb.GetEntryRequest(entry_id=tents.fix_id)), grpc.StatusCode.NOT_FOUND)


async def test_phrasings_approved_into_a_fix_while_a_run_grows_it_are_kept(trainer_setup, interactions, knowledge,
                                                                          monkeypatch):
    """A reviewer publishes a run's new fix, then approves another proposed fix
    into it, while the run's next page is being taught. That page then grows the
    fix with a new question: it writes the fix as now stored plus its question,
    not the fix as it read it (which would drop the approved phrasing, a
    reviewer's acknowledged write). Rolling back the merge then removes exactly
    its phrasing."""
    from trainer import loop

    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    earlier = await proposed_new_entry(stub, trainer, interactions, "Do you sell gift cards?")
    monkeypatch.setattr(loop, "PAGE", 2)
    trainer.teacher = PausingTeacher("Do you repair zips on jackets?")
    # Page 1: the tents fix and another; page 2: a near-duplicate that grows it, and a question the teacher waits on.
    for question in ("Do you rent out tents?", "Do you sell spare stove parts?", "Can I rent a tent from you?",
                     "Do you repair zips on jackets?"):
        await disliked(interactions, question)
    run_id = (await stub.StartRun(pb.StartRunRequest())).run.run_id
    tents = await wait_for_fix(stub, run_id, "Do you rent out tents?")
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=tents.fix_id, reviewer="ana"))
    await stub.ApproveFix(pb.ApproveFixRequest(fix_id=earlier.fix_id, reviewer="ana", into_entry_id=tents.fix_id))
    trainer.teacher.release.set()
    run = await finished(stub, run_id)
    assert run.state == pb.RUN_STATE_SUCCEEDED, run.error_message

    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=tents.fix_id))).entry
    assert list(entry.questions) == ["Do you rent out tents?", "Do you sell gift cards?", "Can I rent a tent from you?"]
    assert entry.status == bpb.ENTRY_STATUS_PUBLISHED
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=earlier.fix_id, reviewer="ana"))
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=tents.fix_id))).entry
    assert list(entry.questions) == ["Do you rent out tents?", "Can I rent a tent from you?"]


class FailingMarks:
    """The interactions service, whose MarkProcessed fails `times` times."""

    def __init__(self, interactions, times: int = 1) -> None:
        self.interactions, self.times = interactions, times

    def __getattr__(self, name):
        return getattr(self.interactions, name)

    async def MarkProcessed(self, request, **options):
        if self.times:
            self.times -= 1
            raise RuntimeError("interactions went away")
        return await self.interactions.MarkProcessed(request, **options)


async def test_an_approval_into_an_entry_that_stopped_half_way_is_finished_by_the_same_approval(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    trainer.interactions = FailingMarks(trainer.interactions)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana", into_entry_id="faq-returns"))
    # It stopped after the index changed: the returns entry lists the question, the proposed entry is gone.
    returns = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry
    assert list(returns.questions) == [*RETURNS.questions, MONEY_BACK]
    assert (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.state == pb.FIX_STATE_PROPOSED
    # Nothing else may leave that phrasing behind without a fix that owns it.
    for call in (stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                 stub.RejectFix(pb.RejectFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                 stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                      into_entry_id="faq-shipping"))):
        await expect_status(call, grpc.StatusCode.FAILED_PRECONDITION, "half way", "faq-returns")
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-returns"))).fix
    # The retry records exactly what the first attempt added, so the rollback can remove it.
    assert (merged.kind, merged.state, list(merged.added_questions)) == (
        pb.FIX_KIND_ADD_PHRASINGS, pb.FIX_STATE_PUBLISHED, [MONEY_BACK])
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == [
        *RETURNS.questions, MONEY_BACK]
    stored = (await processed(interactions))[fix.interaction_ids[0]]
    assert (stored.training_outcome, stored.knowledge_entry_id) == (ipb.TRAINING_OUTCOME_FIXED, "faq-returns")
    # Someone edits the entry since: the rollback still removes exactly the fix's phrasing.
    await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
        entry=bpb.KnowledgeEntry(entry_id="faq-returns", questions=[*RETURNS.questions, MONEY_BACK, "Refund?"]),
        update_mask={"paths": ["questions"]}))
    await stub.RollbackFix(pb.RollbackFixRequest(fix_id=fix.fix_id, reviewer="ana"))
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == [
        *RETURNS.questions, "Refund?"]


async def test_an_approval_into_an_entry_that_changed_nothing_gives_way_to_another_review(
        trainer_setup, interactions, knowledge):
    """Refused before it wrote anything (an edit of the target came between), the
    approval's target on record does not hold the fix to it."""
    stub, trainer = trainer_setup
    full = bpb.KnowledgeEntry(entry_id="faq-full", kind=bpb.ENTRY_KIND_QA, source="test-kb", title="Full",
                              content="Nothing more fits here.",
                              questions=[f"Question number {n} about refunds" for n in range(100)])
    await upsert(knowledge, RETURNS, full)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                             into_entry_id="faq-full")),
                        grpc.StatusCode.FAILED_PRECONDITION, "room for 0")
    # The refused approval holds nothing: a later run grows the fix as before.
    again = await disliked(interactions, "I want my money back for the boots I returned to you")
    assert (await forced_run(stub)).state == pb.RUN_STATE_SUCCEEDED
    grown = (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix
    assert grown.state == pb.FIX_STATE_PROPOSED and again in grown.interaction_ids
    assert (await processed(interactions))[again].training_outcome == ipb.TRAINING_OUTCOME_PROPOSED
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-returns"))).fix
    assert merged.entry_id == "faq-returns" and MONEY_BACK in merged.added_questions
    assert len((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-full"))).entry.questions) == 100


TAKES = "Can I exchange a gift for another size?"  # withheld from a new entry: it would take LIKED
KEEPS = "Can I swap a present for a different size?"  # folds with it (see tests/trainer/test_gate.py)


async def test_approved_into_the_entry_it_would_take_from_a_withheld_phrasing_goes_too(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await upsert(knowledge, GIFT_RETURNS)
    await liked(interactions, LIKED, "returns")
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="review", reinforce=False)
    for question in (TAKES, KEEPS):
        await disliked(interactions, question)
    done = await forced_run(stub)
    [fix] = (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes
    assert list(fix.withheld_questions) == [TAKES]
    # As the returns entry's own phrasing it takes nothing from returns: it joins with the rest.
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="returns"))).fix
    assert sorted(merged.added_questions) == sorted([TAKES, KEEPS]) and not merged.regressions
    assert await best_entry(knowledge, TAKES) == "returns" and await best_entry(knowledge, LIKED) == "returns"


async def test_two_approvals_into_different_entries_at_once_write_only_one(trainer_setup, interactions, knowledge):
    """A second approval records its target between the first's record and its
    lock: the first refuses before it writes, the second goes through."""
    from trainer import repository

    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    claim = trainer._claim

    async def overtaken(fix_id: str, into: str) -> None:
        await claim(fix_id, into)
        await repository.claim_into(trainer.pool, fix_id, "faq-shipping", replace=True)

    trainer._claim = overtaken
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                             into_entry_id="faq-returns")),
                        grpc.StatusCode.FAILED_PRECONDITION, "under way", "faq-shipping")
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-returns"))).entry.questions) == list(
        RETURNS.questions)
    trainer._claim = claim
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-shipping"))).fix
    assert (merged.entry_id, list(merged.added_questions)) == ("faq-shipping", [MONEY_BACK])


async def test_a_stopped_approval_whose_entry_is_gone_holds_nothing(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS, SHIPPING)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    interactions_stub = trainer.interactions
    trainer.interactions = FailingMarks(interactions_stub)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana", into_entry_id="faq-returns"))
    await knowledge.DeleteEntry(bpb.DeleteEntryRequest(entry_id="faq-returns"))  # its phrasings went with it
    rejected = (await stub.RejectFix(pb.RejectFixRequest(fix_id=fix.fix_id, reviewer="ana"))).fix
    assert rejected.state == pb.FIX_STATE_REJECTED


async def test_a_stopped_approval_finished_after_many_edits_records_what_it_added(trainer_setup, interactions,
                                                                                   knowledge):
    """The revision the approval signed is found however many edits came since."""
    stub, trainer = trainer_setup
    await upsert(knowledge, RETURNS)
    fix = await proposed_new_entry(stub, trainer, interactions, MONEY_BACK)
    interactions_stub = trainer.interactions
    trainer.interactions = FailingMarks(interactions_stub)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana", into_entry_id="faq-returns"))
    for n in range(105):  # more than a page of revisions
        await knowledge.UpdateEntry(bpb.UpdateEntryRequest(
            entry=bpb.KnowledgeEntry(entry_id="faq-returns", content=f"{RETURNS.content} ({n})"),
            update_mask={"paths": ["content"]}))
    merged = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                         into_entry_id="faq-returns"))).fix
    assert list(merged.added_questions) == [MONEY_BACK]

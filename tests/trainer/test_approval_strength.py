"""What a reviewer reads when the approval's replay refuses a fix, word for
word, and that a refused approval of a fix already published leaves its
regressions on record: over the real services, like tests/trainer/test_gate.py
(whose questions, chosen by their MiniLM similarities, these reuse). Pinned
where the mutation run (scripts/mutate, docs/testing.md) found a change that
no test noticed."""

from __future__ import annotations

from dataclasses import replace

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import Teacher, expect_status, upsert
from tests.trainer.builders import disliked, forced_run, liked

RETURNS = "returns"
LIKED = "Can I send back a gift I bought online?"  # answered from RETURNS, and liked
TAKES = "Can I exchange a gift for another size?"  # a fix phrased so would take LIKED
KEEPS = "Can I swap a present for a different size?"  # would not
ONLY_TAKES = "Can I send back a gift?"  # a fix with this one phrasing can only take LIKED


async def proposed_fixes(stub, trainer, interactions, knowledge, *questions: str,
                         reinforce: bool = False) -> list[pb.Fix]:
    await upsert(knowledge, bpb.KnowledgeEntry(
        entry_id=RETURNS, kind=bpb.ENTRY_KIND_QA, title="Returns", questions=["How do I return an item?"],
        content="Send it back within 30 days with the prepaid label.", source="faq"))
    await liked(interactions, LIKED, RETURNS)
    trainer.teacher = Teacher()
    trainer.policy = replace(trainer.policy, publish="review", reinforce=reinforce)
    for question in questions:
        await disliked(interactions, question)
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    return list((await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes)


async def test_the_refusal_says_what_the_fix_would_take_and_what_the_reviewer_can_do(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    [fix] = await proposed_fixes(stub, trainer, interactions, knowledge, ONLY_TAKES)
    message = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert message == (f"fix {fix.fix_id!r} would take 1 right answer(s) from 1 other entry (returns); GetFix lists "
                       "them as `regressions`. Reject it, or approve with allow_regressions to publish it anyway")
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana",
                                                           allow_regressions=True))).fix
    assert [r.question for r in approved.regressions] == [LIKED]
    # Approved again, it is refused as published; what it was approved over stays on record.
    await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=fix.fix_id, reviewer="ana")),
                        grpc.StatusCode.FAILED_PRECONDITION, "is published; only a proposed fix can be approved")
    assert [r.question for r in (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix.regressions] == [LIKED]


async def test_the_refusal_names_the_proposed_phrasings_to_approve_first(trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    fixes = await proposed_fixes(stub, trainer, interactions, knowledge, TAKES, KEEPS, reinforce=True)
    [added] = [f for f in fixes if f.kind == pb.FIX_KIND_ADD_PHRASINGS]
    [new] = [f for f in fixes if f.kind == pb.FIX_KIND_NEW_ENTRY]
    message = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id=new.fix_id, reviewer="ana")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert message == (f"fix {new.fix_id!r} would take 1 right answer(s) from 1 other entry (returns); GetFix lists "
                       f"them as `regressions`. Approve {added.fix_id} first (phrasings proposed for those entries, "
                       "which may keep their answers), reject it, or approve with allow_regressions to publish it "
                       "anyway")


async def test_a_later_run_growing_a_proposed_fix_withholds_a_new_phrasing_that_would_take_a_liked_answer(
        trainer_setup, interactions, knowledge, spans):
    """The page's gate covers the questions that grow an earlier fix, not only new fixes: KEEPS'
    fix waits for review; TAKES, disliked later, joins it, but as its phrasing it would take LIKED."""
    stub, trainer = trainer_setup
    [fix] = await proposed_fixes(stub, trainer, interactions, knowledge, KEEPS)
    assert list(fix.questions) == [KEEPS]
    await disliked(interactions, TAKES)
    spans.clear()
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    grown = (await stub.GetFix(pb.GetFixRequest(fix_id=fix.fix_id))).fix
    assert len(grown.interaction_ids) == 2  # TAKES joined it
    assert (list(grown.questions), list(grown.withheld_questions)) == ([KEEPS], [TAKES])
    entry = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id=fix.entry_id))).entry
    assert list(entry.questions) == [KEEPS]
    (gate,) = [s for s in spans.get_finished_spans() if s.name == "mend.trainer.gate"]
    assert (gate.attributes["mend.trainer.gate.replayed"], gate.attributes["mend.trainer.gate.fixes"],
            gate.attributes["mend.trainer.gate.narrowed"]) == (2, 1, 1)  # LIKED and the returns phrasing

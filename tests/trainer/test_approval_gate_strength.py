"""The regression gate at approval, where the mutation run (scripts/mutate,
docs/testing.md) found changes no test noticed: a refusal naming several
entries and several proposals to approve first, word for word and cut at five;
only the phrasings an ADD_PHRASINGS fix would publish are replayed, and every
phrasing of a new entry approved into another one. The fixes under review are
written to the trainer's table as a run writes them; the approvals go through
the real TrainerService, knowledge index and interactions service."""

from __future__ import annotations

import grpc

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import expect_status, upsert
from tests.trainer.builders import disliked, liked

# Six entries on six topics; a liked question of each, answered from it in other words.
TOPICS = (
    ("faq-cancel", "How do I cancel my order?", "Can I cancel an order I already placed?"),
    ("faq-canada", "Do you ship to Canada?", "Can you deliver my parcel to Canada?"),
    ("faq-hours", "What are your opening hours?", "When is your shop open during the week?"),
    ("faq-password", "How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("faq-payment", "Which payment methods do you accept?", "Can I pay with PayPal or a credit card?"),
    ("faq-wrapping", "Do you offer gift wrapping?", "Can you gift wrap the present I am buying?"),
)
STOVES = bpb.KnowledgeEntry(entry_id="faq-stoves", kind=bpb.ENTRY_KIND_QA, source="test-kb", title="Stoves",
                            questions=["Do you sell camping stoves?"],
                            content="Yes: gas and multi-fuel camping stoves, with spare parts.")
KEEPS = "Which camping stoves do you have?"  # takes no one's answer as a phrasing of the stoves entry


def entry(entry_id: str, question: str) -> bpb.KnowledgeEntry:
    return bpb.KnowledgeEntry(entry_id=entry_id, kind=bpb.ENTRY_KIND_QA, source="test-kb", title=entry_id,
                              questions=[question], content=f"The answer of {entry_id}.")


async def proposed(pool, fix_id: str, kind: str, entry_id: str, questions: list[str], interaction_ids: list[str],
                   withheld: tuple[str, ...] = (), order: int = 0) -> None:
    """A fix under review as a run records it (`order`: seconds after the first)."""
    await pool.execute(
        "INSERT INTO trainer_fixes (fix_id, run_id, kind, entry_id, questions, withheld_questions, answer, "
        "interaction_ids, state, teacher_model, prompt_version, create_time) "
        "VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, 'An answer.', $6, 'proposed', 'm', 'v', "
        "now() + $7 * interval '1 second')",
        fix_id, kind, entry_id, questions, list(withheld), interaction_ids, order)


async def test_a_refused_approval_names_the_entries_and_the_proposals_to_approve_first_five_of_each(
        trainer_setup, interactions, knowledge, pool):
    stub, _ = trainer_setup
    await upsert(knowledge, STOVES, *(entry(entry_id, question) for entry_id, question, _ in TOPICS))
    for entry_id, _, asked in TOPICS:
        await liked(interactions, asked, entry_id)
    # Phrasings proposed for each of the six entries (the oldest first), then a fix that adds every
    # liked question to the stoves entry: as its phrasings, each takes its entry's right answer.
    for n, (entry_id, _, _) in enumerate(TOPICS):
        await proposed(pool, f"fix-more-{entry_id}", "add_phrasings", entry_id, [f"Another way to ask {n}"],
                       [await disliked(interactions, f"Another way to ask {n}")], order=n)
    asked = [question for _, _, question in TOPICS]
    await proposed(pool, "fix-stoves", "add_phrasings", "faq-stoves", asked,
                   [await disliked(interactions, asked[0])], order=10)
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id="fix-stoves", reviewer="ana")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details == (
        "fix 'fix-stoves' would take 6 right answer(s) from 6 other entries (faq-canada, faq-cancel, faq-hours, "
        "faq-password, faq-payment); GetFix lists them as `regressions`. Approve fix-more-faq-cancel, "
        "fix-more-faq-canada, fix-more-faq-hours, fix-more-faq-password, fix-more-faq-payment first (phrasings "
        "proposed for those entries, which may keep their answers), reject it, or approve with allow_regressions "
        "to publish it anyway")
    held = (await stub.GetFix(pb.GetFixRequest(fix_id="fix-stoves"))).fix
    assert held.state == pb.FIX_STATE_PROPOSED
    assert sorted((r.question, r.entry_id, r.moved_to_entry_id) for r in held.regressions) == sorted(
        (question, entry_id, "faq-stoves") for entry_id, _, question in TOPICS)


async def test_a_refusal_from_two_entries_names_both(trainer_setup, interactions, knowledge, pool):
    stub, _ = trainer_setup
    await upsert(knowledge, STOVES, *(entry(entry_id, question) for entry_id, question, _ in TOPICS[:2]))
    for entry_id, _, asked in TOPICS[:2]:
        await liked(interactions, asked, entry_id)
    asked = [question for _, _, question in TOPICS[:2]]
    await proposed(pool, "fix-stoves", "add_phrasings", "faq-stoves", asked, [await disliked(interactions, asked[0])])
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id="fix-stoves", reviewer="ana")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details == (
        "fix 'fix-stoves' would take 2 right answer(s) from 2 other entries (faq-canada, faq-cancel); GetFix lists "
        "them as `regressions`. Reject it, or approve with allow_regressions to publish it anyway")


async def test_only_the_phrasings_an_added_phrasings_fix_publishes_are_replayed(trainer_setup, interactions,
                                                                                 knowledge, pool):
    """The run withheld a phrasing that would take a liked answer: approving the
    fix publishes the others, and so only they are replayed; nothing is refused."""
    stub, _ = trainer_setup
    cancel, question, asked = TOPICS[0]
    await upsert(knowledge, STOVES, entry(cancel, question))
    await liked(interactions, asked, cancel)
    await proposed(pool, "fix-stoves", "add_phrasings", "faq-stoves", [asked, KEEPS],
                   [await disliked(interactions, KEEPS)], withheld=(asked,))
    approved = (await stub.ApproveFix(pb.ApproveFixRequest(fix_id="fix-stoves", reviewer="ana"))).fix
    assert approved.state == pb.FIX_STATE_PUBLISHED and not approved.regressions
    assert list(approved.added_questions) == [KEEPS]
    stoves = (await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-stoves"))).entry
    assert list(stoves.questions) == [*STOVES.questions, KEEPS]


async def test_a_new_entry_approved_into_another_entry_is_replayed_with_its_withheld_phrasings(
        trainer_setup, interactions, knowledge, pool):
    """Approved into an entry, a new entry's withheld phrasings go too (they are
    judged again as that entry's): so the approval's replay has them, and one
    that would take a liked answer from a third entry is refused."""
    stub, _ = trainer_setup
    cancel, question, asked = TOPICS[0]
    await upsert(knowledge, STOVES, entry(cancel, question))
    await liked(interactions, asked, cancel)
    await proposed(pool, "fix-new", "new_entry", "fix-new", [KEEPS, asked], [await disliked(interactions, KEEPS)],
                   withheld=(asked,))
    details = await expect_status(stub.ApproveFix(pb.ApproveFixRequest(fix_id="fix-new", reviewer="ana",
                                                                       into_entry_id="faq-stoves")),
                                  grpc.StatusCode.FAILED_PRECONDITION)
    assert details.startswith("fix 'fix-new' would take 1 right answer(s) from 1 other entry (faq-cancel);")
    assert list((await knowledge.GetEntry(bpb.GetEntryRequest(entry_id="faq-stoves"))).entry.questions) == list(
        STOVES.questions)

"""A disliked follow-up the bot answered unsure ("can I rent one while it's
being repaired?", answered from the tent-pole entry of the answer before it)
becomes a fix read after the question it pointed back at, never the bare
follow-up: as a phrasing "one" would match anything, and the teacher would not
know what it is."""

from __future__ import annotations

import asyncio

from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import RETURNS, SHIPPING, Teacher, upsert
from tests.trainer.builders import REVIEW, disliked, fixes_by_kind, forced_run, turn
from trainer import follow_ups

POLE = "faq-tent-pole-repair"
FOLLOW_UP = "can I rent one while it's being repaired?"


async def only_new_entry(stub) -> pb.Fix:
    """The one new-entry fix of a forced run."""
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED and done.counts.failed == 0, done.error_message
    (fix,) = (await fixes_by_kind(stub, done.run_id))[pb.FIX_KIND_NEW_ENTRY]
    return fix


async def test_an_unsure_follow_up_becomes_a_fix_read_after_the_question_it_pointed_back_at(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    await turn(interactions, "Do you sell tents?", "conv-pole", source="faq-tents")
    await turn(interactions, "My tent pole broke, can you fix it? I'm jane.doe@example.com", "conv-pole", source=POLE)
    # Not its context: a turn answered from another entry, an unsure turn that points
    # back at the same entry (it says no more), and a turn of another conversation.
    await turn(interactions, "Do you sell sleeping mats?", "conv-pole", source="faq-mats")
    await turn(interactions, "how much will that cost me?", "conv-pole", source=POLE, unsure=True)
    await turn(interactions, "Is the pole repair free?", "conv-other", source=POLE)
    hedged = await disliked(interactions, FOLLOW_UP, source=(POLE, 0.5), unsure=True,
                            answer="I'm not sure I understood, but this is what I know ...",
                            conversation_id="conv-pole")
    await turn(interactions, "Can you fix a zip too?", "conv-pole", source=POLE)  # later: no context either
    fix = await only_new_entry(stub)
    # Masked as every question the trainer reads: the earlier turn's e-mail address too.
    read = f"My tent pole broke, can you fix it? I'm [email] {FOLLOW_UP}"
    assert (fix.question, list(fix.interaction_ids)) == (read, [hedged]), fix
    assert trainer.teacher.asked == [read]


async def test_a_confident_follow_up_and_an_unsure_one_without_its_turn_keep_their_own_words(
        trainer_setup, interactions, knowledge):
    """Only an unsure answer was read in the conversation's light: a follow-up
    the bot answered on its own score stands alone, and an unsure answer whose
    entry answered no earlier turn of its conversation has nothing to be read after."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    await turn(interactions, "My tent pole broke, can you fix it?", "conv-pole", source=POLE)
    confident = await disliked(interactions, "Do you rent out tents?", source=(POLE, 0.6), conversation_id="conv-pole")
    await turn(interactions, "Do you sell kayaks?", "conv-kayak", source="faq-kayaks")
    alone = await disliked(interactions, "Can I hire one for the weekend?", unsure=True, source=(POLE, 0.5),
                           conversation_id="conv-kayak")
    no_conversation = await disliked(interactions, "Is that covered by the warranty?", unsure=True,
                                     source=(POLE, 0.5))
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    questions = {fix.interaction_ids[0]: fix.question
                 for fix in (await fixes_by_kind(stub, done.run_id))[pb.FIX_KIND_NEW_ENTRY]}
    assert questions == {confident: "Do you rent out tents?", alone: "Can I hire one for the weekend?",
                         no_conversation: "Is that covered by the warranty?"}


async def test_a_long_conversation_is_read_page_by_page_for_the_last_turn_it_pointed_back_at(
        trainer_setup, interactions, knowledge, monkeypatch):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    monkeypatch.setattr(follow_ups, "TURNS_PAGE", 2)
    await turn(interactions, "Do you repair tents?", "conv-long", source=POLE)
    for number in range(3):
        await turn(interactions, f"Do you sell tent number {number}?", "conv-long", source="faq-tents")
    await turn(interactions, "My tent pole broke, can you fix it?", "conv-long", source=POLE)  # the fifth of six
    await turn(interactions, "And sleeping mats?", "conv-long", source="faq-mats")
    await disliked(interactions, FOLLOW_UP, unsure=True, source=(POLE, 0.5), conversation_id="conv-long")
    fix = await asyncio.wait_for(only_new_entry(stub), 60)  # a listing that never moves on would hang
    assert fix.question == f"My tent pole broke, can you fix it? {FOLLOW_UP}"


async def test_the_earlier_question_is_cut_after_masking_at_a_word_within_the_bots_limit(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)

    async def read(follow_up: str, earlier: str, conversation_id: str) -> str:
        await turn(interactions, earlier, conversation_id, source=POLE)
        hedged = await disliked(interactions, follow_up, unsure=True, source=(POLE, 0.5),
                                conversation_id=conversation_id)
        fix = await only_new_entry(stub)
        assert list(fix.interaction_ids) == [hedged]
        return fix.question

    # At most 300 characters of a long earlier question, its newest words whole.
    long = "Tell me about tents. " + "Which one is lightest? " * 150 + "And the poles?"
    earlier = (await read(FOLLOW_UP, long, "conv-long")).removesuffix(f" {FOLLOW_UP}")
    assert long.endswith(earlier) and long[-len(earlier) - 1] == " "
    assert 300 - len("lightest? ") < len(earlier) <= 300
    # Masked before it is cut: a cut through the account number leaves none of its digits.
    iban = "My IBAN is DE89 3704 0044 0532 0130 00 " + " ".join(["pole"] * 56)  # the raw cut is inside it
    question = await read(FOLLOW_UP, iban, "conv-iban")
    assert not any(digits in question for digits in ("3704", "0044", "0532", "0130")), question
    # The phrasing is still a question the bot takes (4,000 characters): what is left
    # of the earlier question in the room there is, whole words only, and nothing without room.
    exactly = "Which size of tent pole do I need? " * 7 + "Mine is a 2019 Alder & Finch Trailhead two-person tent."
    assert len(exactly) == 300 and await read(FOLLOW_UP, exactly, "conv-300") == f"{exactly} {FOLLOW_UP}"
    pole = "My tent pole broke, can you fix it?"
    # Each a question of its own (the fold joins near-duplicates to the fix of an earlier run).
    for asked, room, left in (("How long does that take? ", 22, "broke, can you fix it?"),
                              ("Is it covered by the warranty? ", 14, "you fix it?"),
                              ("Do you have it in blue? ", 1, "L"), ("What does that cost me? ", 0, "")):
        follow_up = asked + "x" * (4_000 - 1 - room - len(asked))
        earlier = "Have you got that pole in size L" if left == "L" else pole
        assert await read(follow_up, earlier, f"conv-{room}") == f"{left} {follow_up}".strip(), room

"""A disliked follow-up the bot answered unsure ("can I rent one while it's
being repaired?", answered from the conversation's tent-pole topic) becomes a
fix read after the question it followed, never the bare follow-up: as a
phrasing "one" would match anything, and the teacher would not know what it is."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import RETURNS, SHIPPING, Teacher, upsert
from tests.trainer.builders import disliked, forced_run
from tests.trainer.test_triage import REVIEW, fixes_by_kind

POLE = "My tent pole broke, can you fix it? I'm jane.doe@example.com"
FOLLOW_UP = "can I rent one while it's being repaired?"


async def turn(interactions, question: str, conversation_id: str) -> str:
    """A turn of the conversation, logged and not rated."""
    return (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        user_query=question, bot_response="(an answer)", conversation_id=conversation_id)))).interaction.interaction_id


async def test_an_unsure_follow_up_becomes_a_fix_read_after_the_question_it_followed(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    # The question before the one it followed, and a turn in another conversation: neither is its context.
    await turn(interactions, "Do you sell tents?", "conv-pole")
    await turn(interactions, POLE, "conv-pole")
    await turn(interactions, "How do I return an item?", "conv-other")
    hedged = await disliked(interactions, FOLLOW_UP, source=("faq-tent-pole-repair", 0.5), unsure=True,
                            answer="I'm not sure I understood, but this is what I know ...",
                            conversation_id="conv-pole")
    await turn(interactions, "thanks", "conv-pole")  # a later turn is no context either
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    (fix,) = (await fixes_by_kind(stub, done.run_id))[pb.FIX_KIND_NEW_ENTRY]
    # Masked as every question the trainer reads: the earlier turn's e-mail address too.
    read = f"My tent pole broke, can you fix it? I'm [email] {FOLLOW_UP}"
    assert (fix.question, list(fix.interaction_ids)) == (read, [hedged]), fix
    assert trainer.teacher.asked == [read]


async def test_a_confident_follow_up_and_a_first_question_keep_their_own_words(
        trainer_setup, interactions, knowledge):
    """Only an unsure answer was read in the conversation's light: a follow-up
    the bot answered on its own score stands alone, and an unsure answer with no
    earlier turn (its conversation's first) has nothing to be read after."""
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)
    await turn(interactions, POLE, "conv-pole")
    confident = await disliked(interactions, "Do you rent out tents?", conversation_id="conv-pole")
    first = await disliked(interactions, "Can I hire a kayak for the weekend?", unsure=True,
                           source=("faq-shipping", 0.5), conversation_id="conv-kayak")
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    questions = {fix.interaction_ids[0]: fix.question
                 for fix in (await fixes_by_kind(stub, done.run_id))[pb.FIX_KIND_NEW_ENTRY]}
    assert questions == {confident: "Do you rent out tents?", first: "Can I hire a kayak for the weekend?"}


async def test_the_earlier_question_is_bounded_so_the_phrasing_is_still_a_question_the_bot_takes(
        trainer_setup, interactions, knowledge):
    stub, trainer = trainer_setup
    trainer.teacher, trainer.policy = Teacher(), REVIEW
    await upsert(knowledge, RETURNS, SHIPPING)

    async def fix_of(follow_up: str, earlier: str, conversation_id: str) -> pb.Fix:
        await turn(interactions, earlier, conversation_id)
        hedged = await disliked(interactions, follow_up, unsure=True, source=("faq-shipping", 0.5),
                                conversation_id=conversation_id)
        done = await forced_run(stub)
        assert done.state == pb.RUN_STATE_SUCCEEDED and done.counts.failed == 0, done.error_message
        (fix,) = (await fixes_by_kind(stub, done.run_id))[pb.FIX_KIND_NEW_ENTRY]
        assert list(fix.interaction_ids) == [hedged]
        return fix

    # The newest 300 characters of a long earlier question.
    short = await fix_of(FOLLOW_UP, "Tell me about tents. " + "Which one is lightest? " * 150 + "And the poles?",
                         "conv-short")
    assert short.question.endswith(f"Which one is lightest? And the poles? {FOLLOW_UP}")
    assert len(short.question) == 300 + 1 + len(FOLLOW_UP)
    # Never past the bot's 4,000 characters for a question: what is left of them, and nothing when none is.
    long_follow_up = "can I rent one while it's being repaired? " + "x" * 3_935  # 3,977 characters
    longer = await fix_of(long_follow_up, "My tent pole broke, can you fix it?", "conv-long")
    assert longer.question == f"broke, can you fix it? {long_follow_up}" and len(longer.question) == 4_000
    longest = await fix_of("y" * 4_000, "My tent pole broke, can you fix it?", "conv-longest")
    assert longest.question == "y" * 4_000

"""What the trainer's tests share: disliked and liked interactions as the bot
logs them (with the sources it answered from) and as customers rate them (a
reason, a comment), following a run, a teacher held until released, and a run
that writes one fix of each kind."""

from __future__ import annotations

import asyncio

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as pb
from tests.support import BRAND, RETURNS, SHIPPING, Teacher, upsert
from trainer.loop import Policy

# An entry beside the returns entries of the gate tests, whose liked questions sit close to theirs.
GIFT_CARDS_ENTRY = bpb.KnowledgeEntry(
    entry_id="gift-cards", kind=bpb.ENTRY_KIND_QA, title="Gift cards", questions=["Can I buy a gift card?"],
    content="Gift cards of 25 to 200 euros are sold in every shop and online.", source="faq")

# Every fix proposed, none published until a reviewer approves it.
REVIEW = Policy(threshold=1, publish="review", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)

DONT_KNOW = "I don't know that one; please contact our care team."


async def disliked(interactions, question: str, *, answer: str = DONT_KNOW, source: tuple[str, float] | None = None,
                   reason: int = ipb.FEEDBACK_REASON_NOT_RELEVANT, comment: str = "", unsure: bool = False,
                   conversation_id: str = "") -> str:
    """Logs `question` answered with `answer` from `source` (entry id, score; None: the bot did not
    know; `unsure`: a hedged answer) in `conversation_id`, disliked with `reason` and `comment`;
    returns the interaction id."""
    sources = [ipb.KnowledgeSource(entry_id=source[0], title=source[0], score=source[1])] if source else []
    created = (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        user_query=question, bot_response=answer, sources=sources, unsure=unsure,
        conversation_id=conversation_id)))).interaction
    await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(
        interaction_id=created.interaction_id, rating=ipb.RATING_DISLIKE, reason=reason, comment=comment))
    return created.interaction_id


async def liked(interactions, question: str, source: str) -> str:
    """Logs `question` answered from entry `source` and liked; returns the interaction id."""
    created = (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        user_query=question, bot_response="(the entry's answer)",
        sources=[ipb.KnowledgeSource(entry_id=source, title=source, score=0.6)])))).interaction
    await interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(interaction_id=created.interaction_id,
                                                                rating=ipb.RATING_LIKE))
    return created.interaction_id


async def finished(stub, run_id: str) -> pb.Run:
    """The run once it is no longer RUNNING (GetRun, polled)."""
    for _ in range(600):
        run = (await stub.GetRun(pb.GetRunRequest(run_id=run_id))).run
        if run.state != pb.RUN_STATE_RUNNING:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError("the run did not finish")


async def forced_run(stub) -> pb.Run:
    """A run started with `force`, once it has ended."""
    return await finished(stub, (await stub.StartRun(pb.StartRunRequest(force=True))).run.run_id)


class HeldTeacher(Teacher):
    """Writes nothing until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def stream(self, messages, max_tokens):
        await self.release.wait()
        async for piece in super().stream(messages, max_tokens):
            yield piece


async def kinds_of_fix(stub, trainer, interactions, knowledge, policy, comment: str) -> dict[int, pb.Fix]:
    """A forced run under `policy` that writes one fix of each kind (`comment`:
    the customer's on the stale shipping answer); the fixes by kind."""
    trainer.teacher, trainer.policy = Teacher(), policy
    await upsert(knowledge, RETURNS, SHIPPING)
    await disliked(interactions, "How do I return an item I bought?", source=("faq-shipping", 0.5),
                   answer="Standard shipping takes 3-5 business days.")
    await disliked(interactions, "How long does shipping take?", source=("faq-shipping", 0.77),
                   answer="Standard shipping takes 3-5 business days.", reason=ipb.FEEDBACK_REASON_OUTDATED,
                   comment=comment)
    await disliked(interactions, "Do you rent out tents?")
    done = await forced_run(stub)
    assert done.state == pb.RUN_STATE_SUCCEEDED, done.error_message
    return {fix.kind: fix for fix in (await stub.ListFixes(pb.ListFixesRequest(run_id=done.run_id))).fixes}


class PausingTeacher(Teacher):
    """Answers at once, except for `question`, which waits for `release`
    (`waiting` is set once it does: the run is then inside that page)."""

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def stream(self, messages, max_tokens):
        if self.question in messages[-1].content:
            self.waiting.set()
            await self.release.wait()
        async for piece in super().stream(messages, max_tokens):
            yield piece


async def fixes_by_kind(stub, run_id: str = "") -> dict[int, list[pb.Fix]]:
    """The fixes (of one run, or all), by kind."""
    found: dict[int, list[pb.Fix]] = {}
    for fix in (await stub.ListFixes(pb.ListFixesRequest(run_id=run_id, page_size=100))).fixes:
        found.setdefault(fix.kind, []).append(fix)
    return found


async def turn(interactions, question: str, conversation_id: str, source: str = "", unsure: bool = False) -> str:
    """A turn of a conversation answered from entry `source` (none: the bot did not know), not rated."""
    sources = [ipb.KnowledgeSource(entry_id=source, title=source, score=0.6)] if source else []
    return (await interactions.CreateInteraction(ipb.CreateInteractionRequest(interaction=ipb.Interaction(
        user_query=question, bot_response="(an answer)", sources=sources, unsure=unsure,
        conversation_id=conversation_id)))).interaction.interaction_id

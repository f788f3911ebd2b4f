"""What the teacher is asked, word for word, under PROMPT_VERSION "fix-v2".

Every fix records the prompt version it was written with (its provenance), so
that a reviewer can tell which instructions produced an answer: the prompts of a
version must not change without a new version. The mutation run (scripts/mutate,
docs/testing.md) showed that no test read them; these do."""

from __future__ import annotations

import pytest

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendmodels.chat.base import Message
from trainer import loop
from trainer.judge import Hit

BRAND = "Alder & Finch"


class Recording:
    """A teacher that answers `answer` and keeps what it was asked."""

    model_id = "recording"

    def __init__(self, answer: str = " A revised answer. ") -> None:
        self.answer = answer
        self.asked: list[tuple[list[Message], int]] = []

    async def stream(self, messages, max_tokens):
        self.asked.append((list(messages), max_tokens))
        for word in self.answer.split(" "):
            yield word + " "


def disliked(question: str, comment: str = "", reason: int = ipb.FEEDBACK_REASON_OUTDATED,
             answer: str = "Delivery costs 5 euros.", source: str = "kb-generated") -> ipb.Interaction:
    return ipb.Interaction(user_query=question, bot_response=answer, feedback_comment=comment,
                           feedback_reason=reason, sources=[ipb.KnowledgeSource(entry_id=source)] if source else [])


def test_the_prompt_version_is_fix_v2():
    assert loop.PROMPT_VERSION == "fix-v2"


async def test_a_new_answer_is_asked_for_with_the_question_the_answer_disliked_and_the_known_facts():
    teacher = Recording()
    context = [Hit(bpb.KnowledgeEntry(title="Shipping", content="Standard delivery takes 3 days."), 0.7),
               Hit(bpb.KnowledgeEntry(title="Returns", content="Returns are free within 60 days."), 0.5)]
    answer = await loop.teach(teacher, BRAND, disliked("Do you rent tents?", "I asked about tents"), context)
    assert answer == "A revised answer."
    ((messages, max_tokens),) = teacher.asked
    assert max_tokens == 300
    assert messages == [
        Message("system", "You write customer-care answers for Alder & Finch: warm, clear, practical, at most four "
                          "sentences. Use the known facts; where they do not cover the question, say what the "
                          "customer should do to get help rather than inventing policies, prices or dates."),
        Message("user", "A customer asked: Do you rent tents?\nOur answer was disliked: Delivery costs 5 euros.\n"
                        "The customer's comment: I asked about tents\nKnown facts:\n"
                        "- Shipping: Standard delivery takes 3 days.\n- Returns: Returns are free within 60 days.\n\n"
                        "Write the improved answer."),
    ]


SHIPPING = Hit(bpb.KnowledgeEntry(entry_id="kb-shipping", title="Shipping", content="Standard delivery takes 3 days."),
               0.7)


@pytest.mark.parametrize(("answer", "source", "said"), [
    # Quoted (here with the hedge around it): named, its text is among the facts.
    ("I'm not sure I understood: Standard delivery takes 3 days. Ask a person.", "kb-shipping",
     'the known fact "Shipping" below'),
    # From that entry but not its text (a generated answer): as it was.
    ("Delivery is quick.", "kb-shipping", "Delivery is quick."),
    # Another entry's text, not among the facts: as it was.
    ("Standard delivery takes 3 days.", "kb-other", "Standard delivery takes 3 days."),
    ("I'm sorry, I don't know the answer to that. You can email us.", "", "we said we did not know"),
])
async def test_the_disliked_answer_is_named_when_it_quoted_a_known_fact(answer, source, said):
    teacher = Recording()
    await loop.teach(teacher, BRAND, disliked("Do you rent tents?", answer=answer, source=source), [SHIPPING])
    user = teacher.asked[0][0][1].content
    assert f"\nOur answer was disliked: {said}\nThe customer's comment:" in user
    assert user.count("Standard delivery takes 3 days.") == 1 + (said == answer and "Standard" in answer)


async def test_an_untitled_fact_is_not_named():
    teacher = Recording()
    untitled = Hit(bpb.KnowledgeEntry(entry_id="kb-shipping", content="Standard delivery takes 3 days."), 0.7)
    await loop.teach(teacher, BRAND, disliked("Do you rent tents?", answer="Standard delivery takes 3 days.",
                                              source="kb-shipping"), [untitled])
    assert "Our answer was disliked: Standard delivery takes 3 days.\n" in teacher.asked[0][0][1].content


async def test_with_no_facts_and_no_comment_the_prompt_says_so():
    teacher = Recording()
    await loop.teach(teacher, BRAND, disliked("Do you rent tents?"), [])
    user = teacher.asked[0][0][1].content
    assert "The customer's comment: no comment\nKnown facts:\n- (nothing relevant)\n\n" in user


async def test_a_revision_is_asked_for_with_the_current_answer_and_what_each_customer_said():
    teacher = Recording()
    entry = bpb.KnowledgeEntry(entry_id="kb-shipping", content="Delivery costs 5 euros.")
    items = [disliked(f"question {n}", comment=f"comment {n}" if n % 2 else "",
                      reason=ipb.FEEDBACK_REASON_INCORRECT if n else ipb.FEEDBACK_REASON_OUTDATED)
             for n in range(12)]
    assert await loop.revise(teacher, BRAND, entry, items) == "A revised answer."
    ((messages, max_tokens),) = teacher.asked
    assert max_tokens == 300
    evidence = "\n".join([f"- question {n} ({'incorrect' if n else 'outdated'}): "
                          f"{f'comment {n}' if n % 2 else 'no comment'}" for n in range(10)])
    assert messages == [
        Message("system", "You correct customer-care answers for Alder & Finch: warm, clear, practical, at most four "
                          "sentences. Keep what the current answer gets right; change what the customers show is "
                          "wrong, outdated or missing. Do not invent policies, prices or dates nobody stated."),
        Message("user", "A customer asked: question 0\nOur current answer: Delivery costs 5 euros.\n"
                        f"Customers who disliked it said:\n{evidence}\n\nWrite the corrected answer."),
    ]


async def test_a_teacher_that_writes_nothing_fails_the_question():
    with pytest.raises(ValueError, match="^the teacher wrote nothing$"):
        await loop.teach(Recording("   "), BRAND, disliked("Do you rent tents?"), [])

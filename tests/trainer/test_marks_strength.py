"""What a run marks on the questions it could not fix, pinned where the mutation
run (scripts/mutate, docs/testing.md) found a change that no test noticed. Real
interactions service and knowledge index."""

from __future__ import annotations

from mend.interactions.v1 import interactions_service_pb2 as ipb
from tests.support import BRAND, Teacher, dislike, processed
from trainer.loop import Policy, run_once

AUTO = Policy(threshold=2, publish="auto", covered_similarity=0.8, duplicate_similarity=0.7, brand=BRAND)


async def test_a_question_the_teacher_failed_is_marked_failed_with_no_entry(interactions, knowledge):
    failing, fine = await dislike(interactions, "Do you rent out tents?", "Do you sell gift cards?")
    counts = await run_once(interactions, knowledge, Teacher(fail_on="tents"), AUTO)
    assert (counts.failed, counts.fixed) == (1, 1)
    stored = await processed(interactions)
    assert (stored[failing].training_outcome, stored[failing].knowledge_entry_id) == (
        ipb.TRAINING_OUTCOME_FAILED, "")
    assert stored[fine].training_outcome == ipb.TRAINING_OUTCOME_FIXED and stored[fine].knowledge_entry_id

"""One run of the self-healing loop, as the scheduled Job runs it.

1. Read the disliked, unprocessed interactions through InteractionsService, page by page.
2. Below the feedback threshold: do nothing.
3. For each question, search the bot's index (k=3) and ask the judge
   (trainer/judge.py) whether a published entry already answers it: if so,
   mark it processed as COVERED.
4. Close to a fix written earlier in this run: add the question to that fix
   as another phrasing (near-duplicates become one fix).
5. Otherwise a teacher model writes an improved answer, upserted through the
   bot's KnowledgeService as a Q&A entry (source `self-healing-feedback`, with
   provenance), published or proposed per the publish policy.
6. Mark the interactions processed with their outcome and entry id, in batches.

Entry ids derive from the first interaction of a fix, so a run killed after
an upsert and started again rewrites the same entry instead of a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from opentelemetry import trace

from bot.llm.base import ChatModel, Message
from trainer.judge import Judge, SimilarityJudge
from mend.bot.v1 import bot_service_pb2 as bpb
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc

_log = logging.getLogger("trainer")
_tracer = trace.get_tracer("mend.trainer")
SOURCE = "self-healing-feedback"
PROMPT_VERSION = "fix-v1"
PAGE = 1000
MARK_BATCH = 500
MAX_ANSWER_TOKENS = 300


@dataclass
class Counts:
    read: int = 0
    gated: int = 0
    covered: int = 0
    fixed: int = 0
    proposed: int = 0
    failed: int = 0


@dataclass
class Fix:
    entry: bpb.KnowledgeEntry
    interaction_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    threshold: int
    publish: str  # "auto" | "review"
    covered_similarity: float
    duplicate_similarity: float
    brand: str = "Alder & Finch"


async def disliked(interactions: ipb_grpc.InteractionsServiceStub) -> AsyncIterator[ipb.Interaction]:
    token = ""
    while True:
        page = await interactions.ListInteractions(ipb.ListInteractionsRequest(
            feedback=ipb.FEEDBACK_FILTER_DISLIKED, processed_for_training=False, page_size=PAGE, page_token=token))
        for item in page.interactions:
            yield item
        token = page.next_page_token
        if not token:
            return


def _entry_id(first_interaction_id: str) -> str:
    return "fix-" + hashlib.sha256(first_interaction_id.encode()).hexdigest()[:16]


async def teach(teacher: ChatModel, brand: str, item: ipb.Interaction, context: list[bpb.KnowledgeHit]) -> str:
    known = "\n".join(f"- {hit.entry.title}: {hit.entry.content}" for hit in context) or "- (nothing relevant)"
    complaint = item.feedback_comment or "no comment"
    messages = [
        Message("system", f"You write customer-care answers for {brand}: warm, clear, practical, at most four "
                          "sentences. Use the known facts; where they do not cover the question, say what the "
                          "customer should do to get help rather than inventing policies, prices or dates."),
        Message("user", f"A customer asked: {item.user_query}\nOur answer was disliked: {item.bot_response}\n"
                        f"The customer's comment: {complaint}\nKnown facts:\n{known}\n\nWrite the improved answer."),
    ]
    return "".join([piece async for piece in teacher.stream(messages, MAX_ANSWER_TOKENS)]).strip()


async def run_once(interactions: ipb_grpc.InteractionsServiceStub, knowledge: bpb_grpc.KnowledgeServiceStub,
                   teacher: ChatModel, policy: Policy, run_id: str | None = None,
                   on_fixes: Callable[[list[Fix]], Awaitable[None]] | None = None,
                   judge: Judge | None = None) -> Counts:
    """One run. `on_fixes` records the fixes before any interaction is marked,
    so that every marked interaction's fix is on record for review and undo."""
    run_id = run_id or str(uuid.uuid4())
    judge = judge or SimilarityJudge(policy.covered_similarity)
    counts = Counts()
    with _tracer.start_as_current_span("mend.trainer.run") as span:
        items = [item async for item in disliked(interactions)]
        counts.read = len(items)
        span.set_attribute("mend.trainer.read", counts.read)
        if counts.read < policy.threshold:
            counts.gated = counts.read
            span.set_attribute("mend.trainer.gated", counts.gated)
            _log.info("below the feedback threshold; nothing to do",
                      extra={"read": counts.read, "threshold": policy.threshold})
            return counts
        status = bpb.ENTRY_STATUS_PUBLISHED if policy.publish == "auto" else bpb.ENTRY_STATUS_PROPOSED
        outcome = ipb.TRAINING_OUTCOME_FIXED if policy.publish == "auto" else ipb.TRAINING_OUTCOME_PROPOSED
        fixes: dict[str, Fix] = {}
        marks: list[ipb.ProcessedMark] = []
        for item in items:
            hits = (await knowledge.SearchKnowledge(bpb.SearchKnowledgeRequest(
                query=item.user_query, k=3,
                statuses=[bpb.ENTRY_STATUS_PUBLISHED, bpb.ENTRY_STATUS_PROPOSED]))).hits
            for hit in hits:
                # This question's own fix from a run that died before marking it:
                # adopt it (same id), so a re-run never writes a second one.
                if hit.entry.entry_id == _entry_id(item.interaction_id) and hit.entry.entry_id not in fixes:
                    adopted = bpb.KnowledgeEntry()
                    adopted.CopyFrom(hit.entry)
                    fixes[hit.entry.entry_id] = Fix(adopted, [i for i in adopted.provenance.interaction_ids
                                                              if i != item.interaction_id])
            own = [h for h in hits if h.entry.entry_id in fixes and
                   (h.score >= policy.duplicate_similarity or h.entry.entry_id == _entry_id(item.interaction_id))]
            published = [h for h in hits if h.entry.entry_id not in fixes
                         and h.entry.status == bpb.ENTRY_STATUS_PUBLISHED]
            covering = None if own else await judge.covering(item.user_query, published)
            if covering is not None:
                counts.covered += 1
                marks.append(ipb.ProcessedMark(interaction_id=item.interaction_id, outcome=ipb.TRAINING_OUTCOME_COVERED,
                                               knowledge_entry_id=covering.entry.entry_id, training_run_id=run_id))
                continue
            try:
                if own:
                    fix = fixes[own[0].entry.entry_id]
                    if item.user_query not in fix.entry.questions:
                        fix.entry.questions.append(item.user_query)
                else:
                    answer = await teach(teacher, policy.brand, item, [h for h in hits if h.entry.status ==
                                                                       bpb.ENTRY_STATUS_PUBLISHED])
                    if not answer:
                        raise ValueError("the teacher wrote nothing")
                    entry = bpb.KnowledgeEntry(
                        entry_id=_entry_id(item.interaction_id), kind=bpb.ENTRY_KIND_QA, title=item.user_query[:300],
                        content=answer, questions=[item.user_query], source=SOURCE, status=status,
                        provenance=bpb.Provenance(teacher_model=teacher.model_id, prompt_version=PROMPT_VERSION,
                                                  training_run_id=run_id, created_by="trainer"))
                    entry.provenance.create_time.FromDatetime(datetime.now(timezone.utc))
                    fix = fixes[entry.entry_id] = Fix(entry)
                fix.interaction_ids.append(item.interaction_id)
                del fix.entry.provenance.interaction_ids[:]
                fix.entry.provenance.interaction_ids.extend(fix.interaction_ids)
                # Written at once, so that later questions of this run find it.
                await knowledge.UpsertEntries(bpb.UpsertEntriesRequest(entries=[fix.entry]))
            except Exception as error:  # noqa: BLE001 - one bad question must not stop the run
                _log.warning("could not fix a question", extra={"error": f"{type(error).__name__}: {error}"[:300]})
                counts.failed += 1
                marks.append(ipb.ProcessedMark(interaction_id=item.interaction_id, outcome=ipb.TRAINING_OUTCOME_FAILED,
                                               training_run_id=run_id))
                continue
            if policy.publish == "auto":
                counts.fixed += 1
            else:
                counts.proposed += 1
            marks.append(ipb.ProcessedMark(interaction_id=item.interaction_id, outcome=outcome,
                                           knowledge_entry_id=fix.entry.entry_id, training_run_id=run_id))
        if on_fixes is not None and fixes:
            await on_fixes(list(fixes.values()))
        for start in range(0, len(marks), MARK_BATCH):
            await interactions.MarkProcessed(ipb.MarkProcessedRequest(marks=marks[start:start + MARK_BATCH]))
        for name, value in vars(counts).items():
            span.set_attribute(f"mend.trainer.{name}", value)
        _log.info("run finished", extra={"run_id": run_id, **vars(counts), "fixes": len(fixes)})
        return counts

"""How long the regression gate's replay takes at the size issue 12 names: a
regression set of 5,000 liked questions (banking77's train split, real
customer queries), against one entry per intent, through the public RPCs of
the real services (bench/heal_mesh.py: interactions, the bot with pgvector and
the int8 MiniLM embedder, the trainer).

Measured:
- `EvaluateKnowledge` cold (the bot embeds the 5,000 questions) and warm (its
  embedding memory has them, as in a run, which evaluates before and after);
- one gate replay: `ReplayKnowledge` of the 5,000 questions against 100
  fixes-to-be of 5 phrasings each (banking77 test questions), as a page with
  100 new fixes asks it.

    .venv/bin/python -m bench.replay_bench [--liked 5000] [--fixes 100]

Results: bench/results/replay.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

from bench.heal_bench import DATASETS, RESULTS, Progress, load, reference
from bench.heal_mesh import running_mesh
from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.trainer.v1 import trainer_service_pb2 as tpb

SOURCE = "replay-bench"


async def main_async(liked: int, fixes: int, concurrency: int, datasets: Path = DATASETS) -> dict:
    train, test = load("banking77", datasets)
    intents = sorted(train)
    async with running_mesh() as mesh:
        entries = [bpb.KnowledgeEntry(entry_id=f"intent-{n}", kind=bpb.ENTRY_KIND_QA, questions=[train[i][0]],
                                      content=reference(i), source=SOURCE, status=bpb.ENTRY_STATUS_PUBLISHED)
                   for n, i in enumerate(intents)]
        await mesh.knowledge.UpsertEntries(bpb.UpsertEntriesRequest(entries=entries), timeout=120)
        # The liked questions, round robin over the intents so every entry has some.
        questions = [(f"intent-{n}", train[i][k]) for k in range(1, 200) for n, i in enumerate(intents)
                     if k < len(train[i])][:liked]
        slots = asyncio.Semaphore(concurrency)
        progress = Progress("liked interactions", len(questions), quiet=False)

        async def like(entry_id: str, question: str) -> None:
            async with slots:
                created = (await mesh.interactions.CreateInteraction(ipb.CreateInteractionRequest(
                    interaction=ipb.Interaction(interaction_id=str(uuid.uuid4()), user_query=question,
                                                bot_response=reference(entry_id),
                                                sources=[ipb.KnowledgeSource(entry_id=entry_id, title=entry_id,
                                                                             score=0.5)])))).interaction
                await mesh.interactions.SubmitFeedback(ipb.SubmitFeedbackRequest(
                    interaction_id=created.interaction_id, rating=ipb.RATING_LIKE))
            progress.step()

        await asyncio.gather(*(like(e, q) for e, q in questions))
        timings: dict[str, float] = {}
        evaluations = []
        for name in ("evaluate_cold_s", "evaluate_warm_s"):
            started = time.perf_counter()
            evaluation = (await mesh.trainer.EvaluateKnowledge(tpb.EvaluateKnowledgeRequest(), timeout=600)).evaluation
            timings[name] = round(time.perf_counter() - started, 2)
            evaluations.append(evaluation)
            print(f"  {name}: {timings[name]} s ({evaluation.questions} questions, accuracy "
                  f"{evaluation.accuracy:.3f})", flush=True)
        changes = [bpb.KnowledgeEntry(entry_id=f"fix-{n}", kind=bpb.ENTRY_KIND_QA, content="An answer.",
                                      questions=test[intents[n % len(intents)]][5 * (n // len(intents)):][:5],
                                      source=SOURCE) for n in range(fixes)]
        started = time.perf_counter()
        replayed = (await mesh.knowledge.ReplayKnowledge(bpb.ReplayKnowledgeRequest(
            queries=[q for _, q in questions], changes=changes), timeout=600)).results
        timings["gate_replay_s"] = round(time.perf_counter() - started, 2)
        taken = sum(1 for (entry_id, _), r in zip(questions, replayed, strict=True)
                    if r.answered and r.entry_id == entry_id and r.overtaken_by)
        print(f"  gate replay against {fixes} fixes x 5 phrasings: {timings['gate_replay_s']} s; it would take "
              f"{taken} of the right answers", flush=True)
    evaluation = evaluations[-1]
    return {"liked": len(questions), "entries": len(entries), "fixes": fixes, "timing_s": timings,
            "regression_set": evaluation.questions, "right": evaluation.right,
            "accuracy": round(evaluation.accuracy, 4), "gate_would_take": taken,
            "machine": {"cpus": os.cpu_count(), "load_avg_1m_after": round(os.getloadavg()[0], 2)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--liked", type=int, default=5000)
    parser.add_argument("--fixes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--datasets-dir", default=str(DATASETS))
    args = parser.parse_args(argv)
    report = asyncio.run(main_async(args.liked, args.fixes, args.concurrency, Path(args.datasets_dir)))
    path = RESULTS / "replay.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["timing_s"]), f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

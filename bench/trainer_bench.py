"""Benchmark of one trainer run: `python -m bench.trainer_bench [--interactions N] [--runs R]`.

N disliked, unprocessed interactions (distinct questions from 70 templates,
loaded with SQL), the real interactions service and the real knowledge index
(pgvector, MiniLM) in this process, and a teacher double that answers at once:
wall time of `run_once`, the RPCs it made and how long it waited on each
method, where the bot's time went (embedding), and the machine's load
average, since other work on the machine skews the numbers. Each of the R runs
starts from a fresh database. Results: bench/results/trainer.json for N=10,000,
bench/results/trainer_N.json otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from pgvector.asyncpg import register_vector

from bot.__main__ import KNOWLEDGE_SERVICE
from bot.__main__ import migrate as migrate_bot
from bot.knowledge import Knowledge
from bot.knowledge_service import KnowledgeService
from bot.vectorstores.pgvector_store import PgVectorStore
from interactions.__main__ import SERVICE_NAME
from interactions.__main__ import migrate as migrate_interactions
from interactions.service import InteractionsService
from mend.bot.v1 import bot_service_pb2_grpc as bpb_grpc
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit import database
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, start_server
from mendmodels.embeddings.local_minilm import LocalMiniLM
from trainer.loop import Policy, run_once

BRAND = "Alder & Finch"  # the teacher's brand in these runs

RESULTS = Path(__file__).resolve().parent / "results"
TOPICS = ["tent", "backpack", "jacket", "boots", "stove", "sleeping bag", "headlamp", "gift card", "parcel", "order"]
ASKS = ["Can I rent a {}", "Do you repair a {}", "Is there a discount on a {}", "How heavy is the {}",
        "What colour options for the {}", "Is the {} in stock in Norway", "Can I engrave a {}"]


class FastTeacher:
    model_id = "fast-double"

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, messages, max_tokens):
        self.calls += 1
        yield "A fixed improved answer for benchmarking."


class TimedEmbedder:
    """The embedder, timed: what the bot spent embedding (texts its memory did not hold)."""

    def __init__(self, inner: LocalMiniLM) -> None:
        self.inner = inner
        self.model_id, self.dimension = inner.model_id, inner.dimension
        self.texts = 0
        self.seconds = 0.0

    async def embed(self, texts):
        started = time.perf_counter()
        try:
            return await self.inner.embed(texts)
        finally:
            self.texts += len(texts)
            self.seconds += time.perf_counter() - started


class CountCalls(grpc.aio.UnaryUnaryClientInterceptor):
    """Counts the RPCs by method, and the time the run waited on each method."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()

    async def intercept_unary_unary(self, continuation, details, request):
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        self.calls[method] += 1
        started = time.perf_counter()
        call = await continuation(details, request)
        await call
        self.seconds[method] += time.perf_counter() - started
        return call


class TimedStore(PgVectorStore):
    """The pgvector store, with the time its batch searches took."""

    search_seconds = 0.0

    async def search_many(self, queries):
        started = time.perf_counter()
        try:
            return await super().search_many(queries)
        finally:
            self.search_seconds += time.perf_counter() - started


async def main(count: int, workers: int) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mend-trainer-bench-") as home:
        server = EmbeddedPostgres(home=Path(home), port=54393)
        url = await asyncio.to_thread(server.start)
        try:
            await ensure_database(url)
            await migrate_interactions(url)
            await migrate_bot(url)
            pool = await database.create_pool(url, 10, init=register_vector)
            questions = [f"{ASKS[n % len(ASKS)].format(TOPICS[(n // len(ASKS)) % len(TOPICS)])} number {n}?"
                         for n in range(count)]
            await pool.execute(
                """INSERT INTO interactions (interaction_id, user_query, bot_response, feedback, feedback_time)
                   SELECT gen_random_uuid(), q, 'I don''t know.', -1, now() FROM unnest($1::text[]) AS q""", questions)
            embedder = TimedEmbedder(LocalMiniLM(workers=workers))
            store = TimedStore(pool, embedder.model_id, embedder.dimension)
            await store.prepare()
            running = await start_server([
                Registration(InteractionsService(pool, PageTokens(b"bench-page-token-secret")),
                             ipb_grpc.add_InteractionsServiceServicer_to_server, SERVICE_NAME),
                Registration(KnowledgeService(Knowledge(pool, store, embedder), PageTokens(b"bench-page-token-secret")),
                             bpb_grpc.add_KnowledgeServiceServicer_to_server, KNOWLEDGE_SERVICE)], "127.0.0.1:0")
            counter, teacher = CountCalls(), FastTeacher()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=[counter]) as channel:
                started = time.perf_counter()
                counts = await run_once(ipb_grpc.InteractionsServiceStub(channel),
                                        bpb_grpc.KnowledgeServiceStub(channel), teacher,
                                        Policy(5, "review", 0.8, 0.8, BRAND))
                wall = time.perf_counter() - started
            fixes = await pool.fetchval("SELECT count(*) FROM knowledge_entries WHERE source = 'self-healing-feedback'")
            keys = await pool.fetchval("SELECT count(*) FROM knowledge_vectors")
            await running.stop(0)
            await pool.close()
        finally:
            server.stop()
    return {"interactions": count, "wall_s": round(wall, 1), "per_interaction_ms": round(wall / count * 1000, 1),
            "rpcs": dict(counter.calls), "rpcs_total": sum(counter.calls.values()),
            "rpc_wait_s": {method: round(seconds, 1) for method, seconds in counter.seconds.items()},
            "bot_embedding": {"texts": embedder.texts, "seconds": round(embedder.seconds, 1), "workers": workers},
            "bot_vector_search_s": round(store.search_seconds, 1),
            "counts": vars(counts), "fixes": fixes, "keys_indexed": keys, "teacher_calls": teacher.calls,
            "machine": {"cpus": os.cpu_count(), "load_avg_1m_before": round(load_before[0], 2),
                        "load_avg_1m_after": round(os.getloadavg()[0], 2)}}


def run(count: int, runs: int, workers: int) -> dict:
    results = []
    for _ in range(runs):
        results.append(asyncio.run(main(count, workers)))
        print(json.dumps(results[-1]), flush=True)
    walls = [r["wall_s"] for r in results]
    return {"interactions": count, "runs": runs, "wall_s_median": statistics.median(walls),
            "wall_s_min": min(walls), "wall_s_max": max(walls), "results": results}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--embed-workers", type=int, default=2, help="LocalMiniLM workers (its default: 2)")
    parser.add_argument("--out", help="results file name in bench/results (default: by size)")
    args = parser.parse_args()
    summary = run(args.interactions, args.runs, args.embed_workers)
    default = "trainer.json" if args.interactions == 10_000 else f"trainer_{args.interactions}.json"
    path = RESULTS / (args.out or default)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))

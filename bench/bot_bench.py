"""Benchmark of the bot: `python -m bench.bot_bench`.

1. Retrieval at 10k and 100k entries: the pgvector store's search (HNSW),
   p50/p95 latency, and recall@5 against an exact (sequential) search over the
   same rows. Vectors: the sample knowledge base's real MiniLM embeddings as
   cluster centres, plus Gaussian noise, unit-normalised (embedding 100k real
   texts takes ~15 min here); queries are fresh noisy points of the same kind.
2. Chat overhead without the language model: embed the question, retrieve,
   record and deliver the exchange to a real interactions service
   (a question nothing in the index answers, so no model runs).
3. The embedded model: time to first token and decode speed for real
   questions about the sample knowledge base.
Results: printed and written to bench/results/bot.json; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pgvector.asyncpg import register_vector

from bot.__main__ import migrate as migrate_bot
from bot.chat import Chatbot, Retrieval
from bot.conversations import Conversations
from bot.dedup import Dedup
from bot.exchange import Delta
from bot.ingest import collect
from bot.knowledge import Knowledge
from bot.outbox import Outbox
from bot.persona import Persona
from bot.vectorstores.pgvector_store import PgVectorStore
from interactions.__main__ import migrate as migrate_interactions
from interactions.service import InteractionsService
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
from mendkit import clients, database
from mendkit.embedded_postgres import DEFAULT_HOME, EmbeddedPostgres, ensure_database
from mendkit.page_tokens import PageTokens
from mendkit.server import Registration, start_server
from mendmodels.chat.local_gguf import LocalGGUF, prepare
from mendmodels.embeddings.local_minilm import LocalMiniLM

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "bot.json"
SAMPLE = REPO / "knowledge" / "sample"
NOISE = 0.035  # per-dimension sigma: noisy points keep ~0.6 cosine to their centre, like paraphrases
QUESTIONS = ["How long do I have to return something?", "How much is express delivery?",
             "Can I pay in instalments?", "How do I look after a down sleeping bag?",
             "Do you offer a student discount?"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(seconds, 0.5) * 1000, 2), "p95_ms": round(percentile(seconds, 0.95) * 1000, 2)}


def noisy(centres: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    points = centres[rng.integers(0, len(centres), count)] + rng.normal(0, NOISE, (count, centres.shape[1]))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


async def load_vectors(pool, vectors: np.ndarray, space: str) -> None:
    """Bulk-loads synthetic entries and their vectors with COPY."""
    await pool.execute("TRUNCATE knowledge_entries CASCADE")
    ids = [f"bench-{n}" for n in range(len(vectors))]
    async with pool.acquire() as connection:
        await connection.copy_records_to_table(
            "knowledge_entries", columns=["entry_id", "kind", "content", "source", "status"],
            records=[(i, "article", "synthetic", "bench", "published") for i in ids])
        for start in range(0, len(ids), 10_000):
            await connection.copy_records_to_table(
                "knowledge_vectors",
                columns=["space", "entry_id", "key_no", "key_text", "status", "source", "embedding"],
                records=[(space, ids[n], 0, "", "published", "bench", vectors[n])
                         for n in range(start, min(start + 10_000, len(ids)))])
            print(f"  loaded {min(start + 10_000, len(ids)):,} / {len(ids):,} vectors", flush=True)


async def bench_retrieval(pool, embedder: LocalMiniLM, sizes: list[int], queries: int) -> list[dict]:
    rng = np.random.default_rng(7)
    centres = embedder.embed_sync([key for entry in collect([SAMPLE], "bench") for key in entry.retrieval_keys])
    results = []
    for size in sizes:
        print(f"retrieval over {size:,} entries:", flush=True)
        store = PgVectorStore(pool, f"bench-{size}", embedder.dimension)
        await pool.execute("DROP INDEX IF EXISTS " + store_index(store))
        await load_vectors(pool, noisy(centres, size, rng), f"bench-{size}")
        started = time.perf_counter()
        await store.prepare()  # builds the HNSW index over the loaded rows
        build_s = time.perf_counter() - started
        await pool.execute("ANALYZE knowledge_vectors")
        probes = noisy(centres, queries, rng)
        for probe in probes[:10]:
            await store.search(probe, 5, ["published"], None)  # warm-up
        times, recalls = [], []
        for probe in probes:
            started = time.perf_counter()
            hits = await store.search(probe, 5, ["published"], None)
            times.append(time.perf_counter() - started)
            exact = await pool.fetch(
                f"""SELECT entry_id FROM knowledge_vectors WHERE space = $2
                    ORDER BY (embedding::vector({embedder.dimension}) <=> $1::vector({embedder.dimension}))
                             + 0 LIMIT 5""", probe, f"bench-{size}")  # "+ 0": no index can serve it: exact
            recalls.append(len({h.entry_id for h in hits} & {r["entry_id"] for r in exact}) / 5)
        result = {"entries": size, "queries": queries, "index_build_s": round(build_s, 1),
                  **summary(times), "recall_at_5": round(statistics.mean(recalls), 3)}
        print(f"  {result}", flush=True)
        results.append(result)
        await pool.execute("DROP INDEX IF EXISTS " + store_index(store))
    await pool.execute("TRUNCATE knowledge_entries CASCADE")
    return results


def store_index(store: PgVectorStore) -> str:
    from bot.vectorstores.pgvector_store import _index_name

    return _index_name(store._space)


class Silent:
    """A model that is never called: the overhead run asks only unanswerable questions."""

    model_id = "none"

    async def stream(self, messages, max_tokens):
        raise AssertionError("the overhead benchmark must not reach the model")
        yield ""


async def bench_chat(pool, knowledge: Knowledge, model, interactions_address: str, runs: int) -> dict:
    async with clients.insecure_channel(interactions_address) as channel:
        persona = Persona("Alder & Finch", "Mend", "warm", "email care@alderandfinch.example")
        outbox = Outbox(pool, ipb_grpc.InteractionsServiceStub(channel))
        dedup, conversations = Dedup(pool), Conversations(pool)
        overhead_bot = Chatbot(knowledge, Silent(), persona, outbox, dedup, conversations, Retrieval())
        times = []
        for n in range(runs + 10):
            started = time.perf_counter()
            async for _ in overhead_bot.answer(f"What is the capital city of Peru, question {n}?", "", None):
                pass
            if n >= 10:  # the first ones warm caches and connections
                times.append(time.perf_counter() - started)
        pending = await outbox.pending()
        model_bot = Chatbot(knowledge, model, persona, outbox, dedup, conversations, Retrieval())
        first_tokens, rates = [], []
        for question in QUESTIONS:
            started, first, pieces = time.perf_counter(), None, 0
            async for event in model_bot.answer(question, "", None):
                if isinstance(event, Delta):
                    first = first or time.perf_counter()
                    pieces += 1
            ended = time.perf_counter()
            first_tokens.append(first - started)
            rates.append((pieces - 1) / max(ended - first, 1e-6))
            print(f"  {question!r}: first token {first - started:.2f} s, {pieces} tokens", flush=True)
    return {"overhead": {"runs": runs, **summary(times), "undelivered": pending},
            "model": {"model": model.model_id, "questions": len(QUESTIONS),
                      "ttft_p50_s": round(statistics.median(first_tokens), 2),
                      "ttft_max_s": round(max(first_tokens), 2),
                      "tokens_per_s_median": round(statistics.median(rates), 1)}}


async def main(args: argparse.Namespace) -> dict:
    async with contextlib.AsyncExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mend-bot-bench-")))
        server = EmbeddedPostgres(home=home, port=args.pg_port)
        url = await asyncio.to_thread(server.start)
        stack.callback(server.stop)
        await ensure_database(url)
        await migrate_interactions(url)
        await migrate_bot(url)
        pool = await database.create_pool(url, 10, init=register_vector)
        stack.push_async_callback(pool.close)
        embedder = LocalMiniLM()
        retrieval = await bench_retrieval(pool, embedder, args.sizes, args.queries)

        store = PgVectorStore(pool, embedder.model_id, embedder.dimension)
        await store.prepare()
        knowledge = Knowledge(pool, store, embedder)
        from bot.ingest import ingest

        await ingest(knowledge, [SAMPLE])
        running = await start_server([Registration(
            InteractionsService(pool, PageTokens(b"bench-page-token-secret")),
            ipb_grpc.add_InteractionsServiceServicer_to_server,
            ipb.DESCRIPTOR.services_by_name["InteractionsService"].full_name)], "127.0.0.1:0")
        stack.push_async_callback(running.stop, 1)
        model = LocalGGUF(prepare(DEFAULT_HOME / "models"))
        print("chat:", flush=True)
        chat = await bench_chat(pool, knowledge, model, f"127.0.0.1:{running.port}", args.runs)
    return {"machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
            "retrieval": retrieval, "chat": chat}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200, help="chat overhead runs")
    parser.add_argument("--pg-port", type=int, default=54391)
    results = asyncio.run(main(parser.parse_args()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    sys.exit(0)

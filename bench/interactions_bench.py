"""Benchmark of the interactions service: `python -m bench.interactions_bench`.

One `python -m interactions` server process, as deployed, on its own embedded
PostgreSQL (or `--database-url`). A load generator in separate worker
processes (bench/loadgen.py) measures, at each concurrency, the no-op RPC
(`grpc.health.v1.Health/Check` on the same server: the baseline),
CreateInteraction and SubmitFeedback. Then ListInteractions walks the
trainer's queue in a table of `--rows` rows. Results are printed as Markdown
and written to bench/results/interactions.json; docs/benchmarks.md explains them.

The server checks bearer tokens as deployed (mendkit/access.py). Each run makes
a fresh admin token (`run_token`), gives the server only its SHA-256 (and the
digests of throwaway bot and trainer tokens, so that it makes no token files),
and sends it on every call it times, the load generator's included; it is
never printed or written to the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import loadgen
from interactions import repository
from interactions.__main__ import migrate
from mend.interactions.v1 import interactions_service_pb2 as pb
from mendkit.credentials import ADMIN, IDENTITIES, digest_of, digest_variable, token_variable
from mendkit.embedded_postgres import EmbeddedPostgres, ensure_database

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "interactions.json"

METHODS = {
    "no-op (Health/Check)": "/grpc.health.v1.Health/Check",
    "CreateInteraction": "/mend.interactions.v1.InteractionsService/CreateInteraction",
    "SubmitFeedback": "/mend.interactions.v1.InteractionsService/SubmitFeedback",
}
NOOP = "no-op (Health/Check)"
LIST_METHOD = "/mend.interactions.v1.InteractionsService/ListInteractions"
PAGE_SIZE = 100
FIRST_PAGE_REPEATS = 100
FEEDBACK_TARGETS = 10_000
LOAD_BATCHES = 10

# What the bot logs for one exchange: a ~80-character question, a ~600-character answer, 3 sources.
QUESTION = "Can I change the delivery address of an order that has already been dispatched?"
ANSWER = (
    "Yes, as long as the parcel has not reached the local depot yet. Open Orders in your account, "
    "choose the order and select Change delivery address; the courier is told within a few minutes and "
    "the new estimated delivery date appears on the tracking page. If the button is greyed out, the parcel "
    "is already out for delivery: you can then ask the courier to hold it at a pick-up point, or refuse it "
    "so that it comes back to us, after which we refund you within five working days. Addresses abroad "
    "cannot be changed after dispatch, as the customs papers name the original address."
)
SOURCES = [
    {"entry_id": "kb-delivery-address-change", "title": "Changing the delivery address of an order", "score": 0.91},
    {"entry_id": "kb-parcel-pickup-points", "title": "Holding a parcel at a pick-up point", "score": 0.84},
    {"entry_id": "kb-refund-times", "title": "How long refunds take", "score": 0.77},
]
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

# Rows of the list benchmark, a batch of ids $1..$2 at a time. The mix: 10%
# disliked (half of them already processed by the trainer), 5% liked, the rest
# unrated; timestamps spread over 90 days; three turns per conversation.
LOAD_SQL = """
INSERT INTO interactions (
    interaction_id, conversation_id, user_query, bot_response, sources, model, input_tokens, output_tokens,
    retrieval_ms, time_to_first_token_ms, total_ms, trace_id, "timestamp", feedback, feedback_reason,
    feedback_time, processed_for_training, training_outcome, knowledge_entry_id, training_run_id, processed_time)
SELECT gen_random_uuid(), 'conv-' || (g / 3), $3::text || ' #' || g, $4::text, $5::jsonb, $6::text,
       1200 + g % 500, 150 + g % 100, 40 + g % 30, 300 + g % 200, 1800 + g % 900, md5(g::text), ts,
       feedback, CASE WHEN feedback = -1 THEN 'incorrect' END,
       CASE WHEN feedback <> 0 THEN ts + interval '2 minutes' END,
       processed, CASE WHEN processed THEN 'fixed' END,
       CASE WHEN processed THEN 'kb-fix-' || g ELSE '' END, CASE WHEN processed THEN 'run-1' ELSE '' END,
       CASE WHEN processed THEN ts + interval '1 day' END
  FROM (SELECT g, now() - random() * interval '90 days' AS ts,
               CASE WHEN r < 0.10 THEN -1 WHEN r < 0.15 THEN 1 ELSE 0 END AS feedback,
               r < 0.05 AS processed
          FROM (SELECT g, random() AS r FROM generate_series($1::int, $2::int) AS g) AS numbered) AS drawn
"""


# --- requests, built inside the load generator's worker processes -------------------------------

def request_stream(rpc: str, feedback_ids: list[str], *, task: int, tasks: int) -> Iterator[bytes]:
    """Endless serialised requests for one load-generator task (see loadgen.Job)."""
    if rpc == NOOP:
        return itertools.repeat(health_pb2.HealthCheckRequest().SerializeToString())
    if rpc == "CreateInteraction":
        return _creates()
    # Each task votes on its own slice of ids, so no two calls wait on the same row lock.
    return _feedbacks(feedback_ids[task::tasks])


def _creates() -> Iterator[bytes]:
    request = pb.CreateInteractionRequest(
        interaction=pb.Interaction(
            conversation_id="conv-bench",
            user_query=QUESTION,
            bot_response=ANSWER,
            sources=[pb.KnowledgeSource(**source) for source in SOURCES],
            generation=pb.GenerationFacts(model=MODEL, input_tokens=1480, output_tokens=172, retrieval_ms=38,
                                          time_to_first_token_ms=420, total_ms=2150),
        )
    )
    while True:
        request.interaction.interaction_id = str(uuid.uuid4())  # the bot chooses a fresh id per exchange
        yield request.SerializeToString()


def _feedbacks(ids: list[str]) -> Iterator[bytes]:
    like = pb.SubmitFeedbackRequest(rating=pb.RATING_LIKE)
    dislike = pb.SubmitFeedbackRequest(rating=pb.RATING_DISLIKE, reason=pb.FEEDBACK_REASON_INCORRECT,
                                       comment="The courier said it was too late to change it.")
    for number, interaction_id in enumerate(itertools.cycle(ids)):
        request = like if number % 2 == 0 else dislike
        request.interaction_id = interaction_id
        yield request.SerializeToString()


# --- measurements -----------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(latencies_s)
    return {"p50_ms": round(percentile(values, 0.50) * 1000, 3), "p99_ms": round(percentile(values, 0.99) * 1000, 3)}


def tree_cpu_s(root: int | None) -> dict[int, float]:
    """User + system CPU seconds (all threads) of `root` and its direct children, by pid:
    the server, or the postmaster and its backends. Fields 4 and 14-15 of /proc/PID/stat."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if root is None or not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # the process may just have exited
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(entry.name) == root or int(fields[1]) == root:
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def machine_cpu_s() -> tuple[float, float]:
    """(busy, stolen) CPU seconds summed over all cores since boot. Stolen time is
    time the hypervisor ran someone else while this VM wanted a CPU."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


class CpuMeter:
    """Where the machine's CPU went between start() and stop(), in percent of one core.

    The machine is shared (other people's tests may run on it; the hypervisor may
    steal time), so besides the server, the load generator and our PostgreSQL
    (None with --database-url), it reports "other" (everything else, kernel
    network work included) and "stolen": when they are large, distrust the numbers."""

    def __init__(self, server_pid: int, postgres_pid: int | None) -> None:
        self.pids = {"server": server_pid, "postgres": postgres_pid}

    def start(self) -> None:
        self._before = {name: tree_cpu_s(pid) for name, pid in self.pids.items()}
        self._machine, self._started = machine_cpu_s(), time.perf_counter()

    def stop(self) -> None:
        self._seconds = time.perf_counter() - self._started
        self.used = {name: sum(cpu - self._before[name].get(pid, 0.0) for pid, cpu in tree_cpu_s(root).items())
                     for name, root in self.pids.items()}
        self._busy, self._stolen = (after - before
                                    for after, before in zip(machine_cpu_s(), self._machine, strict=True))

    def percent(self, loadgen_cpu_s: float) -> dict[str, int | None]:
        """The split; the load generator measures its own CPU time, over the same window."""
        used = self.used
        pct = lambda cpu_s: round(100 * cpu_s / self._seconds)  # noqa: E731
        return {
            "server": pct(used["server"]),
            "loadgen": pct(loadgen_cpu_s),
            "postgres": pct(used["postgres"]) if self.pids["postgres"] else None,
            "other": pct(self._busy - used["server"] - used["postgres"] - loadgen_cpu_s),
            "stolen": pct(self._stolen),
        }


async def run_cell(pool: ProcessPoolExecutor, args: argparse.Namespace, address: str, token: str, cpu: CpuMeter,
                   rpc: str, concurrency: int, feedback_ids: list[str]) -> dict:
    """`concurrency` calls in flight for `args.seconds`, split over the load-generator processes."""
    processes = min(args.loadgen_processes, concurrency)
    start_at = time.time() + args.warmup
    end_at = start_at + args.seconds
    loop = asyncio.get_running_loop()
    jobs = [
        loop.run_in_executor(pool, loadgen.run, loadgen.Job(
            address, METHODS[rpc], "bench.interactions_bench:request_stream", (rpc, feedback_ids[p::processes]),
            concurrency // processes + (p < concurrency % processes), start_at, end_at, token))
        for p in range(processes)
    ]
    await asyncio.sleep(start_at - time.time())
    cpu.start()
    await asyncio.sleep(end_at - time.time())
    cpu.stop()
    results: list[loadgen.Result] = await asyncio.gather(*jobs)
    latencies = [latency for result in results for latency in result.latencies_s]
    errors = sum((Counter(result.errors) for result in results), Counter())
    cell = {
        "rpc": rpc,
        "concurrency": concurrency,
        "loadgen_processes": processes,
        "calls": len(latencies),
        "calls_per_s": round(len(latencies) / args.seconds, 1),
        **(latency_summary(latencies) if latencies else {"p50_ms": None, "p99_ms": None}),
        "errors": dict(errors),
        "error_samples": {code: msg for result in results for code, msg in result.error_samples.items()},
        "cpu_pct": cpu.percent(sum(result.cpu_s for result in results)),
        # What one call costs the server: unlike calls/s, barely moved by other load on the machine.
        "server_cpu_ms_per_call": round(1000 * cpu.used["server"] / len(latencies), 3) if latencies else None,
    }
    print(f"  {rpc:<22} c={concurrency:<3} {cell['calls_per_s']:>8.1f} calls/s  p50 {cell['p50_ms']} ms  "
          f"p99 {cell['p99_ms']} ms  errors {dict(errors) or 0}  cpu% {cell['cpu_pct']}", flush=True)
    return cell


async def load_rows(connection: asyncpg.Connection, rows: int) -> float:
    """Bulk-loads `rows` interactions in batches, then VACUUM ANALYZE; returns seconds taken."""
    started = time.perf_counter()
    batch = max(1, math.ceil(rows / LOAD_BATCHES))
    for first in range(1, rows + 1, batch):
        last = min(rows, first + batch - 1)
        await connection.execute(LOAD_SQL, first, last, QUESTION, ANSWER, json.dumps(SOURCES), MODEL)
        print(f"  loaded {last:>9,} / {rows:,} rows  ({time.perf_counter() - started:.1f} s)", flush=True)
    # VACUUM too (not only ANALYZE): the state autovacuum would soon reach, with hint
    # bits set, so that the first list pages do not pay for writing them.
    await connection.execute("VACUUM (ANALYZE) interactions")
    # A checkpoint now, not in the middle of the RPC cells.
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await connection.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    print(f"  VACUUM ANALYZE done; {seconds:.1f} s in all", flush=True)
    return seconds


class _CaptureSql:
    """Stands in for the pool, so that repository.list_page hands over the exact SQL it runs."""

    async def fetch(self, sql: str, *params: object) -> list:
        self.sql, self.params = sql, params
        return []


async def explain_list(connection: asyncpg.Connection, after: tuple | None) -> list[str]:
    capture = _CaptureSql()
    where = repository.ListFilter(feedback=-1, processed_for_training=False, start_time=None, end_time=None,
                                  conversation_id="")
    await repository.list_page(capture, where, after, PAGE_SIZE + 1)  # the service asks for one extra row
    plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + capture.sql, *capture.params)
    return [row[0] for row in plan]


async def bench_list(connection: asyncpg.Connection, address: str, token: str, cpu: CpuMeter, pages: int) -> dict:
    """First page (repeated) and `pages` pages following next_page_token, timed over gRPC
    as admin (`token`). Responses are parsed after the timer stops: parsing is the client's cost."""
    request = pb.ListInteractionsRequest(
        feedback=pb.FEEDBACK_FILTER_DISLIKED, processed_for_training=False, page_size=PAGE_SIZE)
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(LIST_METHOD)
        metadata = loadgen.authorization(token)

        async def fetch(request: pb.ListInteractionsRequest) -> tuple[float, pb.ListInteractionsResponse]:
            started = time.perf_counter()
            raw = await call(request.SerializeToString(), timeout=60, metadata=metadata)
            return time.perf_counter() - started, pb.ListInteractionsResponse.FromString(raw)

        for _ in range(5):  # warm-up: connection, prepared statement, caches
            await fetch(request)
        cpu.start()
        client_cpu_before = time.process_time()
        first_times = [(await fetch(request))[0] for _ in range(FIRST_PAGE_REPEATS)]
        _, page = await fetch(request)
        response_bytes = page.ByteSize()
        page_times, rows_seen, deep_row = [], len(page.interactions), None
        while len(page_times) < pages and page.next_page_token:
            request.page_token = page.next_page_token
            deep_row = page.interactions[-1]  # the cursor of the page fetched next, explained below
            elapsed, page = await fetch(request)
            page_times.append(elapsed)
            rows_seen += len(page.interactions)
        cpu.stop()
        client_cpu = time.process_time() - client_cpu_before

    queue = await connection.fetchval(
        "SELECT count(*) FROM interactions WHERE feedback = -1 AND processed_for_training = false")
    deep_cursor = (deep_row.timestamp.ToDatetime(UTC), uuid.UUID(deep_row.interaction_id)) if deep_row else None
    result = {
        "queue_rows": queue,
        "first_page": {"pages": len(first_times), **latency_summary(first_times)},
        "following_pages": {"pages": len(page_times), "rows_reached": rows_seen,
                            **(latency_summary(page_times) if page_times else {})},
        "page_response_bytes": response_bytes,
        "cpu_pct": cpu.percent(client_cpu),  # over the timed fetches; this process is the load generator
        "explain_first_page": await explain_list(connection, None),
        "explain_deep_page": await explain_list(connection, deep_cursor) if deep_cursor else [],
    }
    result["uses_partial_index"] = all(
        any("interactions_training_queue" in line for line in plan)
        for plan in (result["explain_first_page"], result["explain_deep_page"]) if plan)
    return result


# --- set-up and tear-down ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_postgres(stack: contextlib.ExitStack) -> tuple[str, int]:
    """The URL and the postmaster's pid of a fresh PostgreSQL in a temporary MEND_HOME."""
    home = Path(tempfile.mkdtemp(prefix="mend-bench-"))
    stack.callback(shutil.rmtree, home, ignore_errors=True)
    server = EmbeddedPostgres(home=home, port=free_port())
    url = server.start()
    stack.callback(server.stop)
    return url, int((server.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


async def prepare_database(url: str) -> None:
    await ensure_database(url)
    await migrate(url)
    connection = await asyncpg.connect(url)
    try:
        if await connection.fetchval("SELECT EXISTS (SELECT 1 FROM interactions)"):
            sys.exit("the interactions table is not empty: point --database-url at a scratch database")
    finally:
        await connection.close()


def run_token() -> str:
    """A fresh admin token for one run: the benchmark's calls present it."""
    return secrets.token_urlsafe(32)


def credential_env(admin_token: str) -> dict[str, str]:
    """What tells a service who calls: the SHA-256 of `admin_token`, and of a throwaway
    token for every other identity (nobody calls as them here, and a service given no
    digest would make and keep tokens in MEND_HOME). Digests only, never a token itself."""
    tokens = {identity: admin_token if identity == ADMIN else secrets.token_urlsafe(32) for identity in IDENTITIES}
    return {digest_variable(identity): digest_of(token).hex() for identity, token in tokens.items()}


def start_server(stack: contextlib.ExitStack, url: str, admin_token: str) -> tuple[subprocess.Popen, str]:
    """`python -m interactions` on a free port, checking tokens, with `admin_token` for admin."""
    port = free_port()
    # No OTLP export even if the caller's environment asks for one: results must not
    # depend on a collector. Tracing itself still runs, as in production. No
    # credential of the caller's environment either: the run's own, below.
    credentials = {variable for identity in IDENTITIES
                   for variable in (token_variable(identity), digest_variable(identity))}
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("OTEL_EXPORTER") and key not in credentials}
    env.update(DATABASE_URL=url, INTERACTIONS_PORT=str(port), MEND_MIGRATE_ON_START="false",
               LOG_LEVEL="WARNING", **credential_env(admin_token))
    server = subprocess.Popen([sys.executable, "-m", "interactions"], env=env, cwd=REPO)
    stack.callback(stop_server, server)
    return server, f"127.0.0.1:{port}"


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # graceful: health NOT_SERVING, drain, close the pool
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if server.returncode not in (0, -signal.SIGTERM):
        print(f"warning: the interactions server exited with code {server.returncode}", file=sys.stderr)


SERVE_WAIT_S = 60.0


async def wait_until_serving(address: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVE_WAIT_S
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the interactions server exited with code {server.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the interactions server did not serve on {address} in {SERVE_WAIT_S} s")
            await asyncio.sleep(0.2)


def code_version() -> dict:
    """The commit measured, and tracked files changed on top of it (others may be editing)."""
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return run.stdout.rstrip() if run.returncode == 0 else "?"

    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "modified_files": [line[3:] for line in changed.splitlines()] if changed != "?" else []}


def machine_info(postgres_version: str) -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?"),
        "ram_gib": round(int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "asyncpg": asyncpg.__version__,
        "postgresql": postgres_version,
    }


# --- the run ----------------------------------------------------------------------------------

async def bench(args: argparse.Namespace, url: str, postgres_pid: int | None, server: subprocess.Popen,
                address: str, token: str, pool: ProcessPoolExecutor) -> dict:
    await wait_until_serving(address, server)
    cpu = CpuMeter(server.pid, postgres_pid)
    connection = await asyncpg.connect(url)
    try:
        results: dict = {
            "code": code_version(),
            "machine": machine_info(await connection.fetchval("SHOW server_version")),
            "settings": {"seconds": args.seconds, "warmup_s": args.warmup, "concurrency": args.concurrency,
                         "loadgen_processes": args.loadgen_processes, "rows": args.rows, "pages": args.pages,
                         "page_size": PAGE_SIZE, "database": "--database-url" if args.database_url else "embedded"},
        }
        # The big table first, so that creates and votes write into a realistically large table.
        print(f"ListInteractions over {args.rows:,} rows:", flush=True)
        results["load_seconds"] = round(await load_rows(connection, args.rows), 1)
        results["list"] = await bench_list(connection, address, token, cpu, args.pages)
        print_list(results["list"])

        feedback_ids = [str(row[0]) for row in await connection.fetch(
            "INSERT INTO interactions (interaction_id, user_query, bot_response, sources) "
            "SELECT gen_random_uuid(), $1::text, $2::text, $3::jsonb FROM generate_series(1, $4::int) "
            "RETURNING interaction_id", QUESTION, ANSWER, json.dumps(SOURCES), FEEDBACK_TARGETS)]
    finally:
        await connection.close()

    await asyncio.gather(*(asyncio.wrap_future(pool.submit(loadgen.ready)) for _ in range(args.loadgen_processes)))
    print(f"RPCs, {args.seconds:g} s per cell after {args.warmup:g} s of warm-up:", flush=True)
    cells = []
    for concurrency in args.concurrency:
        for rpc in METHODS:
            if server.poll() is not None:
                raise RuntimeError(f"the interactions server exited with code {server.returncode}")
            cells.append(await run_cell(pool, args, address, token, cpu, rpc, concurrency, feedback_ids))
    noop = {cell["concurrency"]: cell["calls_per_s"] for cell in cells if cell["rpc"] == NOOP}
    for cell in cells:
        cell["pct_of_noop"] = round(100 * cell["calls_per_s"] / max(noop[cell["concurrency"]], 1e-9), 1)
    results["rpc"] = cells
    results["aims"] = {
        "create_at_least_60_pct_of_noop": all(
            cell["pct_of_noop"] >= 60 for cell in cells if cell["rpc"] == "CreateInteraction"),
        "list_page_p50_under_5_ms": results["list"]["first_page"]["p50_ms"] < 5
        and results["list"]["following_pages"].get("p50_ms", 0) < 5,
    }
    return results


def print_list(result: dict) -> None:
    print(f"\n{result['queue_rows']:,} disliked, unprocessed rows; plans (first lines):")
    for name in ("explain_first_page", "explain_deep_page"):
        print(f"  {name}:")
        for line in result[name][:6]:
            print(f"    {line}")
    print(f"  partial index interactions_training_queue used: {result['uses_partial_index']}\n", flush=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu(pct: dict) -> str:
    return " / ".join("-" if pct[key] is None else str(pct[key])
                      for key in ("server", "loadgen", "postgres", "other", "stolen"))


def markdown(results: dict) -> str:
    lines = [
        "| RPC | concurrency | calls/s | % of no-op | p50 ms | p99 ms | errors | server CPU ms/call "
        "| CPU %: server / load gen / PostgreSQL / other / stolen |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cell in results["rpc"]:
        lines.append(
            f"| {cell['rpc']} | {cell['concurrency']} | {cell['calls_per_s']:,.0f} | {cell['pct_of_noop']:.0f}% "
            f"| {_ms(cell['p50_ms'])} | {_ms(cell['p99_ms'])} | {sum(cell['errors'].values())} "
            f"| {_ms(cell['server_cpu_ms_per_call'])} | {_cpu(cell['cpu_pct'])} |")
    listing = results["list"]
    lines += [
        "",
        f"| ListInteractions (disliked, unprocessed, page_size={PAGE_SIZE}), {results['settings']['rows']:,} rows "
        "| pages | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        f"| first page, repeated | {listing['first_page']['pages']} | {listing['first_page']['p50_ms']:.2f} "
        f"| {listing['first_page']['p99_ms']:.2f} |",
    ]
    following = listing["following_pages"]
    if following["pages"]:
        lines.append(f"| next pages, following next_page_token (to row {following['rows_reached']:,}) "
                     f"| {following['pages']} | {following['p50_ms']:.2f} | {following['p99_ms']:.2f} |")
    lines.append(f"\nCPU % while listing: server / client / PostgreSQL / other / stolen: {_cpu(listing['cpu_pct'])}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.interactions_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per RPC cell (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each cell (default 2)")
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16, 64],
                        help="comma-separated in-flight calls per cell (default 1,16,64)")
    parser.add_argument("--loadgen-processes", type=int, default=1,
                        help="load-generator processes sharing each cell's concurrency (default 1; see docs)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the list benchmark (default 1000000)")
    parser.add_argument("--pages", type=int, default=200, help="pages to follow with next_page_token (default 200)")
    parser.add_argument("--database-url", default="",
                        help="an empty, scratch PostgreSQL database instead of a temporary embedded one")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help=f"JSON results (default {RESULTS.relative_to(REPO)})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # `kill PID` unwinds like Ctrl-C, so that the server and the database are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        url, postgres_pid = (args.database_url, None) if args.database_url else start_embedded_postgres(stack)
        asyncio.run(prepare_database(url))
        token = run_token()
        server, address = start_server(stack, url, token)
        # spawn, not fork: gRPC's threads do not survive a fork.
        pool = stack.enter_context(
            ProcessPoolExecutor(args.loadgen_processes, mp_context=multiprocessing.get_context("spawn")))
        results = asyncio.run(bench(args, url, postgres_pid, server, address, token, pool))
    print(markdown(results))
    print(f"aims met: {results['aims']}")
    errors = sum(sum(cell["errors"].values()) for cell in results["rpc"])
    for cell in results["rpc"]:
        for code, message in cell["error_samples"].items():
            print(f"ERROR {cell['rpc']} c={cell['concurrency']}: {cell['errors'][code]} x {code}: {message}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_suffix(".json.tmp")
    partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.replace(args.output)
    print(f"\nwrote {args.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the latency Envoy adds: `python -m bench.gateway_bench`.

One `python -m interactions` server on its own embedded PostgreSQL, and the
real edge in front of it (`python -m gateway_envoy run`, tracing off, the rate
limit raised out of the way). The same RPC, SubmitFeedback on one interaction
(an UPDATE in PostgreSQL), is called one at a time, round-robin, through three
paths in the same run, so that drift on the machine hits all three alike:

  direct          gRPC straight to the service (grpc.aio)
  envoy gRPC      gRPC through Envoy (the same grpc.aio client)
  envoy gRPC-web  gRPC-web through Envoy, as the browser does, from httpx (HTTP/1.1 keep-alive)
  envoy gRPC-web, lean client   the same bytes from a minimal asyncio HTTP/1.1 client

"Envoy gRPC minus direct" is the hop itself. The gRPC-web paths also carry a
different client than grpc's C core: httpx is a full-featured Python client,
so the lean client shows how much of its number is Envoy and how much is httpx.
Results: bench/results/gateway.json, docs/benchmarks.md.

The server checks bearer tokens as deployed: the direct path calls as admin,
with a token made for the run (passed as call metadata, as the load generator
does, so no client interceptor sits on the timed path; never printed); through
Envoy the calls are public, as the page's are, and carry the conversation's token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import httpx

from bench.interactions_bench import (
    REPO,
    code_version,
    machine_info,
    percentile,
    prepare_database,
    run_token,
    start_embedded_postgres,
    start_server,
    wait_until_serving,
)
from bench.loadgen import authorization
from gateway_envoy import grpc_web
from mend.interactions.v1 import interactions_service_pb2 as pb
from mend.interactions.v1 import interactions_service_pb2_grpc as pb_grpc
from mendkit.conversation_tokens import ConversationTokens
from tests.support import running_edge

RESULTS = REPO / "bench" / "results" / "gateway.json"
FEEDBACK = "/mend.interactions.v1.InteractionsService/SubmitFeedback"
SECRET = "gateway-bench-secret-not-for-production"


class LeanGrpcWebClient:
    """One keep-alive HTTP/1.1 connection, the request written in one piece and
    the response read by Content-Length or chunks: as little Python as a
    gRPC-web call can cost."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def __aenter__(self) -> LeanGrpcWebClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.writer.close()

    async def call(self, method: str, request: bytes) -> grpc_web.Reply:
        body = grpc_web.frame(request)
        self.writer.write((f"POST {method} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                           f"content-type: {grpc_web.CONTENT_TYPE}\r\nx-grpc-web: 1\r\n"
                           f"content-length: {len(body)}\r\n\r\n").encode() + body)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = httpx.Headers([tuple(part.strip() for part in line.split(":", 1)) for line in head[1:] if line])
        if "content-length" in headers:
            content = await self.reader.readexactly(int(headers["content-length"]))
        else:  # chunked
            content = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                content += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readexactly(2)
        return grpc_web.parse(content, status, headers)


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"calls": len(ordered), "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
            "p90_ms": round(percentile(ordered, 0.90) * 1000, 3), "p99_ms": round(percentile(ordered, 0.99) * 1000, 3)}


async def measure(direct_address: str, admin_token: str, edge_url: str, edge_address: str, calls: int,
                  warmup: int) -> dict:
    interaction_id = str(uuid.uuid4())
    as_admin = authorization(admin_token)  # the direct path's calls
    async with grpc.aio.insecure_channel(direct_address) as direct_channel, \
            grpc.aio.insecure_channel(edge_address) as edge_channel, httpx.AsyncClient() as web, \
            LeanGrpcWebClient(*edge_address.split(":")) as lean:
        direct = pb_grpc.InteractionsServiceStub(direct_channel)
        through_envoy = pb_grpc.InteractionsServiceStub(edge_channel)
        conversation_id = str(uuid.uuid4())
        await direct.CreateInteraction(pb.CreateInteractionRequest(interaction=pb.Interaction(
            interaction_id=interaction_id, conversation_id=conversation_id, user_query="Benchmark question",
            bot_response="Benchmark answer")), metadata=as_admin)
        # Through the gateway a vote needs its conversation's token, as the page sends it.
        token = ConversationTokens(SECRET.encode()).issue(conversation_id)
        request = pb.SubmitFeedbackRequest(interaction_id=interaction_id, rating=pb.RATING_LIKE,
                                           conversation_token=token)

        async def via_web() -> None:
            reply = await grpc_web.call(web, edge_url, FEEDBACK, request)
            if reply.grpc_status != 0:
                raise RuntimeError(f"gRPC-web call failed: {reply.grpc_status} {reply.grpc_message}")

        async def via_lean() -> None:
            reply = await lean.call(FEEDBACK, request.SerializeToString())
            if reply.grpc_status != 0:
                raise RuntimeError(f"gRPC-web call failed: {reply.grpc_status} {reply.grpc_message}")

        paths = {
            "direct": lambda: direct.SubmitFeedback(request, timeout=10, metadata=as_admin),
            "envoy gRPC": lambda: through_envoy.SubmitFeedback(request, timeout=10),
            "envoy gRPC-web": via_web,
            "envoy gRPC-web, lean client": via_lean,
        }
        timings: dict[str, list[float]] = {name: [] for name in paths}
        for round_number in range(warmup + calls):
            for name, call in paths.items():
                started = time.perf_counter()
                await call()
                if round_number >= warmup:
                    timings[name].append(time.perf_counter() - started)
            if round_number and round_number % 1000 == 0:
                print(f"gateway bench: {round_number}/{warmup + calls} rounds", flush=True)
    results = {name: summary(values) for name, values in timings.items()}
    for name in ("envoy gRPC", "envoy gRPC-web", "envoy gRPC-web, lean client"):
        results[name]["added_p50_ms"] = round(results[name]["p50_ms"] - results["direct"]["p50_ms"], 3)
        results[name]["added_p99_ms"] = round(results[name]["p99_ms"] - results["direct"]["p99_ms"], 3)
    return results


async def main(args: argparse.Namespace) -> dict:
    os.environ["MEND_PAGE_TOKEN_SECRET"] = SECRET  # the interactions server checks votes' tokens with it
    with contextlib.ExitStack() as stack:
        url, _ = start_embedded_postgres(stack)
        await prepare_database(url)
        admin_token = run_token()
        server, address = start_server(stack, url, admin_token)
        await wait_until_serving(address, server)
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mend-gateway-bench-")))
        async with running_edge(home, bot="127.0.0.1:9", interactions=address,
                                GATEWAY_RATE_LIMIT_PER_SECOND="1000000",
                                GATEWAY_RATE_LIMIT_PER_CLIENT_PER_SECOND="1000000") as edge:
            results = await measure(address, admin_token, edge.url, edge.address, args.calls, args.warmup)
    return {"rpc": "SubmitFeedback", "calls_per_path": args.calls, "warmup_rounds": args.warmup,
            "results": results, "code": code_version(), "machine": machine_info("embedded 18")}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per path")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured rounds first")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help=f"JSON results (default {RESULTS.relative_to(REPO)})")
    arguments = parser.parse_args()
    report = asyncio.run(main(arguments))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print("| path | p50 ms | p90 ms | p99 ms | added p50 | added p99 |\n| --- | --- | --- | --- | --- | --- |")
    for name, row in report["results"].items():
        print(f"| {name} | {row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} | "
              f"{row.get('added_p50_ms', '')} | {row.get('added_p99_ms', '')} |")

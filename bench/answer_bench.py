"""Answer quality on the sample knowledge: `python -m bench.answer_bench --mode quote|generate [--limit N]`.

    .venv/bin/python -m bench.answer_bench --mode quote
    .venv/bin/python -m bench.answer_bench --mode generate
    .venv/bin/python -m bench.answer_bench --mode generate --resume  # continues a stopped run
    .venv/bin/python -m bench.answer_bench --report  # re-writes answers.md from the results

Asks the questions of bench/data/answer_quality.jsonl through the bot's public
`Chat` RPC: the real ChatService on a grpc.aio server, built by the bot's own
`build_chatbot` from `Settings.from_env()` with MEND_ANSWER_MODE set by `--mode`
(everything else as the environment says: by default the embedded models),
pgvector in the embedded PostgreSQL, the real MiniLM embedder, the sample
knowledge ingested, and a real interactions service the exchanges are delivered
to. A follow-up's earlier questions are asked first under the same
conversation_id. In generate mode the embedded chat model answers (LocalGGUF).

Each answer (a follow-up's last one) is classified, in this order:
- **honest don't know**: the bot's don't-know answer (not grounded);
- **unsupported claim**: a `must_not` substring in the answer, or a number the
  answer states that no knowledge text and no question of the item contains;
- **right**: every `must_contain` fact present (a fact is a list of acceptable
  substrings; all matching is case-insensitive); for an out-of-scope item only
  when it has facts to contain (e.g. "we're online only" for a Berlin shop's
  opening hours), and a generated answer that says it does not know counts as
  don't know;
- **wrong source**: answered, not right, no claim found (for an out-of-scope
  item: answered from an entry that does not cover the question, without a
  claim we could detect).
A substring list cannot see every made-up claim: the answers are in the JSON to read.

Results: bench/results/answers_<mode>.json, and bench/results/answers.md (both
modes' tables). While it runs, each item's row is appended to
bench/results/answers_<mode>.partial.jsonl (removed once the run is complete),
so a stopped run keeps what it measured, is reported as partial and can be
resumed; the items are asked a category at a time in turn, so a partial run
has measured every category.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "knowledge" / "sample"
DATA = REPO / "bench" / "data" / "answer_quality.jsonl"
RESULTS = REPO / "bench" / "results"
CATEGORIES = ("answerable", "follow_up", "out_of_scope")
OUTCOMES = ("right", "unsupported_claim", "dont_know", "hedged", "wrong_source")
CALL_TIMEOUT_S = 600.0  # a generated answer on 2 busy cores can take a minute
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


# --- the set and its scoring (pure: tests/bench/test_answer_set.py checks the set with these) ---


@dataclass(frozen=True)
class Item:
    id: str
    category: str
    question: str
    # Each fact: acceptable substrings, any one of which states it.
    must_contain: tuple[tuple[str, ...], ...]
    must_not: tuple[str, ...]
    # Asked first, in the same conversation (follow-ups, and out-of-scope follow-ups).
    turns: tuple[str, ...] = ()
    about: str = ""


def load_items(path: Path = DATA) -> list[Item]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        try:
            items.append(Item(id=record["id"], category=record["category"], question=record["question"],
                              must_contain=tuple(tuple(fact) for fact in record.get("must_contain", [])),
                              must_not=tuple(record.get("must_not", [])), turns=tuple(record.get("turns", [])),
                              about=record.get("about", "")))
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not an answer-quality item ({error})") from None
    return items


def normal(text: str) -> str:
    """Lower case, typographic apostrophes and dashes made plain, for substring matching."""
    return (text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-")
            .replace("\u2014", "-").replace("\u00a0", " "))


def knowledge_texts(path: Path = SAMPLE) -> list[str]:
    """The texts an answer can be made from, as the bot ingests them: each Q&A
    entry's answer and each article section."""
    from bot.ingest import collect

    return [f"{entry.title}\n{entry.content}" for entry in collect([path], "sample-kb")]


def numbers(text: str) -> set[str]:
    """The numbers a text states ("€4.95" -> "4.95", "3-5" -> "3", "5"), with
    thousands separators dropped."""
    return {number.replace(",", "") for number in _NUMBER.findall(text)}


def present(text: str, fact: Sequence[str]) -> bool:
    said = normal(text)
    return any(normal(option) in said for option in fact)


@dataclass
class Verdict:
    outcome: str
    missing: list[list[str]] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)


def classify(item: Item, answer: str, grounded: bool, known_numbers: set[str]) -> Verdict:
    if not grounded:
        return Verdict("dont_know")
    said = normal(answer)
    asked = numbers(" ".join([*item.turns, item.question]))
    claims = [phrase for phrase in item.must_not if normal(phrase) in said]
    claims += [f"number {number} (in no knowledge text)" for number in sorted(numbers(answer))
               if number not in known_numbers and number not in asked]
    missing = [list(fact) for fact in item.must_contain if not present(answer, fact)]
    if claims:
        return Verdict("unsupported_claim", missing, claims)
    if item.must_contain and not missing:
        return Verdict("right")
    if "don't know" in said or "do not know" in said:
        return Verdict("dont_know", missing)
    if "not sure" in said:  # bot/chat.py's hedge: a loose match, or a follow-up only its topic covers
        return Verdict("hedged", missing)
    return Verdict("wrong_source", missing)


# --- running the bot --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def commit() -> str:
    """The checkout measured (other work in the tree may be uncommitted)."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def ask(stub: Any, query: str, conversation_id: str, token: str) -> tuple[Any, float]:
    """One question through Chat; `token` is the conversation's token from its last answer."""
    from mend.bot.v1 import bot_service_pb2 as pb

    started = time.perf_counter()
    response = await stub.Chat(pb.ChatRequest(query=query, conversation_id=conversation_id, conversation_token=token,
                                              request_id=str(uuid.uuid4())), timeout=CALL_TIMEOUT_S)
    return response, time.perf_counter() - started


def _response(response: Any, wall_s: float) -> dict[str, Any]:
    facts = response.generation
    return {"answer": response.answer, "grounded": response.grounded, "unsure": response.unsure,
            "sources": [{"entry_id": s.entry_id, "title": s.title, "score": round(s.score, 4)}
                        for s in response.sources],
            "model": facts.model, "first_words_ms": facts.time_to_first_token_ms, "total_ms": facts.total_ms,
            "output_tokens": facts.output_tokens, "wall_ms": int(wall_s * 1000)}


def append(checkpoint: Path, record: dict[str, Any]) -> None:
    with checkpoint.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def interleaved(items: Sequence[Item]) -> list[Item]:
    """The items taken a category at a time in turn, so that a stopped run (a
    generate run on busy cores takes hours) has measured every category."""
    queues = [[item for item in items if item.category == category] for category in CATEGORIES]
    ordered = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


async def run_items(stub: Any, items: Sequence[Item], known_numbers: set[str], checkpoint: Path,
                    already: int = 0, planned: int = 0) -> list[dict[str, Any]]:
    """Asks every item; each row is appended to `checkpoint` as it comes, so a
    long run that is stopped keeps what it measured and can be resumed."""
    rows = []
    for number, item in enumerate(items, start=already + 1):
        conversation_id = f"answers-{item.id}-{uuid.uuid4().hex[:8]}"
        earlier, token = [], ""
        for turn in item.turns:
            response, wall = await ask(stub, turn, conversation_id, token)
            earlier.append({"question": turn, **_response(response, wall)})
            token = response.conversation_token
        response, wall = await ask(stub, item.question, conversation_id, token)
        verdict = classify(item, response.answer, response.grounded, known_numbers)
        row = {"id": item.id, "category": item.category, "question": item.question, "turns": earlier,
               **_response(response, wall), "outcome": verdict.outcome, "claims": verdict.claims,
               "missing": verdict.missing, "load_average_1m": round(os.getloadavg()[0], 2)}
        rows.append(row)
        append(checkpoint, row)
        source = row["sources"][0]["entry_id"] if row["sources"] else "-"
        print(f"[{number}/{planned or len(items)}] {item.id} {verdict.outcome:17} first words "
              f"{row['first_words_ms']:>6} ms from {source} (load {row['load_average_1m']}): {item.question[:60]!r}"
              + (f" claims {verdict.claims}" if verdict.claims else ""), flush=True)
    return rows


def tally(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts = {category: {"items": 0, **dict.fromkeys(OUTCOMES, 0), "right_unsure": 0}
              for category in (*CATEGORIES, "all")}
    for row in rows:
        for category in (row["category"], "all"):
            counts[category]["items"] += 1
            counts[category][row["outcome"]] += 1
            # Right, but said it might not be what was asked (a loose match, or a follow-up
            # answered from the conversation's topic): what hedging costs.
            counts[category]["right_unsure"] += row["outcome"] == "right" and bool(row.get("unsure"))
    return counts


def timings(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """First words (server-side, the answer's first streamed piece) of every answer, earlier turns included."""
    answers = [turn for row in rows for turn in row["turns"]] + list(rows)
    first = [answer["first_words_ms"] for answer in answers]
    grounded = [answer["first_words_ms"] for answer in answers if answer["grounded"]]
    return {"answers": len(answers), "first_words_p50_ms": statistics.median(first) if first else None,
            "first_words_p95_ms": percentile(first, 0.95) if first else None,
            "grounded_first_words_p50_ms": statistics.median(grounded) if grounded else None,
            "total_p50_ms": statistics.median(a["total_ms"] for a in answers) if answers else None}


async def bench(mode: str, items: Sequence[Item], pg_port: int, checkpoint: Path, already: int,
                planned: int) -> dict[str, Any]:
    """Starts the services, asks `items`, and returns what the run is (its rows are in `checkpoint`)."""
    from bench.scratch import scratch_database
    from bot.__main__ import CHAT_SERVICE, build_chatbot, open_knowledge
    from bot.chat_service import ChatService
    from bot.ingest import ingest
    from bot.outbox import Outbox
    from bot.settings import Settings
    from interactions.service import InteractionsService
    from mend.bot.v1 import bot_service_pb2_grpc as bot_grpc
    from mend.interactions.v1 import interactions_service_pb2 as ipb
    from mend.interactions.v1 import interactions_service_pb2_grpc as ipb_grpc
    from mendkit import clients
    from mendkit.conversation_tokens import ConversationTokens
    from mendkit.page_tokens import PageTokens
    from mendkit.server import Registration, start_server

    known_numbers = numbers(" ".join(knowledge_texts()))
    settings = replace(Settings.from_env(), answer_mode=mode)
    async with contextlib.AsyncExitStack() as stack:
        pool = await scratch_database(stack, "mend-answer-bench-", pg_port or free_port(), 10)
        interactions = await start_server([Registration(
            InteractionsService(pool, PageTokens(b"answer-bench-page-token-secret")),
            ipb_grpc.add_InteractionsServiceServicer_to_server,
            ipb.DESCRIPTOR.services_by_name["InteractionsService"].full_name)], "127.0.0.1:0")
        stack.push_async_callback(interactions.stop, 1)
        knowledge = await open_knowledge(settings, pool, stack)
        await ingest(knowledge, [SAMPLE])
        channel = await stack.enter_async_context(clients.insecure_channel(f"127.0.0.1:{interactions.port}"))
        outbox = Outbox(pool, ipb_grpc.InteractionsServiceStub(channel))
        delivery = asyncio.create_task(outbox.run_delivery())
        stack.callback(delivery.cancel)
        chatbot = await asyncio.to_thread(build_chatbot, settings, knowledge, pool, outbox, stack)
        model = getattr(getattr(chatbot.answerer, "model", None), "model_id", "") or "none (quoted)"
        run = {"mode": mode, "model": model, "chat_provider": settings.chat.provider,
               "relevance": chatbot.retrieval.relevance.describe(), "retrieval_k": chatbot.retrieval.k,
               "commit": commit(), "planned_items": planned}
        if not already:
            append(checkpoint, {"run": run})
        chat = ChatService(chatbot, ConversationTokens.random())
        running = await start_server([Registration(chat, bot_grpc.add_ChatServiceServicer_to_server, CHAT_SERVICE)],
                                     "127.0.0.1:0")
        stack.push_async_callback(running.stop, 1)
        bot_channel = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{running.port}"))
        print(f"answering {len(items)} items ({already} done before), mode {mode}, model {model}", flush=True)
        await run_items(bot_grpc.ChatServiceStub(bot_channel), items, known_numbers, checkpoint, already, planned)
        await outbox.deliver_pending()
        run["undelivered_exchanges"] = await outbox.pending()
    return run


def read_checkpoint(checkpoint: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run header and the rows measured so far."""
    lines = [json.loads(line) for line in checkpoint.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or "run" not in lines[0]:
        raise ValueError(f"{checkpoint}: not a checkpoint of this benchmark")
    return lines[0]["run"], lines[1:]


def result(run: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    loads = [row["load_average_1m"] for row in rows]
    answering_s = sum(answer["wall_ms"] for row in rows for answer in [*row["turns"], row]) / 1000
    return {**run, "complete": len(rows) >= run["planned_items"], "answered_items": len(rows),
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                        "load_average_1m": {"min": min(loads), "median": statistics.median(loads),
                                            "max": max(loads)} if loads else None},
            "answering_s": round(answering_s, 1), "counts": tally(rows), "timing": timings(rows), "items": rows}


# --- the report ---------------------------------------------------------------------


def _cell(counts: dict[str, int], outcome: str) -> str:
    # Results measured before an outcome existed have none of it.
    return f"{counts[outcome]}" if counts["items"] and outcome in counts else "-"


def report(results: Iterable[dict[str, Any]]) -> str:
    results = list(results)
    lines = [
        "# Answer quality on the sample knowledge (issue 13, section 2)",
        "",
        "Measured with `bench/answer_bench.py`: the questions of `bench/data/answer_quality.jsonl` asked through the",
        "bot's public `Chat` RPC (the real ChatService built by `build_chatbot`, pgvector in the embedded PostgreSQL,",
        "the real MiniLM embedder, the sample knowledge ingested, a real interactions service). A follow-up's earlier",
        "questions are asked first in the same conversation. Outcomes: **right** (every required fact, no wrong",
        "claim), **claim** (a phrase the item lists as a wrong claim, or a number no knowledge text states),",
        "**don't know** (the honest answer for out-of-scope items), **hedged** (not right, no claim, and the answer",
        "says it is not sure and how to reach a person: its entry matched the question only loosely, or a follow-up",
        "was answered from the conversation's topic, which nothing covers on its own), **wrong source** (answered,",
        "not right, no claim found; for an out-of-scope item, answered from an entry that does not cover it). **right,",
        "said unsure**: right answers that also said they might not be what was asked (the hedge's cost).",
        "",
        "```",
        ".venv/bin/python -m bench.answer_bench --mode quote",
        ".venv/bin/python -m bench.answer_bench --mode generate",
        "```",
        "",
        "| mode | model | category | items | right | claim | don't know | hedged | wrong source | right, said unsure |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for category in (*CATEGORIES, "all"):
            counts = result["counts"][category]
            lines.append(f"| {result['mode']} | {result['model']} | {category.replace('_', '-')} | {counts['items']} | "
                         + " | ".join(_cell(counts, outcome) for outcome in (*OUTCOMES, "right_unsure")) + " |")
    lines += ["", "| mode | answers | first words p50 | p95 | grounded p50 | total p50 | answering | load average "
              "(1 min, min / median / max) | commit |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for result in results:
        timing, load = result["timing"], result["machine"]["load_average_1m"] or {}
        lines.append(f"| {result['mode']} | {timing['answers']} | {timing['first_words_p50_ms']} ms | "
                     f"{timing['first_words_p95_ms']} ms | {timing['grounded_first_words_p50_ms']} ms | "
                     f"{timing['total_p50_ms']} ms | {result['answering_s']} s | "
                     f"{load.get('min')} / {load.get('median')} / {load.get('max')} on "
                     f"{result['machine']['nproc']} cores | {result['commit']} |")
    partial = [result for result in results if not result["complete"]]
    if partial:
        lines += [""] + [f"**{result['mode']} is a partial run**: {result['answered_items']} of "
                         f"{result['planned_items']} items (asked a category at a time in turn); resume it with "
                         f"`--mode {result['mode']} --resume`." for result in partial]
    lines += ["", "First words: the server's `time_to_first_token_ms` (question received to the answer's first",
              "streamed piece; a generated answer's first piece is its first checked sentence), over every answer",
              "including a follow-up's earlier turns.", ""]
    for result in results:
        lines += [f"## {result['mode']}: the items not right", ""]
        for row in sorted(result["items"], key=lambda row: (CATEGORIES.index(row["category"]), row["id"])):
            if row["outcome"] == "right" or (row["category"] == "out_of_scope" and row["outcome"] == "dont_know"):
                continue
            source = row["sources"][0]["title"] if row["sources"] else "-"
            detail = "; ".join(row["claims"]) if row["claims"] else (
                "missing " + ", ".join(" / ".join(fact) for fact in row["missing"]) if row["missing"] else "")
            answer = row["answer"].replace("\n", " ").replace("|", "\\|")
            lines.append(f"- `{row['id']}` {row['outcome']}: {row['question']!r} -> from {source!r}"
                         + (f" ({detail})" if detail else "") + f": \"{answer[:160]}"
                         + ("..." if len(answer) > 160 else "") + "\"")
        lines.append("")
    return "\n".join(lines)


def checkpoint_of(mode: str) -> Path:
    return RESULTS / f"answers_{mode}.partial.jsonl"


def write_report() -> Path:
    """answers.md from each mode's finished run, or else its checkpoint (a partial run)."""
    found = []
    for mode in ("quote", "generate"):
        if (finished := RESULTS / f"answers_{mode}.json").exists():
            found.append(json.loads(finished.read_text()))
        elif checkpoint_of(mode).exists():
            found.append(result(*read_checkpoint(checkpoint_of(mode))))
    target = RESULTS / "answers.md"
    target.write_text(report(found))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["quote", "generate"], default="quote")
    parser.add_argument("--limit", type=int, default=None, help="only the first N items (of the interleaved order)")
    parser.add_argument("--resume", action="store_true", help="continue the mode's stopped run from its checkpoint")
    parser.add_argument("--pg-port", type=int, default=0, help="the embedded PostgreSQL's port (0: a free one)")
    parser.add_argument("--report", action="store_true", help="only re-write answers.md from the results")
    args = parser.parse_args(argv)
    # A stop (kill PID) unwinds like Ctrl-C: the servers and the embedded PostgreSQL are shut down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if not args.report:
        RESULTS.mkdir(parents=True, exist_ok=True)
        checkpoint = checkpoint_of(args.mode)
        items = interleaved(load_items())[:args.limit] if args.limit else interleaved(load_items())
        done: list[dict[str, Any]] = []
        if args.resume and checkpoint.exists():
            planned = read_checkpoint(checkpoint)[0]["planned_items"]
            done = read_checkpoint(checkpoint)[1]
            items = [item for item in interleaved(load_items())[:planned] if item.id not in {r["id"] for r in done}]
        else:
            planned = len(items)
            checkpoint.unlink(missing_ok=True)
        asyncio.run(bench(args.mode, items, args.pg_port, checkpoint, len(done), planned))
        run, rows = read_checkpoint(checkpoint)
        finished = result(run, rows)
        if finished["complete"] and planned == len(load_items()):
            (RESULTS / f"answers_{args.mode}.json").write_text(json.dumps(finished, indent=2, ensure_ascii=False))
            checkpoint.unlink()
        print(json.dumps({key: finished[key] for key in ("mode", "model", "counts", "timing", "machine")}, indent=2))
    print(f"wrote {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Loads a knowledge base into the index: Markdown articles (chunked by
section), CSV and JSONL question-and-answer pairs. Entry ids derive from the
files, so running it again replaces instead of duplicating, and unchanged
entries are not embedded again.

JSONL: one object a line: {"id", "questions": [...], "answer", "title"?}.
CSV: columns `question`, `answer` and optionally `id`; rows sharing an id
become one entry with several phrasings.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.catalog import Entry
from bot.knowledge import Knowledge

MAX_CHUNK_CHARS = 1_200
BATCH = 32


def _id(prefix: str, text: str) -> str:
    return f"{prefix}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _slug(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-")[:60] or "kb"


def read_jsonl(path: Path, source: str) -> list[Entry]:
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions = tuple(dict.fromkeys(q.strip() for q in record["questions"] if q.strip()))
            answer = record["answer"].strip()
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}:{number}: expected {{\"questions\": [...], \"answer\": ...}} ({error})") from None
        entry_id = str(record.get("id") or _id(_slug(path), answer))
        entries.append(Entry(entry_id, "qa", record.get("title") or questions[0][:300], answer, questions,
                             source, "published", metadata={"file": path.name}))
    return entries


def read_csv(path: Path, source: str) -> list[Entry]:
    grouped: dict[str, tuple[str, list[str]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            question, answer = (row.get("question") or "").strip(), (row.get("answer") or "").strip()
            if not question or not answer:
                raise ValueError(f"{path}:{number}: every row needs a question and an answer")
            entry_id = (row.get("id") or "").strip() or _id(_slug(path), answer)
            grouped.setdefault(entry_id, (answer, []))[1].append(question)
    return [Entry(entry_id, "qa", questions[0][:300], answer, tuple(dict.fromkeys(questions)), source,
                  "published", metadata={"file": path.name})
            for entry_id, (answer, questions) in grouped.items()]


def chunk_markdown(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(article title, [(section title, chunk text)]): one chunk per `##`
    section, split at paragraphs when a section is long."""
    title, current = "", ""
    sections: list[tuple[str, str]] = []
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            if "".join(lines).strip():
                sections.append((current, "\n".join(lines).strip()))
            current, lines = line[3:].strip(), []
        else:
            lines.append(line)
    if "".join(lines).strip():
        sections.append((current, "\n".join(lines).strip()))
    chunks = []
    for heading, body in sections:
        piece = ""
        for paragraph in re.split(r"\n\s*\n", body):
            if piece and len(piece) + len(paragraph) > MAX_CHUNK_CHARS:
                chunks.append((heading, piece))
                piece = ""
            piece = f"{piece}\n\n{paragraph}".strip()
        if piece:
            chunks.append((heading, piece))
    return title, chunks


def read_markdown(path: Path, source: str) -> list[Entry]:
    title, chunks = chunk_markdown(path.read_text(encoding="utf-8"))
    title = title or path.stem.replace("-", " ")
    return [Entry(f"{_slug(path)}:{number}", "article", f"{title}: {heading}" if heading else title, chunk, (),
                  source, "published", metadata={"file": path.name})
            for number, (heading, chunk) in enumerate(chunks, start=1)]


READERS = {".jsonl": read_jsonl, ".csv": read_csv, ".md": read_markdown}


def collect(paths: Iterable[Path], source: str) -> list[Entry]:
    files = []
    for path in paths:
        if path.is_dir():
            # A folder's README describes the folder; it is not knowledge.
            files += sorted(p for p in path.rglob("*") if p.suffix in READERS and p.name.lower() != "readme.md")
        elif path.suffix in READERS:
            files.append(path)
        else:
            raise ValueError(f"{path}: not a folder nor a .md, .csv or .jsonl file")
    return [entry for file in files for entry in READERS[file.suffix](file, source)]


def _progress(done: int, total: int, started: float) -> None:
    width = 30
    filled = width * done // max(total, 1)
    elapsed = time.monotonic() - started
    line = f"ingest: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} entries  {elapsed:.1f} s"
    # A redrawn bar on a terminal, plain lines in logs and CI.
    end = "\r" if sys.stderr.isatty() and done < total else "\n"
    print(line, end=end, file=sys.stderr, flush=True)


async def ingest(knowledge: Knowledge, paths: Sequence[Path], source: str = "sample-kb") -> int:
    entries = collect(paths, source)
    started = time.monotonic()
    _progress(0, len(entries), started)
    for start in range(0, len(entries), BATCH):
        await knowledge.upsert(entries[start:start + BATCH])
        _progress(min(start + BATCH, len(entries)), len(entries), started)
    return len(entries)

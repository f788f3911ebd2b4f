"""A small OpenAI-compatible server for tests: a protocol peer, not a model.

    python tests/doubles/openai_server.py --port N [--log requests.jsonl] [--dimension 16]

POST /v1/chat/completions answers "Echo: <last user message>" in word pieces
(for a grounded prompt, "Echo: <its first fact>", a sentence its sources support),
streamed as OpenAI and llama.cpp's server do (a chunk with the role, content
chunks, a chunk with finish_reason, `data: [DONE]`), or whole when not streamed.
POST /v1/embeddings answers deterministic unit vectors (a hash of the text).
Bodies are validated; a bad one gets 400 with an OpenAI-style error body.

Every request is appended to the --log file as a JSON line: path, body, and the
Authorization header's scheme (never its value). Hang-ups are logged too.

Model names switch on behaviours:
  rate-limited  429                 broken        500
  unauthorized  401 whose message echoes the bearer token, as careless servers do
  slow          a long answer, one piece every 20 ms (to watch a client hang up)
  stalls        one piece, then 5 s of silence
  error-midway  two pieces, then an error event in the stream
  cut-off       two pieces, then the connection drops
  ends-early    two pieces, then a cleanly ended body: no finish_reason, no [DONE]
  reversed      embeddings listed in reverse index order
  unnormalised  embeddings of length 3
Standard library only, so it runs as its own process without the project.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROLES = {"system", "user", "assistant", "developer", "tool"}
FAILURES = {"rate-limited": (429, "Rate limit reached for requests", "requests"),
            "broken": (500, "The server had an error while processing your request", "server_error")}
_ids = itertools.count(1)


def vector_for(text: str, dimension: int) -> list[float]:
    """A deterministic unit vector per text."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.uniform(-1, 1) for _ in range(dimension)]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def answer_for(model: str, messages: list[dict[str, Any]]) -> list[str]:
    """The reply's pieces, each a word with the space before it, as tokenizers split."""
    if model == "slow":
        return [" tick"] * 500
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    fact = re.match(r"Facts:\n\[1\] [^\n]*?: ([^\n]*)", last)
    return re.findall(r"\s*\S+", f"Echo: {fact.group(1) if fact else last}")


def _chat_problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required and must be a non-empty string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' is required and must be a non-empty array"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {sorted(ROLES)}"
        if not isinstance(message.get("content"), str):
            return f"messages[{i}].content must be a string"
    tokens = body.get("max_tokens")
    if tokens is not None and (type(tokens) is not int or tokens < 1):
        return "'max_tokens' must be an integer of at least 1"
    temperature = body.get("temperature")
    if temperature is not None and (type(temperature) not in (int, float) or not 0 <= temperature <= 2):
        return "'temperature' must be a number from 0 to 2"
    if "stream" in body and type(body["stream"]) is not bool:
        return "'stream' must be a boolean"
    return None


def _embeddings_problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required and must be a non-empty string"
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        return "'input' must be a non-empty string or a non-empty array of non-empty strings"
    if body.get("encoding_format", "float") != "float":
        return "only encoding_format 'float' is supported"
    return None


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log: str | None, dimension: int) -> None:
        super().__init__(address, Handler)
        self.log_path = log
        self.dimension = dimension
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        if self.log_path:
            with self._lock, open(self.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as real servers do
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # the base signature
        pass  # the JSONL log is the record

    def do_POST(self) -> None:  # http.server's naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        auth = self.headers.get("Authorization")
        self.server.record({"event": "request", "path": self.path, "body": body,
                            "auth_scheme": auth.split(" ", 1)[0] if auth else None})
        routes = {"/v1/chat/completions": (self._chat, _chat_problem),
                  "/v1/embeddings": (self._embeddings, _embeddings_problem)}
        if self.path not in routes:
            return self._error(404, f"Unknown request URL: POST {self.path}", "invalid_request_error")
        if not isinstance(body, dict):
            return self._error(400, "The request body must be a JSON object", "invalid_request_error")
        handle, problem_of = routes[self.path]
        if problem := problem_of(body):
            return self._error(400, problem, "invalid_request_error")
        if body["model"] in FAILURES:
            return self._error(*FAILURES[body["model"]])
        if body["model"] == "unauthorized":
            token = auth.split(" ", 1)[-1] if auth else ""
            return self._error(401, f"Incorrect API key provided: {token}", "invalid_request_error")
        handle(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

    def _embeddings(self, body: dict[str, Any]) -> None:
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        scale = 3.0 if body["model"] == "unnormalised" else 1.0
        data = [{"object": "embedding", "index": i,
                 "embedding": [x * scale for x in vector_for(text, self.server.dimension)]}
                for i, text in enumerate(texts)]
        if body["model"] == "reversed":
            data.reverse()
        tokens = sum(len(t.split()) for t in texts)
        self._json(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _chat(self, body: dict[str, Any]) -> None:
        model = body["model"]
        pieces = answer_for(model, body["messages"])
        limit = body.get("max_tokens") or len(pieces)
        finish = "length" if len(pieces) > limit else "stop"
        pieces = pieces[:limit]
        ident, created = f"chatcmpl-{next(_ids)}", int(time.time())
        if not body.get("stream"):
            prompt = sum(len(m["content"].split()) for m in body["messages"])
            return self._json(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                             "logprobs": None, "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(pieces),
                          "total_tokens": prompt + len(pieces)}})

        def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
            return json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                               "system_fingerprint": "fp_mend_tests",
                               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]},
                              separators=(",", ":"))

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            self._event(chunk({"role": "assistant", "content": ""}))
            for piece in pieces:
                if sent == 2 and model == "cut-off":
                    self.close_connection = True  # no terminating chunk: the client sees a broken body
                    return
                if sent == 2 and model == "ends-early":
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if sent == 2 and model == "error-midway":
                    self._event(json.dumps({"error": {"message": "The model crashed mid-answer",
                                                      "type": "server_error", "code": 500}}))
                    break
                self._event(chunk({"content": piece}))
                sent += 1
                if model == "slow":
                    time.sleep(0.02)
                elif model == "stalls" and sent == 1:
                    time.sleep(5)
            else:
                self._event(chunk({}, finish))
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.server.record({"event": "disconnected", "model": model, "sent": sent, "of": len(pieces)})

    def _event(self, data: str) -> None:
        """One SSE event as one HTTP chunk."""
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", help="append each request as a JSON line to this file")
    parser.add_argument("--dimension", type=int, default=16, help="the embeddings' size")
    args = parser.parse_args()
    server = Server((args.host, args.port), args.log, args.dimension)
    print(f"listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

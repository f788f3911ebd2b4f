"""How long the teacher's new-entry prompt is, before (fix-v1) and after (fix-v2)
naming a quoted answer instead of repeating it: `python -m bench.teacher_prompt_size`.

On the quote-mode answer bench's answers (bench/results/answers_quote.json, run
`python -m bench.answer_bench --mode quote` first): each grounded answer, as if
disliked, with the sample knowledge's Q&A entries it was answered from as the
known facts (trainer/loop.py `teach` gets the published hits of the question;
here its sources, those that are Q&A entries). Characters of the two messages.
With `--model N` the embedded teacher (LocalGGUF, as the trainer builds it) is
also timed on the first N answers whose two prompts differ, the two prompts in
turn, the whole answer streamed: `python -m bench.teacher_prompt_size --model 4`.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from mend.bot.v1 import bot_service_pb2 as bpb
from mend.interactions.v1 import interactions_service_pb2 as ipb
from mendmodels.chat.base import Message
from trainer import loop
from trainer.judge import Hit

REPO = Path(__file__).resolve().parent.parent


class Recording:
    model_id = "recording"

    def __init__(self) -> None:
        self.asked: list[list[Message]] = []

    async def stream(self, messages, max_tokens):
        self.asked.append(list(messages))
        yield "An answer."


async def sizes() -> tuple[list[int], list[int], list[tuple[list[Message], list[Message]]]]:
    faq = {row["id"]: row for row in map(json.loads, (REPO / "knowledge/sample/faq.jsonl").read_text().splitlines())}
    items = json.loads((REPO / "bench/results/answers_quote.json").read_text())["items"]
    before, after, pairs = [], [], []
    for row in items:
        if not row["grounded"]:
            continue
        context = [Hit(bpb.KnowledgeEntry(entry_id=s["entry_id"], title=faq[s["entry_id"]]["title"],
                                          content=faq[s["entry_id"]]["answer"]), s["score"])
                   for s in row["sources"] if s["entry_id"] in faq]
        item = ipb.Interaction(user_query=row["question"], bot_response=row["answer"],
                               sources=[ipb.KnowledgeSource(entry_id=s["entry_id"]) for s in row["sources"]])
        teacher = Recording()
        await loop.teach(teacher, "Alder & Finch", item, context)
        now = sum(len(m.content) for m in teacher.asked[0])
        after.append(now)
        said = loop._disliked_answer(item, context)
        before.append(now - len(said) + len(item.bot_response))
        if said != item.bot_response:
            new = teacher.asked[0]
            old = [new[0], Message("user", new[1].content.replace(f"disliked: {said}\n",
                                                                  f"disliked: {item.bot_response}\n"))]
            pairs.append((old, new))
    return before, after, pairs


async def timed(pairs: list[tuple[list[Message], list[Message]]]) -> None:
    import time
    from contextlib import AsyncExitStack

    from mendmodels import select
    from mendmodels.settings import ChatModelSettings

    async with AsyncExitStack() as stack:
        model = select.chat_model(ChatModelSettings.from_env(), REPO / ".mend", stack)
        took: dict[str, list[float]] = {"fix-v1": [], "fix-v2": []}
        for n, pair in enumerate(pairs, start=1):
            for version, messages in zip(("fix-v1", "fix-v2"), pair, strict=True):
                started = time.perf_counter()
                async for _ in model.stream(messages, loop.MAX_ANSWER_TOKENS):
                    pass
                took[version].append(time.perf_counter() - started)
                print(f"  [{n}/{len(pairs)}] {version}: {took[version][-1]:.1f} s "
                      f"({sum(len(m.content) for m in messages)} characters)", flush=True)
        for version, seconds in took.items():
            print(f"{version}: median {statistics.median(seconds):.1f} s a call over {len(seconds)}")


def main() -> None:
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=int, default=0, help="time the embedded teacher on this many")
    args = parser.parse_args()
    before, after, pairs = asyncio.run(sizes())
    print(f"{len(before)} grounded answers as disliked: prompt characters median {statistics.median(before):.0f} "
          f"-> {statistics.median(after):.0f}, mean {statistics.mean(before):.0f} -> {statistics.mean(after):.0f} "
          f"({1 - sum(after) / sum(before):.0%} fewer in all; {len(pairs)} of them changed)")
    if args.model:
        asyncio.run(timed(pairs[:args.model]))


if __name__ == "__main__":
    main()

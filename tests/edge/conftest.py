"""The services as they run: `python -m interactions`, `python -m bot` and
`python -m trainer` as processes on the test PostgreSQL, each with the tests'
tokens in its environment (tests/support.py), the trainer's teacher the
OpenAI-compatible test server."""

from __future__ import annotations

import json

import pytest

from tests.support import STRANGER, TOKENS, start, stop


@pytest.fixture(scope="module")
async def services(database_url, knowledge_index, peer):
    """The three services as processes, calling one another with their own tokens."""
    from bot.__main__ import migrate as migrate_bot
    from mendkit import migrations
    from trainer.__main__ import MIGRATIONS as TRAINER_MIGRATIONS

    await migrate_bot(database_url)
    await migrations.apply_at(database_url, "trainer", TRAINER_MIGRATIONS)
    interactions, interactions_port = await start({"DATABASE_URL": database_url})
    started = [interactions]
    try:
        bot, bot_port = await start({"DATABASE_URL": database_url,
                                     "INTERACTIONS_ADDR": f"127.0.0.1:{interactions_port}"},
                                    module="bot", port_variable="BOT_PORT")
        started.append(bot)
        trainer, trainer_port = await start({
            "DATABASE_URL": database_url, "INTERACTIONS_ADDR": f"127.0.0.1:{interactions_port}",
            "BOT_ADDR": f"127.0.0.1:{bot_port}", "MEND_LLM": "openai", "OPENAI_BASE_URL": peer.url,
            "OPENAI_CHAT_MODEL": "chat-model"}, module="trainer", port_variable="TRAINER_PORT")
        started.append(trainer)
        yield {"interactions": interactions_port, "bot": bot_port, "trainer": trainer_port}
    finally:
        for process in reversed(started):
            code, logs = await stop(process)
            assert code == 0
            assert not any(token in json.dumps(logs) for token in (*TOKENS.values(), STRANGER))
            # A fault inside a service, even one its caller saw mapped to another code, is a bug.
            assert not [line for line in logs if line.get("message") == "unhandled error"]

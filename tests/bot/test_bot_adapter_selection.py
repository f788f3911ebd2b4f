"""The cloud adapters are real code paths, selected by settings: a real bot
process configured with MEND_VECTOR_STORE=pinecone, MEND_EMBEDDINGS=openai and
MEND_LLM=openai answers over gRPC, talking to the fake Pinecone data plane and
the local OpenAI-compatible server (the protocol peers of the adapter tests)."""

from __future__ import annotations

import asyncio
import json

from tests.doubles.fake_pinecone import FakePinecone
from tests.support import DIMENSION, grpcurl, start, stop

QUESTION = "Do you repair broken tent poles?"


async def test_bot_runs_on_pinecone_and_an_openai_compatible_endpoint(
        peer, database_url, interactions_address, knowledge_index, pool):
    await knowledge_index.pool.execute("TRUNCATE knowledge_entries, knowledge_revisions CASCADE")
    with FakePinecone(dimension=DIMENSION) as pinecone:
        process, port = await start_bot(pinecone, peer.url, database_url, interactions_address)
        try:
            entry = {"entry_id": "faq-poles", "kind": "ENTRY_KIND_QA", "source": "test-kb",
                     "content": "Yes: a tent pole section costs 15 euros to repair.", "questions": [QUESTION]}
            upserted = grpcurl(port, "-d", json.dumps({"entries": [entry]}),
                               "mend.bot.v1.KnowledgeService/UpsertEntries")
            assert upserted.returncode == 0, upserted.stderr
            assert pinecone.ids() == ["faq-poles#0"]

            hits = grpcurl(port, "-d", json.dumps({"query": QUESTION}), "mend.bot.v1.KnowledgeService/SearchKnowledge")
            assert json.loads(hits.stdout)["hits"][0]["entry"]["entry_id"] == "faq-poles"

            # In a thread: the interactions server the bot logs to runs on this test's event loop.
            chat = await asyncio.to_thread(grpcurl, port, "-d", json.dumps({"query": QUESTION}),
                                           "mend.bot.v1.ChatService/Chat")
            assert chat.returncode == 0, chat.stderr
            answer = json.loads(chat.stdout)
            assert answer["grounded"] and answer["sources"][0]["entry_id"] == "faq-poles"
            assert answer["answer"].startswith("Echo:")  # the OpenAI-compatible peer's reply
            assert answer["generation"]["model"] == "chat-model"
        finally:
            code, _ = await stop(process)
        assert code == 0
    logged = await pool.fetchval("SELECT bot_response FROM interactions WHERE interaction_id = $1::uuid",
                                 answer["interaction_id"])
    assert logged == answer["answer"]
    sent = [json.loads(line) for line in peer.log.read_text().splitlines() if line.strip()]
    assert any(e.get("path", "").endswith("/embeddings") for e in sent)
    assert any(e.get("path", "").endswith("/chat/completions") for e in sent)


async def start_bot(pinecone: FakePinecone, openai_url: str, database_url: str, interactions_address: str):
    env = {"DATABASE_URL": database_url, "INTERACTIONS_ADDR": interactions_address,
           "MEND_VECTOR_STORE": "pinecone", "PINECONE_API_KEY": pinecone.api_key, "PINECONE_HOST": pinecone.host,
           "MEND_EMBEDDINGS": "openai", "OPENAI_BASE_URL": openai_url, "OPENAI_EMBEDDING_MODEL": "embedding-model",
           "OPENAI_EMBEDDING_DIMENSION": str(DIMENSION), "MEND_LLM": "openai", "OPENAI_CHAT_MODEL": "chat-model"}
    return await start(env, module="bot", port_variable="BOT_PORT")

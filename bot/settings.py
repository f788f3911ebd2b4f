"""Settings of the bot, read once at start-up: the shared ones, its models', and
its own (the vector index, the persona, retrieval)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.relevance import Relevance
from mendkit import addresses
from mendkit.credentials import BOT, Credential, callers_from_env
from mendkit.settings import (
    Listen,
    Shared,
    address_of,
    brand_from_env,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_str,
)
from mendmodels.settings import ChatModelSettings, EmbedderSettings


@dataclass(frozen=True)
class Settings:
    shared: Shared
    listen: Listen
    chat: ChatModelSettings
    embedder: EmbedderSettings
    pool_max_size: int
    vector_store: str
    interactions_address: str
    brand: str
    bot_name: str
    tone: str
    handoff: str
    system_prompt: str
    greeting: str
    # "quote": a Q&A entry's answer as written, an article's best passage; no
    # model call. "generate": the chat model writes it, checked sentence by
    # sentence against the sources. Quoting is the default with the embedded
    # model, which makes things up; generation with a cloud model.
    answer_mode: str
    retrieval_k: int
    similarity_threshold: float
    record_chat_text: bool
    # Pinecone (read only when selected).
    pinecone_index_name: str
    pinecone_host: str
    pinecone_namespace: str
    # The bot's own token (it logs exchanges with it), and every identity's, to
    # tell who calls (chat_service.ACCESS and knowledge_service.ACCESS say what each may call).
    token: Credential
    callers: tuple[Credential, ...]
    # Secrets stay out of repr, so printing or logging settings cannot leak them.
    pinecone_api_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> Settings:
        vector_store = env_choice("MEND_VECTOR_STORE", "pgvector", ("pgvector", "pinecone"))
        chat = ChatModelSettings.from_env()
        shared = Shared.from_env()
        token = Credential.from_env(BOT, shared.home)
        return cls(
            shared=shared,
            listen=Listen.from_env(addresses.BOT),
            chat=chat,
            embedder=EmbedderSettings.from_env(),
            pool_max_size=env_int("BOT_DB_POOL_SIZE", 10, minimum=1, maximum=200),
            vector_store=vector_store,
            interactions_address=address_of(addresses.INTERACTIONS),
            brand=brand_from_env(),
            bot_name=env_str("MEND_BOT_NAME", "Mend"),
            tone=env_str("MEND_BRAND_TONE", "warm, clear and practical"),
            handoff=env_str("MEND_HANDOFF",
                            "write to care@alderandfinch.example or chat with us 8:00-20:00 CET on weekdays"),
            system_prompt=env_str("MEND_SYSTEM_PROMPT", ""),
            greeting=env_str("MEND_GREETING", ""),
            answer_mode=env_choice("MEND_ANSWER_MODE", "quote" if chat.provider == "local" else "generate",
                                   ("quote", "generate")),
            retrieval_k=env_int("MEND_RETRIEVAL_K", 3, minimum=1, maximum=20),
            # The cut for an entry with one phrasing; it rises with more (bot/relevance.py).
            similarity_threshold=env_float("MEND_SIMILARITY_THRESHOLD", Relevance.min_score, minimum=-1.0,
                                           maximum=1.0),
            record_chat_text=env_bool("MEND_TRACE_CHAT_TEXT", False),
            pinecone_index_name=env_str("PINECONE_INDEX_NAME", "rag-index"),
            pinecone_host=env_str("PINECONE_HOST", ""),
            pinecone_namespace=env_str("PINECONE_NAMESPACE", ""),
            token=token,
            callers=callers_from_env(shared.home, token),
            pinecone_api_key=env_str("PINECONE_API_KEY") if vector_store == "pinecone" else "",
        )

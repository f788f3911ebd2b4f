"""Builds a chat model or an embedder from its settings. Cloud SDKs are imported
only when chosen; whatever must be closed is pushed onto the caller's stack."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from mendmodels.chat.base import ChatModel
from mendmodels.embeddings.base import Embedder
from mendmodels.settings import ChatModelSettings, EmbedderSettings


def chat_model(settings: ChatModelSettings, home: Path, stack: AsyncExitStack, model: str = "") -> ChatModel:
    """The chat model `settings` choose; `model` names another model of the same
    provider (the trainer's teacher and judge), ignored by the embedded one."""
    if settings.provider == "bedrock":
        from mendmodels.chat.bedrock import BedrockChat

        return BedrockChat(model or settings.bedrock_model, region=settings.aws_region)
    if settings.provider == "openai":
        from mendmodels.chat.openai_compatible import OpenAICompatibleChat

        made = OpenAICompatibleChat(settings.openai_base_url, model or settings.openai_model,
                                    api_key=settings.openai_api_key)
        stack.push_async_callback(made.aclose)
        return made
    from mendmodels.chat.local_gguf import LocalGGUF, prepare

    return LocalGGUF(prepare(home / "models"), threads=settings.threads)


def embedder(settings: EmbedderSettings, stack: AsyncExitStack) -> Embedder:
    if settings.provider == "bedrock":
        from mendmodels.embeddings.bedrock import BedrockEmbedder

        return BedrockEmbedder(settings.bedrock_model, settings.bedrock_dimension, region=settings.aws_region)
    if settings.provider == "openai":
        from mendmodels.embeddings.openai_compatible import OpenAICompatibleEmbedder

        made = OpenAICompatibleEmbedder(settings.openai_base_url, settings.openai_model, settings.openai_dimension,
                                        api_key=settings.openai_api_key)
        stack.push_async_callback(made.aclose)
        return made
    from mendmodels.embeddings.local_minilm import LocalMiniLM

    return LocalMiniLM()

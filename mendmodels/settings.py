"""The model settings, typed and read from the environment at start-up. A
service composes the part it uses: the bot both, the trainer only the chat
model's, so the trainer never asks for an embedder's or a vector store's
variables. Provider variables are required only when that provider is chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

from mendkit.settings import SettingsError, env_choice, env_int, env_str

PROVIDERS = ("local", "bedrock", "openai")


def _required_if(chosen: bool, name: str, default: str = "") -> str:
    return env_str(name) if chosen else env_str(name, default)


@dataclass(frozen=True)
class ChatModelSettings:
    provider: str  # MEND_LLM
    threads: int  # of the embedded model
    aws_region: str
    bedrock_model: str
    openai_base_url: str
    openai_model: str
    # Secrets stay out of repr, so printing or logging settings cannot leak them.
    openai_api_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> ChatModelSettings:
        provider = env_choice("MEND_LLM", "local", PROVIDERS)
        return cls(
            provider=provider,
            threads=env_int("MEND_LLM_THREADS", 2, minimum=1, maximum=64),
            aws_region=_required_if(provider == "bedrock", "AWS_REGION"),
            bedrock_model=env_str("BEDROCK_CHAT_MODEL", "anthropic.claude-3-haiku-20240307-v1:0"),
            openai_base_url=_required_if(provider == "openai", "OPENAI_BASE_URL"),
            openai_model=_required_if(provider == "openai", "OPENAI_CHAT_MODEL"),
            openai_api_key=env_str("OPENAI_API_KEY", ""),
        )


@dataclass(frozen=True)
class EmbedderSettings:
    provider: str  # MEND_EMBEDDINGS
    aws_region: str
    bedrock_model: str
    bedrock_dimension: int
    openai_base_url: str
    openai_model: str
    openai_dimension: int
    openai_api_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> EmbedderSettings:
        provider = env_choice("MEND_EMBEDDINGS", "local", PROVIDERS)
        openai = provider == "openai"
        if openai and not env_str("OPENAI_EMBEDDING_DIMENSION", ""):
            raise SettingsError("OPENAI_EMBEDDING_DIMENSION is required when MEND_EMBEDDINGS=openai")
        return cls(
            provider=provider,
            aws_region=_required_if(provider == "bedrock", "AWS_REGION"),
            bedrock_model=env_str("BEDROCK_EMBEDDING_MODEL", "amazon.titan-embed-text-v2:0"),
            bedrock_dimension=env_int("BEDROCK_EMBEDDING_DIMENSION", 1024, minimum=256, maximum=1024),
            openai_base_url=_required_if(openai, "OPENAI_BASE_URL"),
            openai_model=_required_if(openai, "OPENAI_EMBEDDING_MODEL"),
            openai_dimension=env_int("OPENAI_EMBEDDING_DIMENSION", 0, minimum=1, maximum=16384) if openai else 0,
            openai_api_key=env_str("OPENAI_API_KEY", ""),
        )

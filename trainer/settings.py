"""Settings of the trainer, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


from mendkit.settings import SettingsError, env_choice, env_float, env_int, env_str, shared_from_env


@dataclass(frozen=True)
class Settings:
    interactions_address: str
    bot_address: str
    feedback_threshold: int
    publish_policy: str  # "auto" | "review"
    # With the embedded model the judge is a similarity threshold: a question
    # is covered when a published entry is at least this similar.
    covered_similarity: float
    # Disliked questions at least this similar to a fix written in the same run
    # join that fix as extra phrasings instead of becoming fixes of their own.
    duplicate_similarity: float
    teacher: str
    # Model ids for the cloud teacher and judge; empty: Bedrock's Claude 3 Sonnet
    # and Haiku, or OPENAI_CHAT_MODEL for an OpenAI-compatible endpoint.
    teacher_model: str
    judge_model: str
    log_level: str
    # Secrets stay out of repr, so printing or logging settings cannot leak them.
    database_url: str = field(repr=False)
    host: str
    port: int
    page_token_secret: bytes = field(repr=False)
    home: Path
    embedded_pg_port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> "Settings":
        teacher = env_choice("MEND_LLM", "local", ("local", "bedrock", "openai"))
        policy = env_choice("MEND_PUBLISH_POLICY", "review", ("auto", "review"))
        if teacher == "local" and policy == "auto":
            # The small local model writes fixes a person should read first.
            raise SettingsError("MEND_PUBLISH_POLICY=auto needs a cloud teacher (MEND_LLM=bedrock or openai); "
                                "the embedded model's fixes always wait for review")
        return cls(
            **shared_from_env(),
            interactions_address=env_str("INTERACTIONS_ADDR", "127.0.0.1:50051"),
            bot_address=env_str("BOT_ADDR", "127.0.0.1:50052"),
            feedback_threshold=env_int("FEEDBACK_THRESHOLD", 5, minimum=1, maximum=1_000_000),
            publish_policy=policy,
            covered_similarity=env_float("MEND_COVERED_SIMILARITY", 0.8, minimum=-1.0, maximum=1.0),
            duplicate_similarity=env_float("MEND_DUPLICATE_SIMILARITY", 0.8, minimum=-1.0, maximum=1.0),
            teacher=teacher,
            teacher_model=env_str("MEND_TEACHER_MODEL", ""),
            judge_model=env_str("MEND_JUDGE_MODEL", ""),
            host=env_str("TRAINER_HOST", "127.0.0.1"),
            port=env_int("TRAINER_PORT", 50053, minimum=0, maximum=65535),
        )

"""Settings of the trainer, read once at start-up: the shared ones, its chat
model's (the teacher and the judge; never the bot's embedder or vector store),
and its own."""

from __future__ import annotations

from dataclasses import dataclass

from mendkit import addresses
from mendkit.credentials import TRAINER, Credential, callers_from_env
from mendkit.settings import (
    Listen,
    SettingsError,
    Shared,
    address_of,
    brand_from_env,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_str,
)
from mendmodels.settings import ChatModelSettings


@dataclass(frozen=True)
class Settings:
    shared: Shared
    listen: Listen
    chat: ChatModelSettings
    interactions_address: str
    bot_address: str
    feedback_threshold: int
    publish_policy: str  # "auto" | "review"
    # With the embedded model the judge is a similarity threshold: a published
    # entry at least this similar, other than the one the customer disliked,
    # answers a question the bot missed (its phrasing is added to that entry).
    covered_similarity: float
    # Disliked questions at least this similar to a fix written in the same run
    # (or to an earlier question of the page in a new fix) join that fix as
    # extra phrasings instead of becoming fixes of their own. 0.75: on the heal
    # benchmark (banking77 --seed 1, a new fix listing its 5 most typical
    # phrasings) 6.2 fixes per topic against 8.1 at 0.8, healed 86.2% against
    # 86.0%, 163 regressions against 172; at 0.7, 4.4 fixes per topic but 82.5%
    # healed (different topics merge).
    duplicate_similarity: float
    # Liked questions their entry does not list are proposed as its phrasings (trainer/loop.py, `reinforce`).
    liked_as_phrasings: bool
    # Model ids for the cloud teacher and judge; empty: Bedrock's Claude 3 Sonnet
    # and Haiku, or OPENAI_CHAT_MODEL for an OpenAI-compatible endpoint.
    teacher_model: str
    judge_model: str
    # The brand the teacher writes answers for.
    brand: str
    # The trainer's own token (it calls interactions and the bot with it), and
    # every identity's, to tell who calls its admin server (service.ACCESS: admin only).
    token: Credential
    callers: tuple[Credential, ...]

    @classmethod
    def from_env(cls) -> Settings:
        chat = ChatModelSettings.from_env()
        policy = env_choice("MEND_PUBLISH_POLICY", "review", ("auto", "review"))
        if chat.provider == "local" and policy == "auto":
            # The small local model writes fixes a person should read first.
            raise SettingsError("MEND_PUBLISH_POLICY=auto needs a cloud teacher (MEND_LLM=bedrock or openai); "
                                "the embedded model's fixes always wait for review")
        shared = Shared.from_env()
        token = Credential.from_env(TRAINER, shared.home)
        return cls(
            shared=shared,
            listen=Listen.from_env(addresses.TRAINER),
            chat=chat,
            interactions_address=address_of(addresses.INTERACTIONS),
            bot_address=address_of(addresses.BOT),
            feedback_threshold=env_int("FEEDBACK_THRESHOLD", 5, minimum=1, maximum=1_000_000),
            publish_policy=policy,
            covered_similarity=env_float("MEND_COVERED_SIMILARITY", 0.8, minimum=-1.0, maximum=1.0),
            duplicate_similarity=env_float("MEND_DUPLICATE_SIMILARITY", 0.75, minimum=-1.0, maximum=1.0),
            liked_as_phrasings=env_bool("MEND_LIKED_AS_PHRASINGS", True),
            teacher_model=env_str("MEND_TEACHER_MODEL", ""),
            judge_model=env_str("MEND_JUDGE_MODEL", ""),
            brand=brand_from_env(),
            token=token,
            callers=callers_from_env(shared.home, token),
        )

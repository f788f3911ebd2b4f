"""The healing benchmark's protocol at a tiny size, on the real services
(bench/heal_mesh.py) and a scratch database of the session's PostgreSQL: it
runs end to end and its report is complete and adds up. The numbers themselves
belong to the benchmark (bench/results/heal.md), not to this test."""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path

from bench.heal_bench import Options, bench
from bench.heal_score import CLASSES

# A banking77-shaped dataset of four intents, written here (the real one is not in the repository).
QUESTIONS = {
    "card_arrival": (["When will my new card arrive?", "My card still has not arrived, what now?",
                      "How long does card delivery take?", "Is my card in the post yet?"],
                     ["I am still waiting for my card.", "Where is the card you sent me?",
                      "How many days until the card comes?"]),
    "exchange_rate": (["What exchange rate do you use?", "How are currency rates calculated?",
                       "Is the exchange rate fair?", "Where can I see today's exchange rate?"],
                      ["Which rate applies when I pay in dollars?", "Do you add a margin to the exchange rate?",
                       "How do you convert euros to pounds?"]),
    "lost_or_stolen_card": (["I lost my card, what should I do?", "My card was stolen.",
                             "How do I block a stolen card?", "Someone took my wallet with my card."],
                            ["I cannot find my card anywhere.", "Please freeze my card, it is gone.",
                             "What happens if my card is stolen?"]),
    "top_up_failed": (["My top-up did not work.", "Why did my top up fail?",
                       "The top-up was declined, why?", "I tried to add money but it failed."],
                      ["Adding money to my account keeps failing.", "My top up was rejected.",
                       "Why can't I top up my account?"]),
}
REPORT_KEYS = {"dataset", "teacher", "options", "topics", "seen", "run", "review", "healed", "misrouted_healed",
               "stale_entries", "regressions", "accuracy", "duplicate_fixes", "fixes_per_topic", "triage", "judge",
               "failed_interactions", "services", "timing_s", "machine", "gate"}


def write_dataset(folder: Path) -> None:
    (folder / "banking77").mkdir(parents=True)
    for split, column in (("train", 0), ("test", 1)):
        with open(folder / "banking77" / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "category"])
            writer.writerows((text, intent) for intent, both in QUESTIONS.items() for text in both[column])


async def test_the_protocol_runs_and_its_report_adds_up(postgres_server: str, tmp_path: Path) -> None:
    write_dataset(tmp_path)
    url = postgres_server.rsplit("/", 1)[0] + f"/heal_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    report = await bench(Options(intents=4, questions=3, teacher="instant", database_url=url,
                                 datasets_dir=str(tmp_path), quiet=True))

    assert report.keys() >= REPORT_KEYS
    assert report["topics"] == {"intents": 4, "seeded": 3, "stale": 1, "gap": 1}
    seen = report["seen"]
    assert seen["asked"] == 12 and seen["liked"] + seen["disliked"] == 12
    assert sum(seen["disliked_by_class"].values()) == seen["disliked"]
    assert seen["disliked_by_class"]["gap"] == 3  # nothing in the index answers the unseeded topic
    for name in CLASSES:
        row = report["triage"][name]
        assert row["interactions"] == seen["disliked_by_class"][name]
        assert sum(row["actions"].values()) == row["interactions"] and 0 <= row["right"] <= row["interactions"]
    run = report["run"]
    assert run["state"] == "RUN_STATE_SUCCEEDED" and run["counts"]["read"] == seen["disliked"]
    assert sum(run["fixes_by_kind"].values()) == run["fixes"] >= 1 and run["run_time_s"] is not None
    # Every fix is approved, or held by the regression gate and then rejected (the default reviewer);
    # the liked questions the run adds to their entries are approved too, and counted apart.
    review, gate = report["review"], report["gate"]
    assert review["approved"] + review["held_by_gate"] == run["fixes"] + gate["liked_added"]["entries"]
    assert review["failures"] == 0 and review["overridden"] == 0
    assert gate["fixes_narrowed"] <= run["fixes"] and gate["fixes_with_regressions"] <= run["fixes"]
    for when in ("evaluation_before", "evaluation_after_run", "evaluation_after_review"):
        evaluation = gate[when]
        assert 0 <= evaluation["right"] <= evaluation["questions"] and evaluation["liked"] == seen["liked"]
    assert report["accuracy"]["unseen"] == 12 and report["healed"]["gap_unseen"] == 3
    assert report["regressions"]["wrong_after"] <= report["regressions"]["right_before"]
    duplicates = report["duplicate_fixes"]
    assert duplicates["new_entry_fixes"] == run["fixes_by_kind"].get("new_entry", 0)
    # Each new-entry fix approved is published as a new entry or approved into its topic's entry.
    assert duplicates["published_for_seeded_topics"] <= duplicates["published_new_entries"]
    assert duplicates["published_new_entries"] + review["into_topic_entry"] <= duplicates["new_entry_fixes"]
    assert review["into_topic_entry"] <= duplicates["for_seeded_topics"]
    judge = report["judge"]
    assert judge["true_positive"] + judge["false_negative"] <= seen["disliked_by_class"]["misrouted"]
    assert report["failed_interactions"] == {"chat": 0, "feedback": 0, "trainer": 0, "approvals": 0}

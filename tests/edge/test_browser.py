"""The whole mesh from the README's run command, used the way a customer uses
it: a real headless Chromium opens the page through Envoy on a phone-sized
screen and uses the keyboard. One mesh serves both tests: a grounded answer
streams in with its sources and is disliked with a reason; then the bot heals
a question it could not answer (dislike in the page, a trainer run with the
embedded model as teacher, a person approves an edited fix, and a paraphrase
gets the fix as its source)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess

import pytest

from tests.doubles.otlp_receiver import start_receiver
from tests.support import CHAT_PAGE, REPO, grpcurl, interrupt, mesh_env, start_mesh


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory):
    collector, receiver, collector_port = await start_receiver()
    env = {**mesh_env(tmp_path_factory.mktemp("mesh")),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}"}
    process, lines = await start_mesh(env)
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/"
    assert any(url in line for line in lines), lines
    yield env, url, receiver
    code, rest = await interrupt(process)
    await collector.stop(None)
    assert code == 0, rest


async def page(mode: str, url: str, question: str, comment: str = "") -> dict:
    run = await asyncio.to_thread(subprocess.run, ["node", str(CHAT_PAGE), mode, url, question, comment],
                                  capture_output=True, text=True, timeout=400, cwd=REPO)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert "error" not in seen, seen
    assert seen["consoleErrors"] == [] and seen["focusedOnLoad"] == "question"
    assert not seen["overflowsPhone"]
    return seen


def assert_form_closed(view: dict, where: str) -> None:
    """The dislike form is not on screen: Chromium renders none of it, and it takes no room."""
    assert not view["formVisible"], (where, view)
    assert not any(view["partsVisible"].values()), (where, view)
    assert view["display"] == "none", (where, view)
    assert view["form"]["width"] == 0 and view["form"]["height"] == 0, (where, view)
    assert view["hiddenShown"] == [], (where, view)


def assert_form_open(view: dict, where: str) -> None:
    """The dislike form is on screen and laid out as meant: a grid on its own line
    under the buttons, reason above comment above "Send feedback", each as wide
    as the form, none wider than the answer or the screen."""
    assert view["formVisible"] and all(view["partsVisible"].values()), (where, view)
    assert view["display"] == "grid", (where, view)
    form, group, parts = view["form"], view["group"], view["parts"]
    assert form["top"] >= view["dislike"]["bottom"], (where, view)
    assert abs(form["width"] - group["width"]) < 1, (where, view)
    select, comment, send = parts["select"], parts["comment"], parts["send"]
    assert select["bottom"] <= comment["top"] and comment["bottom"] <= send["top"], (where, view)
    for name in ("select", "comment"):
        assert parts[name]["width"] > 0.8 * form["width"] and parts[name]["height"] > 0, (where, name, view)
    for box in parts.values():
        assert form["left"] - 0.5 <= box["left"] and box["right"] <= form["right"] + 0.5, (where, view)
    assert view["scrollWidth"] <= view["innerWidth"], (where, view)
    assert view["hiddenShown"] == [], (where, view)


def assert_dislike_form_as_seen(seen: dict) -> None:
    """Closed under a fresh answer, open after "Not helpful" (with the reason
    focused), and closed again once sent, with the thanks showing."""
    views = seen["formViews"]
    for width, pixels in (("phone", 390), ("laptop", 1366)):
        assert views["closed"][width]["innerWidth"] == views["open"][width]["innerWidth"] == pixels, views
        assert_form_closed(views["closed"][width], f"before Not helpful, {width}")
        assert_form_open(views["open"][width], f"after Not helpful, {width}")
    # Where the person tapped (the phone): the focused reason is on screen, not under the sticky question box.
    tapped = views["open"]["phone"]
    assert tapped["focused"] == "reason" and tapped["focusedSeen"], tapped
    sent = views["sent"]["phone"]
    assert_form_closed(sent, "after Send feedback, phone")
    assert sent["statusVisible"] and sent["status"].startswith("Thanks"), sent


def snake(value):
    """grpcurl names fields as the descriptors it got say; compare in snake_case."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): snake(item) for key, item in value.items()}
    return [snake(item) for item in value] if isinstance(value, list) else value


def admin(env: dict[str, str], service: str, method: str, body: dict) -> dict:
    port = int(env[f"{service.upper()}_PORT"])
    reply = grpcurl(port, "-d", json.dumps(body), method)
    assert reply.returncode == 0, reply.stderr
    return snake(json.loads(reply.stdout))


async def test_a_customer_chats_sees_sources_and_dislikes_with_a_reason(mesh):
    env, url, receiver = mesh
    comment = "It did not say whether the return label is free."
    seen = await page("converse", url, "How long do I have to return something?", comment)
    # Streamed: the page showed the answer growing, not just at the end.
    assert seen["state"] == "done" and seen["grounded"] == "true"
    assert seen["chunks"] >= 2 and seen["partialTexts"] >= 2
    # Grounded in the sample knowledge, and the sources are on the page.
    assert "60" in seen["answer"]
    assert any("return" in source.lower() for source in seen["sources"])
    assert seen["tabsToDislike"] < 30
    assert_dislike_form_as_seen(seen)
    assert seen["feedbackStatus"].startswith("Thanks")

    interaction = admin(env, "interactions", "mend.interactions.v1.InteractionsService/GetInteraction",
                        {"interaction_id": seen["interactionId"]})["interaction"]
    assert interaction["user_query"] == "How long do I have to return something?"
    assert interaction["feedback"] == -1
    assert interaction["feedback_reason"] == "FEEDBACK_REASON_INCORRECT"
    assert interaction["feedback_comment"] == comment

    # One trace per call, started in the browser: the page's trace ids reach
    # Envoy, the services behind it, and PostgreSQL (spans are exported in batches).
    def services_in(trace_id: str) -> set[str]:
        return {service for service, span in receiver.spans if span.trace_id.hex() == trace_id}

    for _ in range(100):
        if {"mend-gateway", "interactions"} <= services_in(seen["feedbackTraceId"]) and \
                {"mend-gateway", "bot"} <= services_in(seen["traceId"]):
            break
        await asyncio.sleep(0.2)
    assert {"mend-gateway", "bot"} <= services_in(seen["traceId"])
    assert {"mend-gateway", "interactions"} <= services_in(seen["feedbackTraceId"])
    feedback_spans = [span for _, span in receiver.spans if span.trace_id.hex() == seen["feedbackTraceId"]]
    assert any(span.name.startswith("UPDATE") for span in feedback_spans), [s.name for s in feedback_spans]


async def test_the_bot_heals_a_disliked_question(mesh):
    env, url, receiver = mesh
    before = await page("converse", url, "Do you rent out kayaks?", "I wanted to know about renting.")
    assert before["state"] == "done" and before["grounded"] == "false" and not before["sources"]
    assert_dislike_form_as_seen(before)

    # The scheduled Job would wait for FEEDBACK_THRESHOLD dislikes; an admin forces a run now.
    run = admin(env, "trainer", "mend.trainer.v1.TrainerService/StartRun", {"force": True})["run"]
    for _ in range(600):
        run = admin(env, "trainer", "mend.trainer.v1.TrainerService/GetRun", {"run_id": run["run_id"]})["run"]
        if run["state"] != "RUN_STATE_RUNNING":
            break
        await asyncio.sleep(0.5)
    assert run["state"] == "RUN_STATE_SUCCEEDED", run

    # The run is one trace: the trainer, what it called in interactions and the
    # bot, and their PostgreSQL statements (spans are exported in batches).
    def run_trace() -> list:
        ids = {span.trace_id for service, span in receiver.spans
               if service == "trainer" and span.name == "mend.trainer.run"}
        return [(service, span) for service, span in receiver.spans if span.trace_id in ids]

    expected = {("interactions", "/mend.interactions.v1.InteractionsService/ListInteractions"),
                ("interactions", "/mend.interactions.v1.InteractionsService/MarkProcessed"),
                ("bot", "/mend.bot.v1.KnowledgeService/BatchSearchKnowledge"),
                ("bot", "/mend.bot.v1.KnowledgeService/UpsertEntries")}
    for _ in range(150):
        traced = run_trace()
        if expected <= {(service, span.name) for service, span in traced}:
            break
        await asyncio.sleep(0.2)
    assert expected <= {(service, span.name) for service, span in traced}, [(s, x.name) for s, x in traced]
    assert any(span.name.startswith("UPDATE") for service, span in traced if service == "interactions")

    fixes = admin(env, "trainer", "mend.trainer.v1.TrainerService/ListFixes",
                  {"state": "FIX_STATE_PROPOSED", "run_id": run["run_id"]})["fixes"]
    fix = next(f for f in fixes if before["interactionId"] in f["interaction_ids"])
    answer = ("No, we don't rent out kayaks or any other gear. We sell hiking and camping gear, and "
              "everything comes with our 60-day returns promise.")
    approved = admin(env, "trainer", "mend.trainer.v1.TrainerService/ApproveFix",
                     {"fix_id": fix["fix_id"], "answer": answer, "reviewer": "browser-test"})["fix"]
    assert approved["state"] == "FIX_STATE_PUBLISHED"

    after = await page("ask", url, "Can I hire a kayak from you?")
    assert after["state"] == "done" and after["grounded"] == "true"
    assert after["sourceIds"][0] == fix["entry_id"]
    assert any(word in after["answer"].lower() for word in ("rent", "hire", "kayak")), after["answer"]

    # The person undoes the fix through grpcurl: the entry leaves the index, the
    # interaction is marked rolled back, and the paraphrase is no longer answered from it.
    def refused(body: dict) -> str:
        reply = grpcurl(int(env["TRAINER_PORT"]), "-d", json.dumps(body), "mend.trainer.v1.TrainerService/RollbackFix")
        assert reply.returncode != 0
        return reply.stderr

    assert "NotFound" in refused({"fix_id": "not-a-fix", "reviewer": "browser-test"})
    unsigned = refused({"fix_id": fix["fix_id"]})
    assert "InvalidArgument" in unsigned and "reviewer" in unsigned
    rolled = admin(env, "trainer", "mend.trainer.v1.TrainerService/RollbackFix",
                   {"fix_id": fix["fix_id"], "reviewer": "browser-test", "note": "undo in the test"})["fix"]
    assert rolled["state"] == "FIX_STATE_ROLLED_BACK"
    interaction = admin(env, "interactions", "mend.interactions.v1.InteractionsService/GetInteraction",
                        {"interaction_id": before["interactionId"]})["interaction"]
    assert interaction.get("training_outcome") == "TRAINING_OUTCOME_ROLLED_BACK", interaction
    again = admin(env, "bot", "mend.bot.v1.ChatService/Chat", {"query": "Can I hire a kayak from you?"})
    assert fix["entry_id"] not in [source["entry_id"] for source in again.get("sources", [])], again

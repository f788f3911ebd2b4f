"""The whole mesh from the README's run command, used the way a customer uses
it: a real headless Chromium opens the page through Envoy on a phone-sized
screen and uses the keyboard. One mesh serves both tests: a grounded answer
streams in with its sources and is disliked with a reason; then the bot heals
a question it could not answer (dislike in the page, a trainer run with the
embedded model as teacher, a person approves an edited fix, and a paraphrase
gets the fix as its source). The same mesh serves the conversation tests:
questions typed while an answer streams wait their turn, the conversation
survives a reload of the tab, links in answers are links while markup stays
text, and an answer the bot does not know offers the configured way to a person."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.doubles.otlp_receiver import start_receiver
from tests.support import (
    CHAT_PAGE,
    REPO,
    answered,
    free_port,
    grpcurl,
    interrupt,
    kept_admin_token,
    mesh_env,
    snake,
    start_mesh,
    wait_for_port,
)

CONVERSATION = REPO / "tests" / "browser" / "conversation.mjs"  # whole conversations in Chromium (node)
# Where the page's handoff action points (served to it as config.json by the static site).
HANDOFF_URL = "https://help.alderandfinch.example/contact?from=chat"
# The bot's own "how to reach a person" text, said in every answer it does not know: here
# with a web address, an e-mail address and markup that would run if the page rendered it.
PLANTED = """<img src=x onerror="document.body.dataset.xss='answer'">"""
HANDOFF_TEXT = ("write to care@alderandfinch.example, see https://help.alderandfinch.example/contact?topic=chat, "
                f"or read {PLANTED}")


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory):
    collector, receiver, collector_port = await start_receiver()
    env = {**mesh_env(tmp_path_factory.mktemp("mesh")),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
           "MEND_HANDOFF_URL": HANDOFF_URL, "MEND_HANDOFF": HANDOFF_TEXT}
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


def admin(env: dict[str, str], service: str, method: str, body: dict) -> dict:
    """A person's call, with the admin token the mesh made (README's examples)."""
    port = int(env[f"{service.upper()}_PORT"])
    return answered(grpcurl(port, "-d", json.dumps(body), method, token=kept_admin_token(env["MEND_HOME"])))


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
    # The embedded teacher takes ~20 s on an idle machine, minutes on a loaded one: a deadline, not a timing.
    for _ in range(1800):
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
        reply = grpcurl(int(env["TRAINER_PORT"]), "-d", json.dumps(body), "mend.trainer.v1.TrainerService/RollbackFix",
                        token=kept_admin_token(env["MEND_HOME"]))
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


# --- whole conversations (tests/browser/conversation.mjs) ------------------------------------

async def conversation(mode: str, url: str, *questions: str) -> dict:
    run = await asyncio.to_thread(subprocess.run, ["node", str(CONVERSATION), mode, url, *questions],
                                  capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert "error" not in seen, seen["error"]
    assert seen["consoleErrors"] == [] and seen["focusedOnLoad"] == "question", seen
    return seen


def fits(view: dict, width: int) -> None:
    """Nothing is wider than the screen."""
    assert view["innerWidth"] == width and view["scrollWidth"] <= width, view


async def interaction(env: dict[str, str], interaction_id: str) -> dict:
    """The logged exchange (the bot's outbox delivers it just after the answer ends)."""
    for _ in range(50):
        reply = grpcurl(int(env["INTERACTIONS_PORT"]), "-d", json.dumps({"interaction_id": interaction_id}),
                        "mend.interactions.v1.InteractionsService/GetInteraction",
                        token=kept_admin_token(env["MEND_HOME"]))
        if reply.returncode == 0:
            return snake(json.loads(reply.stdout))["interaction"]
        assert "NotFound" in reply.stderr, reply.stderr
        await asyncio.sleep(0.2)
    raise AssertionError(f"interaction {interaction_id} was never logged")


async def test_questions_typed_while_an_answer_streams_wait_their_turn(mesh):
    """Two more questions typed while the first answer is on its way are shown as
    waiting, sent one after the other as each answer ends, and answered in order
    (with three at once the bot would have said "the chat model is busy")."""
    env, url, _ = mesh
    questions = ("Can you tune my bicycle?", "How long do I have to return something?", "Do you ship to Norway?")
    seen = await conversation("queue", url, *questions)

    assert seen["queuedSeen"], seen["whileWaiting"]["phone"]
    for width, pixels in (("phone", 390), ("laptop", 1366)):
        waiting = seen["whileWaiting"][width]
        fits(waiting, pixels)
        assert [(b["who"], b["state"]) for b in waiting["bubbles"]] == \
            [("customer", ""), ("bot", "streaming"), ("customer", "queued"), ("customer", "queued")], waiting
        assert all(b["queuedNote"].startswith("Waiting") for b in waiting["bubbles"][2:]), waiting
        assert "sent when the current answer is finished" in waiting["status"], waiting
    # The browser sent each question only once the answer before it had ended.
    assert [sent["query"] for sent in seen["sent"]] == list(questions), seen["sent"]
    assert [sent["answersOnPage"] for sent in seen["sent"]] == \
        [["streaming"], ["done", "streaming"], ["done", "done", "streaming"]], seen["sent"]

    for width, pixels in (("phone", 390), ("laptop", 1366)):
        answered = seen["answered"][width]
        fits(answered, pixels)
        bubbles = answered["bubbles"]
        assert [b["who"] for b in bubbles] == ["customer", "bot"] * 3, bubbles
        assert [b["text"] for b in bubbles[0::2]] == list(questions)
        assert all(b["state"] == "" and not b["queuedNote"] for b in bubbles[0::2]), bubbles
        assert all(b["state"] == "done" for b in bubbles[1::2]), bubbles
        # A person is offered exactly where the bot did not know.
        for bot in bubbles[1::2]:
            assert (bot["handoff"] is not None) == (bot["grounded"] == "false" or bot["unsure"] == "true"), bot
            assert bool(bot["sources"]) == (bot["grounded"] == "true"), bot
    # Each answer under its own question: the logged exchange behind each bubble.
    bots = seen["answered"]["phone"]["bubbles"][1::2]
    for question, bot in zip(questions, bots, strict=True):
        logged = await interaction(env, bot["interactionId"])
        assert logged["user_query"] == question, (logged, bot)
        assert logged["bot_response"].strip() == bot["answer"].strip(), (logged, bot)
    assert bots[1]["grounded"] == "true" and "60" in bots[1]["answer"], bots[1]


async def test_the_conversation_survives_a_reload_of_the_tab(mesh):
    """A reload shows the conversation again (answers, sources, votes); an answer
    still on its way at the reload is shown as interrupted and asked again with its
    own request id; a vote after the reload is stored; the bot continues the same
    conversation; a second reload shows the vote given."""
    env, url, _ = mesh
    first, second = "How long do I have to return something?", "Do you ship to Norway?"
    seen = await conversation("reload", url, first, second)

    before = seen["before"]["bubbles"]
    reloaded = seen["reloaded"]["bubbles"]
    assert seen["focusedAfterReload"] == "question"
    assert [(b["who"], b["text"]) for b in reloaded] == \
        [("customer", first), ("bot", ""), ("customer", second), ("bot", "")], reloaded
    answer = reloaded[1]
    assert answer["state"] == "done" and answer["grounded"] == "true" and "60" in answer["answer"], answer
    assert (answer["answer"], answer["sources"], answer["interactionId"]) == \
        (before[1]["answer"], before[1]["sources"], before[1]["interactionId"]) and answer["sources"], (answer, before)
    cut = reloaded[3]
    assert cut["state"] == "interrupted" and cut["retry"] and "reloaded" in cut["answer"], cut

    # The vote after the reload reached interactions.
    retried = seen["retried"]["bubbles"]
    assert retried[1]["rating"] == "like" and retried[1]["feedbackStatus"].startswith("Thanks"), retried[1]
    assert (await interaction(env, answer["interactionId"]))["feedback"] == 1
    # "Try again" sent the interrupted question with the request id it had before the reload.
    assert [sent["query"] for sent in seen["sent"]] == [first, second, second], seen["sent"]
    assert seen["sent"][1]["requestIds"][-1] == seen["sent"][2]["requestIds"][-1], seen["sent"]
    assert retried[3]["state"] == "done" and retried[3]["answer"], retried[3]
    # Both answers belong to one conversation, the one the page kept.
    stored = seen["stored"]
    one = await interaction(env, answer["interactionId"])
    two = await interaction(env, retried[3]["interactionId"])
    assert one["conversation_id"] == two["conversation_id"] == stored["conversationId"], (one, two, stored)
    # With the conversation's token, which the page sent on the later turn and with the vote (through the
    # gateway, the bot and interactions refuse either without it).
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", stored["conversationToken"]), stored
    assert two["user_query"] == second and retried[3]["interactionId"] == seen["sent"][2]["requestIds"][-1]

    again = seen["reloadedAgain"]["bubbles"]
    assert again[1]["rating"] == "like" and again[1]["likePressed"] == "true", again[1]
    assert [(b["state"], b["answer"], b["sources"]) for b in again] == \
        [(b["state"], b["answer"], b["sources"]) for b in retried], (again, retried)


async def test_links_in_answers_are_links_and_markup_stays_text(mesh):
    """The web address and the e-mail address in an answer are links (a new tab that
    cannot reach back into the page; mailto:), and markup in the answer, or in the
    question, is shown as the characters it is and never runs."""
    _, url, _ = mesh
    question = """Can you tune my bicycle? <img src=x onerror="document.body.dataset.xss='question'">"""
    seen = await conversation("links", url, question)
    for width, pixels in (("phone", 390), ("laptop", 1366)):
        view = seen["answered"][width]
        fits(view, pixels)
        customer, bot = view["bubbles"]
        assert customer["text"] == question, customer
        assert bot["state"] == "done" and PLANTED in bot["answer"], bot
        assert bot["links"] == [
            {"href": "mailto:care@alderandfinch.example", "target": None, "rel": None,
             "text": "care@alderandfinch.example", "visible": True},
            {"href": "https://help.alderandfinch.example/contact?topic=chat", "target": "_blank",
             "rel": "noopener noreferrer", "text": "https://help.alderandfinch.example/contact?topic=chat",
             "visible": True},
        ], bot["links"]
        assert bot["elementsInAnswer"] == ["a", "a"], bot
        assert view["images"] == 0 and view["planted"] == "", view


async def test_an_answer_the_bot_does_not_know_offers_a_person(mesh):
    """Under an answer the bot does not know, the page offers the way to a person as an
    action: a link to MEND_HANDOFF_URL, as big as a button, inside the answer at
    both widths, reached by keyboard right after the rating buttons."""
    _, url, _ = mesh
    seen = await conversation("links", url, "Can you tune my bicycle?")
    for width, pixels in (("phone", 390), ("laptop", 1366)):
        view = seen["answered"][width]
        fits(view, pixels)
        bot = view["bubbles"][1]
        assert bot["grounded"] == "false" and not bot["sources"], bot
        handoff = bot["handoff"]
        assert handoff is not None, bot
        assert (handoff["href"], handoff["text"], handoff["target"], handoff["rel"]) == \
            (HANDOFF_URL, "Contact our team", "_blank", "noopener noreferrer"), handoff
        assert handoff["visible"] and handoff["box"]["height"] >= 44, handoff
        assert handoff["bubble"]["left"] <= handoff["box"]["left"] and \
            handoff["box"]["right"] <= handoff["bubble"]["right"], handoff
    assert seen["shiftTabPath"] == ["dislike", "like", "handoff"] and seen["handoffFocusedSeen"], seen


async def test_an_answer_the_bot_is_not_sure_of_offers_a_person_too(mesh):
    """A follow-up nothing covers on its own is answered from the conversation's
    topic, saying the bot is not sure it understood: the page offers a person
    under it, as under an answer the bot does not know, and not under the sure
    answer before it."""
    _, url, _ = mesh
    seen = await conversation("queue", url, "My tent pole broke, can you fix it?", "how much will that cost me?")
    for width, pixels in (("phone", 390), ("laptop", 1366)):
        view = seen["answered"][width]
        fits(view, pixels)
        first, follow_up = view["bubbles"][1], view["bubbles"][3]
        assert (first["grounded"], first["unsure"], first["handoff"]) == ("true", "false", None), first
        assert (follow_up["grounded"], follow_up["unsure"]) == ("true", "true"), follow_up
        assert follow_up["answer"].startswith("I'm not sure I understood") and "€15 per section" in follow_up["answer"]
        assert follow_up["sources"] and follow_up["handoff"]["visible"], follow_up
        assert follow_up["handoff"]["text"] == "Contact our team" and follow_up["handoff"]["box"]["height"] >= 44


# --- the page's settings (mesh/static_site.py serves config.json) -------------------------------

async def test_the_static_site_serves_the_handoff_link_it_is_given_and_refuses_an_unsafe_one(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "config.json").write_text(json.dumps({"handoffUrl": "mailto:care@alderandfinch.example",
                                                      "handoffLabel": "Contact our team"}))
    base = {**os.environ, "WEB_ROOT": str(tmp_path)}

    async def serve(**settings: str) -> dict:
        port = free_port()
        site = await asyncio.create_subprocess_exec(sys.executable, "-m", "mesh.static_site", cwd=REPO,
                                                    env={**base, "WEB_PORT": str(port), **settings})
        try:
            await wait_for_port(port)
            async with httpx.AsyncClient() as client:
                reply = await client.get(f"http://127.0.0.1:{port}/config.json")
            assert reply.headers["content-type"] == "application/json"
            return reply.json()
        finally:
            site.terminate()
            await site.wait()

    # Unset: the built defaults; set: the operator's link and words.
    assert await serve() == {"handoffUrl": "mailto:care@alderandfinch.example", "handoffLabel": "Contact our team"}
    assert await serve(MEND_HANDOFF_URL=HANDOFF_URL, MEND_HANDOFF_LABEL="Talk to a person") == \
        {"handoffUrl": HANDOFF_URL, "handoffLabel": "Talk to a person"}
    # A link that would run in the page stops the server at start, naming the variable.
    for unsafe in ("javascript:alert(1)", "data:text/html,hi", "/contact", "https://"):
        refused = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "mesh.static_site"], cwd=REPO,
                                          env={**base, "WEB_PORT": str(free_port()), "MEND_HANDOFF_URL": unsafe},
                                          capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2 and "MEND_HANDOFF_URL" in refused.stderr, (unsafe, refused.stderr)

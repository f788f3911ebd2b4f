"""The whole mesh from the README's run command, used the way a customer uses
it: a real headless Chromium opens the page through Envoy, asks a sample
question by keyboard on a phone-sized screen, watches a grounded answer stream
in with its sources, dislikes it with a reason, and the feedback is in the
interactions table."""

from __future__ import annotations

import asyncio
import json
import subprocess

from tests.conftest import REPO
from tests.otlp_receiver import start_receiver
from tests.test_interactions_process import grpcurl
from tests.test_mesh import interrupt, mesh_env, start_mesh

PAGE_SCRIPT = REPO / "tests" / "browser" / "chat_page.mjs"


async def test_a_customer_chats_sees_sources_and_dislikes_with_a_reason(tmp_path):
    collector, receiver, collector_port = await start_receiver()
    env = {**mesh_env(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}"}
    process, lines = await start_mesh(env)
    try:
        url = f"http://127.0.0.1:{env['GATEWAY_PORT']}/"
        assert any(url in line for line in lines)
        comment = "It did not say whether the return label is free."
        page = await asyncio.to_thread(
            subprocess.run, ["node", str(PAGE_SCRIPT), "converse", url, "How long do I have to return something?",
                             comment], capture_output=True, text=True, timeout=400, cwd=REPO)
        assert page.returncode == 0, page.stderr
        seen = json.loads(page.stdout)
        assert "error" not in seen, seen
        assert seen["consoleErrors"] == []
        assert seen["focusedOnLoad"] == "question"
        # Streamed: the page showed the answer growing, not just at the end.
        assert seen["state"] == "done" and seen["grounded"] == "true"
        assert seen["chunks"] >= 2 and seen["partialTexts"] >= 2
        # Grounded in the sample knowledge, and the sources are on the page.
        assert "60" in seen["answer"]
        assert any("return" in source.lower() for source in seen["sources"])
        assert not seen["overflowsPhone"]
        assert seen["tabsToDislike"] < 30
        assert seen["feedbackStatus"].startswith("Thanks")

        stored = grpcurl(int(env["INTERACTIONS_PORT"]), "-d", json.dumps({"interaction_id": seen["interactionId"]}),
                         "mend.interactions.v1.InteractionsService/GetInteraction")
        assert stored.returncode == 0, stored.stderr
        interaction = json.loads(stored.stdout)["interaction"]
        assert interaction["user_query"] == "How long do I have to return something?"
        assert interaction["feedback"] == -1
        assert interaction["feedback_reason"] == "FEEDBACK_REASON_INCORRECT"
        assert interaction["feedback_comment"] == comment
    finally:
        code, rest = await interrupt(process)
        await collector.stop(None)
    assert code == 0, rest

    # One trace per call, started in the browser: the page's trace ids reach
    # Envoy, the services behind it, and PostgreSQL.
    def services_in(trace_id: str) -> set[str]:
        return {service for service, span in receiver.spans if span.trace_id.hex() == trace_id}

    assert {"mend-gateway", "bot"} <= services_in(seen["traceId"])
    assert {"mend-gateway", "interactions"} <= services_in(seen["feedbackTraceId"])
    feedback_spans = [span for _, span in receiver.spans if span.trace_id.hex() == seen["feedbackTraceId"]]
    assert any(span.name.startswith("UPDATE") for span in feedback_spans), [s.name for s in feedback_spans]
    # Ctrl-C stopped Envoy and the page server too.
    for port in (env["GATEWAY_PORT"], env["WEB_PORT"], env["GATEWAY_ADMIN_PORT"]):
        assert subprocess.run(["curl", "-s", "-m", "2", f"http://127.0.0.1:{port}/"]).returncode != 0

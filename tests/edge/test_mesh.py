"""README's run command (`python -m mesh`, what ./scripts/up runs): brings the
mesh up, reports where it listens and the admin token its examples use, stops
everything on Ctrl-C, reuses data (and the token), and reports a taken port
plainly."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess

from mendkit.credentials import ADMIN, BOT, TRAINER, token_file
from tests.support import PYTHON, REPO, answered, grpcurl, interrupt, kept_admin_token, mesh_env, start_mesh


async def test_mesh_comes_up_stops_cleanly_and_reuses_data(tmp_path):
    env = mesh_env(tmp_path)
    port, bot_port, trainer_port = int(env["INTERACTIONS_PORT"]), int(env["BOT_PORT"]), int(env["TRAINER_PORT"])
    process, lines = await start_mesh(env)
    try:
        assert any(f"chat in your browser:  http://127.0.0.1:{env['GATEWAY_PORT']}/" in line for line in lines)
        assert any(f"grpc://127.0.0.1:{port}" in line for line in lines)
        assert any(f"grpc://127.0.0.1:{bot_port}" in line for line in lines)
        assert any("ingested" in line and "sample-kb" in line for line in lines)
        # The admin token, made on this first start and kept for its owner alone, is printed for the examples.
        token = kept_admin_token(tmp_path)
        assert (tmp_path / token_file(ADMIN)).stat().st_mode & 0o077 == 0
        assert any(f"export TOKEN='{token}'" in line for line in lines), lines
        examples = [line for line in lines if "grpcurl " in line]
        assert len(examples) >= 5 and all('-H "authorization: Bearer $TOKEN"' in line for line in examples), examples
        # The bot's and the trainer's own tokens, for their calls to the other services: different ones.
        kept = {identity: (tmp_path / token_file(identity)).read_text() for identity in (ADMIN, BOT, TRAINER)}
        assert len(set(kept.values())) == 3

        # The bot answers and logs through interactions as the bot (a question the sample
        # knowledge cannot answer: the fallback needs no model time).
        chat = grpcurl(bot_port, "-d", '{"query": "What is the capital city of Peru?"}',
                       "mend.bot.v1.ChatService/Chat", token=None)  # a customer's call needs no token
        assert chat.returncode == 0, chat.stderr
        logged = grpcurl(port, "-d", json.dumps({"interaction_id": json.loads(chat.stdout)["interaction_id"]}),
                         "mend.interactions.v1.InteractionsService/GetInteraction", token=token)
        assert logged.returncode == 0, logged.stderr
        # The trainer's admin surface, through reflection (open, like health) ...
        listed = grpcurl(trainer_port, "list", token=None)
        assert "mend.trainer.v1.TrainerService" in listed.stdout.split()
        health = grpcurl(trainer_port, "grpc.health.v1.Health/Check", token=None)
        assert json.loads(health.stdout) == {"status": "SERVING"}
        # ... and its methods only with the admin token.
        refused = grpcurl(trainer_port, "mend.trainer.v1.TrainerService/ListRuns", token=None)
        assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
        runs = grpcurl(trainer_port, "mend.trainer.v1.TrainerService/ListRuns", token=token)
        assert runs.returncode == 0, runs.stderr
        # A run reads interactions as the trainer (nothing disliked yet: no teacher needed).
        run = answered(grpcurl(trainer_port, "-d", '{"force": true}', "mend.trainer.v1.TrainerService/StartRun",
                               token=token))["run"]
        for _ in range(100):
            run = answered(grpcurl(trainer_port, "-d", json.dumps({"run_id": run["run_id"]}),
                                   "mend.trainer.v1.TrainerService/GetRun", token=token))["run"]
            if run["state"] != "RUN_STATE_RUNNING":
                break
            await asyncio.sleep(0.2)
        assert run["state"] == "RUN_STATE_SUCCEEDED", run
        body = json.dumps({"interaction": {"interaction_id": "0b8f5a52-3c1b-4e0c-9a57-8f5b1d1b7c11",
                                           "user_query": "Still there?", "bot_response": "Yes."}})
        create = "mend.interactions.v1.InteractionsService/CreateInteraction"
        assert "Unauthenticated" in grpcurl(port, "-d", body, create, token=None).stderr
        assert grpcurl(port, "-d", body, create, token=token).returncode == 0
    finally:
        code, rest = await interrupt(process)
    assert code == 0, rest
    assert rest.strip().endswith("mesh: stopped")
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
    for service in ("interactions", "bot", "trainer"):
        log = (tmp_path / "logs" / f"{service}.log").read_text()
        assert log.count('"message": "stopped"') == 1
        assert not any(kept_token in log for kept_token in kept.values())  # no token in any log

    process, lines = await start_mesh(env)
    try:
        assert any(f"export TOKEN='{token}'" in line for line in lines)  # the same token as before
        got = grpcurl(port, "-d", '{"interaction_id": "0b8f5a52-3c1b-4e0c-9a57-8f5b1d1b7c11"}',
                      "mend.interactions.v1.InteractionsService/GetInteraction", token=token)
        assert json.loads(got.stdout)["interaction"]["user_query"] == "Still there?"
    finally:
        code, _ = await interrupt(process)
    assert code == 0


def test_mesh_reports_a_taken_port(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        run = subprocess.run([PYTHON, "-m", "mesh"], cwd=REPO, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "MEND_HOME": str(tmp_path), "INTERACTIONS_PORT": str(port)})
    assert run.returncode == 1
    assert f"port {port} for interactions is already in use" in run.stdout
    assert "INTERACTIONS_PORT" in run.stdout


def test_every_grpcurl_example_in_the_readme_carries_the_admin_token():
    readme = (REPO / "README.md").read_text()
    examples = [line for line in readme.splitlines() if "grpcurl -plaintext" in line]
    assert len(examples) >= 20
    assert all('grpcurl -plaintext -H "authorization: Bearer $TOKEN" ' in line for line in examples), examples

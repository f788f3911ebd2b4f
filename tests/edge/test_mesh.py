"""README's run command (`python -m mesh`, what ./scripts/up runs): brings the
mesh up, reports where it listens, stops everything on Ctrl-C, reuses data,
and reports a taken port plainly."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from tests.support import PYTHON, REPO, grpcurl, interrupt, mesh_env, start_mesh


async def test_mesh_comes_up_stops_cleanly_and_reuses_data(tmp_path):
    env = mesh_env(tmp_path)
    port, bot_port, trainer_port = int(env["INTERACTIONS_PORT"]), int(env["BOT_PORT"]), int(env["TRAINER_PORT"])
    process, lines = await start_mesh(env)
    try:
        assert any(f"chat in your browser:  http://127.0.0.1:{env['GATEWAY_PORT']}/" in line for line in lines)
        assert any(f"grpc://127.0.0.1:{port}" in line for line in lines)
        assert any(f"grpc://127.0.0.1:{bot_port}" in line for line in lines)
        assert any("ingested" in line and "sample-kb" in line for line in lines)
        # The bot answers and logs through interactions (a question the sample
        # knowledge cannot answer: the fallback needs no model time).
        chat = grpcurl(bot_port, "-d", '{"query": "What is the capital city of Peru?"}',
                       "mend.bot.v1.ChatService/Chat")
        assert chat.returncode == 0, chat.stderr
        logged = grpcurl(port, "-d", json.dumps({"interaction_id": json.loads(chat.stdout)["interaction_id"]}),
                         "mend.interactions.v1.InteractionsService/GetInteraction")
        assert logged.returncode == 0, logged.stderr
        # The trainer's admin surface, through reflection.
        listed = grpcurl(trainer_port, "list")
        assert "mend.trainer.v1.TrainerService" in listed.stdout.split()
        runs = grpcurl(trainer_port, "mend.trainer.v1.TrainerService/ListRuns")
        assert runs.returncode == 0, runs.stderr
        body = json.dumps({"interaction": {"interaction_id": "0b8f5a52-3c1b-4e0c-9a57-8f5b1d1b7c11",
                                           "user_query": "Still there?", "bot_response": "Yes."}})
        assert grpcurl(port, "-d", body, "mend.interactions.v1.InteractionsService/CreateInteraction").returncode == 0
    finally:
        code, rest = await interrupt(process)
    assert code == 0, rest
    assert rest.strip().endswith("mesh: stopped")
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
    for service in ("interactions", "bot", "trainer"):
        assert (tmp_path / "logs" / f"{service}.log").read_text().count('"message": "stopped"') == 1

    process, _ = await start_mesh(env)
    try:
        got = grpcurl(port, "-d", '{"interaction_id": "0b8f5a52-3c1b-4e0c-9a57-8f5b1d1b7c11"}',
                      "mend.interactions.v1.InteractionsService/GetInteraction")
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

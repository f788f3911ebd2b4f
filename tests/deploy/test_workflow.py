"""The CI/CD workflow (.github/workflows/), checked offline: against GitHub's
workflow schema (check-jsonschema's vendored copy), and by running its own shell
steps with stand-ins for the registry and the cluster: when it publishes and
deploys, which images and tags it builds, and what `helm upgrade --install` gets,
rendered by the real helm CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import PRODUCTION, REPO, helm_cli, helm_template

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = REPO / ".venv" / "bin" / "check-jsonschema"


def workflow() -> dict[str, Any]:
    (path,) = WORKFLOWS
    loaded = yaml.safe_load(path.read_text())
    loaded["on"] = loaded.pop(True)  # YAML 1.1 reads the key `on` as true
    return loaded


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_the_workflow_meets_githubs_schema() -> None:
    assert WORKFLOWS
    result = validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_reject_a_broken_workflow(tmp_path: Path) -> None:
    """Guards the test above: a job with neither `runs-on` nor `uses` is refused."""
    broken = workflow()
    del broken["jobs"]["test"]["runs-on"]
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert validate(path).returncode != 0


def test_pull_requests_and_main_run_the_readmes_test_command() -> None:
    flow = workflow()
    assert "pull_request" in flow["on"] and flow["on"]["push"]["branches"] == ["main"]
    steps = flow["jobs"]["test"]["steps"]
    assert [s["run"] for s in steps if "run" in s] == ["./scripts/test"]
    assert "./scripts/test" in (REPO / "README.md").read_text()
    assert flow["jobs"]["images"]["needs"] == ["test", "settings"]  # nothing is published untested


def run_step(job: str, step_id_or_name: str, env: dict[str, str], tmp_path: Path, path: str = "") -> dict[str, str]:
    """Runs a workflow step's shell script with `env` (its own `${{ }}` env values
    replaced), in a fresh GITHUB_OUTPUT; returns what it wrote there."""
    (step,) = [s for s in workflow()["jobs"][job]["steps"] if step_id_or_name in (s.get("id"), s.get("name"))]
    output = tmp_path / "output"
    output.write_text("")
    environment = {"PATH": f"{path}:/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(tmp_path),
                   **env}
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=REPO, env=environment, check=True, capture_output=True,
                   text=True, timeout=60)
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


SETTINGS = {"REGISTRY": "ghcr.io/acme", "NAMESPACE": "care", "HAS_KUBECONFIG": "true",
            "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"}


@pytest.mark.parametrize(("changes", "publish", "deploy"), [
    ({}, "true", "true"),
    ({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge"}, "false", "false"),
    ({"GITHUB_REF": "refs/heads/feature"}, "false", "false"),
    ({"REGISTRY": ""}, "false", "false"),  # no registry: nothing to push to or deploy from
    ({"HAS_KUBECONFIG": "false"}, "true", "false"),  # no cluster credentials: images only
    ({"NAMESPACE": ""}, "true", "false"),
    ({"GITHUB_EVENT_NAME": "workflow_dispatch"}, "false", "true"),  # a hand-run roll-out of pushed images
])
def test_publishing_and_deploying_wait_for_their_settings(
        tmp_path: Path, changes: dict[str, str], publish: str, deploy: str) -> None:
    outputs = run_step("settings", "check", {**SETTINGS, **changes}, tmp_path)
    assert outputs == {"publish": publish, "deploy": deploy}
    jobs = workflow()["jobs"]
    assert jobs["images"]["if"] == "needs.settings.outputs.publish == 'true'"
    assert "needs.settings.outputs.deploy == 'true'" in jobs["deploy"]["if"]


def test_the_images_are_tagged_with_the_commit_and_the_python_one_is_lean() -> None:
    images = workflow()["jobs"]["images"]
    built = {entry["image"]: entry for entry in images["strategy"]["matrix"]["include"]}
    assert set(built) == {"mend", "mend-web"}
    for entry in built.values():
        assert (REPO / entry["dockerfile"]).exists()
    assert built["mend"]["dockerfile"] == "deploy/mend.Dockerfile"
    assert built["mend"]["build-args"] == "EMBEDDED_CHAT_MODEL=omit"  # the cloud-only image
    (build,) = [s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action")]
    tags = [line.strip() for line in build["with"]["tags"].splitlines() if line.strip()]
    assert tags == ["${{ vars.MEND_REGISTRY }}/${{ matrix.image }}:${{ github.sha }}",
                    "${{ vars.MEND_REGISTRY }}/${{ matrix.image }}:latest"]
    assert build["with"]["file"] == "${{ matrix.dockerfile }}" and build["with"]["push"] is True


def deploy_env(service: str) -> dict[str, str]:
    values = {**PRODUCTION, "config": {"aws": {"region": "eu-west-1"}}}
    return {"REGISTRY": "registry.example.com/acme", "NAMESPACE": "care", "RELEASE": "shop",
            "KUBECONFIG_TEXT": "apiVersion: v1\nkind: Config\n", "HELM_VALUES": yaml.safe_dump(values),
            "SERVICE": service, "TAG": "4f1c2e9d0b7a"}


def helm_calls(service: str, tmp_path: Path) -> list[list[str]]:
    """The helm commands the deploy step runs, recorded by a stand-in helm."""
    stand_in = tmp_path / "bin" / "helm"
    stand_in.parent.mkdir()
    stand_in.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$CALLS/$(ls "$CALLS" | wc -l)"\n')
    stand_in.chmod(0o755)
    calls = tmp_path / "calls"
    calls.mkdir()
    run_step("deploy", "helm upgrade --install", {**deploy_env(service), "CALLS": str(calls)}, tmp_path,
             path=str(stand_in.parent))
    recorded = [p.read_text().splitlines() for p in sorted(calls.iterdir(), key=lambda p: int(p.name))]
    return recorded


def upgrade_arguments(call: list[str]) -> list[str]:
    """An upgrade's arguments that `helm template` takes too (not the cluster's)."""
    assert call[:2] == ["upgrade", "--install"] and call[3] == "./helm/mend"
    kept, skip = [], False
    for word in call[4:]:
        if skip:
            skip = False
            continue
        if word in ("--timeout", "--namespace"):
            skip = True
        elif word not in ("--wait", "--create-namespace", "--reset-then-reuse-values"):
            kept.append(word)
    return kept


def python_images(documents: list[dict[str, Any]]) -> dict[str, str]:
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
            for d in documents if d["kind"] == "Deployment"}


def test_main_deploys_every_service_at_the_commits_images(tmp_path: Path) -> None:
    upgrade, test = helm_calls("all", tmp_path)
    assert upgrade[2] == "shop" and upgrade[upgrade.index("--namespace") + 1] == "care"
    assert test[:2] == ["test", "shop"]
    images = python_images(helm_template(*upgrade_arguments(upgrade)))
    tag = "4f1c2e9d0b7a"
    assert images == {
        "shop-mend-interactions": f"registry.example.com/acme/mend:{tag}",
        "shop-mend-bot": f"registry.example.com/acme/mend:{tag}",
        "shop-mend-trainer": f"registry.example.com/acme/mend:{tag}",
        "shop-mend-web": f"registry.example.com/acme/mend-web:{tag}",
        "shop-mend-gateway": "envoyproxy/envoy:v1.40.0",
    }
    assert "latest" not in " ".join(upgrade)


def test_a_hand_run_rolls_out_one_service_by_its_tag(tmp_path: Path) -> None:
    (upgrade, _) = helm_calls("bot", tmp_path)
    # The other services keep the tags they run, and values the chart gained since get its defaults.
    assert "--reset-then-reuse-values" in upgrade and "--reuse-values" not in upgrade
    images = python_images(helm_template(*upgrade_arguments(upgrade)))
    assert images["shop-mend-bot"] == "registry.example.com/acme/mend:4f1c2e9d0b7a"
    # Rendered without the release's values, the others show the chart's default tag.
    assert images["shop-mend-interactions"] == "registry.example.com/acme/mend:0.1.0"


def test_the_deploy_job_uses_the_helm_the_tests_use() -> None:
    (setup,) = [s for s in workflow()["jobs"]["deploy"]["steps"] if s.get("uses", "").startswith("azure/setup-helm")]
    assert helm_cli("version", "--short").stdout.startswith(f"{setup['with']['version']}+")

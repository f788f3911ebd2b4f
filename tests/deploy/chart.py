"""What the deployment tests share: where the chart is, the release they render it
as, and the values scenarios (tests/deploy/test_helm.py renders each with Helm's Go
SDK, tests/deploy/test_helm_cli.py with the helm CLI)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]  # tests/deploy/chart.py
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
                "cors": {"allowedOrigins": ["https://chat.example.com"]}},
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
# The chat model and the embedder on different providers: the trainer gets the chat model's credentials only.
MIXED_PROVIDERS = {
    "secrets": {"databaseUrl": SECRETS["databaseUrl"], "pineconeApiKey": SECRETS["pineconeApiKey"],
                "openaiApiKey": SECRETS["openaiApiKey"]},
    "config": {"vectorStore": "pinecone", "llm": "openai", "embeddings": "bedrock",
               "openai": {"baseUrl": "https://llm.example.com/v1", "chatModel": "gpt-4o-mini"},
               "trainer": {"publishPolicy": "auto", "teacherModel": "gpt-4o"}},
    "ingest": {"enabled": True},
}
# The in-cluster demo database (demoDatabase.enabled) instead of an outside one, with
# the vectors in it too and the ingest Job on: installs with no database URL at all.
DEMO_DATABASE = {
    "demoDatabase": {"enabled": True},
    "config": {"vectorStore": "pgvector"},
    "ingest": {"enabled": True},
}
SCENARIOS = {
    "production": PRODUCTION,
    "everything": EVERYTHING,
    "existing-secret": EXISTING_SECRET,
    "openai-pgvector": OPENAI_PGVECTOR,
    "embedded-models": EMBEDDED_MODELS,
    "mixed-providers": MIXED_PROVIDERS,
    "demo-database": DEMO_DATABASE,
}


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every manifest the chart renders for `values` (hooks and tests included), by Helm's Go SDK."""
    manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    documents = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            documents.extend(d for d in yaml.safe_load_all(text) if d)
    return documents


# The real helm CLI, unpacked by scripts/setup from a PyPI wheel; its sha256 is pinned there.
HELM = REPO / ".venv" / "bin" / "helm"
HELM_SHA256 = re.search(r"^helm_sha256=([0-9a-f]{64})$", (REPO / "scripts" / "setup").read_text(), re.M)[1]


def helm_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Runs the helm CLI (after checking it is the binary scripts/setup pinned) offline, without a cluster."""
    assert hashlib.sha256(HELM.read_bytes()).hexdigest() == HELM_SHA256, f"{HELM} is not the pinned helm"
    return subprocess.run([str(HELM), *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "KUBECONFIG": "/nonexistent"})


def values_file(directory: Path, values: dict[str, Any]) -> Path:
    path = directory / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def helm_template(*args: str | Path) -> list[dict[str, Any]]:
    """What `helm template` renders for the chart as the tests' release, with `args`."""
    result = helm_cli("template", RELEASE, CHART, "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def assert_valid_kubernetes(documents: list[dict[str, Any]], version: str) -> None:
    """Every manifest is valid Kubernetes `version`, unknown fields refused (strict)."""
    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{document['kind']}/{document['metadata']['name']} is not valid Kubernetes "
                        f"{version}: {error.message} at {list(error.path)}")

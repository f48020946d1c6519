"""The Helm chart (deploy/helm/gnlc-notify): `helm lint`, `helm template` validated by
kubeconform against Kubernetes schemas held locally (made standalone from those that the
kubernetes-validate package ships; KEDA's ScaledObject from tests/schemas/), required values
that fail with a message, and what the manifests promise.

helm and kubeconform are built once into ~/.cache/gnlc-notify/tools/ by deploy/tools.sh
(from the Go module proxy); a tool that cannot be had fails the tests, it never skips them."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "gnlc-notify"
STRIMZI_VALUES = CHART / "ci" / "strimzi-values.yaml"
SAMPLE_CSV = ROOT / "services" / "gnlc_core" / "sample-cities.csv"
VENDORED_SCHEMAS = ROOT / "tests" / "schemas"
KUBE_VERSION = "1.33.0"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the {name} package is missing: run deploy/setup.sh (dev extras)")
    return Path(spec.submodule_search_locations[0])


BUNDLED_SCHEMAS = (
    package_dir("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBE_VERSION}-local-strict"
)
COMPONENTS = ("scheduler", "email", "webhook", "status", "console")

# building helm on a fresh machine takes minutes, once
pytestmark = pytest.mark.timeout(1800)


def tool(name: str) -> Path:
    done = subprocess.run(
        [ROOT / "deploy" / "tools.sh", name], capture_output=True, text=True, timeout=1700
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/tools.sh {name} could not provide {name}:\n{done.stderr}")
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def helm() -> Path:
    return tool("helm")


@pytest.fixture(scope="session")
def kubeconform() -> Path:
    return tool("kubeconform")


# --- schemas ---------------------------------------------------------------------------

_DEFINITIONS_REF = re.compile(r"^/api/_definitions\.json#/\$defs/(.+)$")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _local_refs(node: Any) -> Any:
    """The same schema with every reference into _definitions.json made local (#/$defs/)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                match = _DEFINITIONS_REF.match(value)
                out[key] = f"#/$defs/{match.group(1)}" if match else value
            else:
                out[key] = _local_refs(value)
        return out
    if isinstance(node, list):
        return [_local_refs(item) for item in node]
    return node


def standalone_schema(source: Path, name: str) -> dict[str, Any]:
    """``name`` (e.g. ``deployment-apps-v1``) from kubernetes-validate's schemas, which refer
    to a shared ``_definitions.json`` by an absolute URL that kubeconform would fetch, as one
    document with only the definitions it reaches."""
    definitions: dict[str, Any] = json.loads((source / "_definitions.json").read_text())["$defs"]
    schema = json.loads((source / f"{name}.json").read_text())
    schema.pop("$id", None)
    wanted: dict[str, Any] = {}
    pending = [schema]
    while pending:
        for ref in _refs(pending.pop()):
            key = ref.rsplit("/$defs/", 1)[-1]
            if "/$defs/" in ref and key not in wanted:
                wanted[key] = definitions[key]
                pending.append(definitions[key])
    schema["$defs"] = wanted
    return _local_refs(schema)  # type: ignore[no-any-return]


def schema_name(document: dict[str, Any]) -> str:
    """kubeconform's file name of a resource's schema: kind-group-version (core: kind-version)."""
    group, _, version = document["apiVersion"].rpartition("/")
    parts = [document["kind"].lower(), *(group.split(".")[:1] if group else []), version]
    return "-".join(parts)


def write_schemas(documents: Iterable[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for document in documents:
        name = schema_name(document)
        target = out / f"{name}.json"
        if target.exists():
            continue
        if (BUNDLED_SCHEMAS / f"{name}.json").exists():
            target.write_text(json.dumps(standalone_schema(BUNDLED_SCHEMAS, name)))
        elif (VENDORED_SCHEMAS / f"{name}.json").exists():
            target.write_text((VENDORED_SCHEMAS / f"{name}.json").read_text())
        # else: kubeconform reports the missing schema as an error


def test_schema_names() -> None:
    assert schema_name({"apiVersion": "apps/v1", "kind": "Deployment"}) == "deployment-apps-v1"
    assert schema_name({"apiVersion": "v1", "kind": "ConfigMap"}) == "configmap-v1"
    assert schema_name({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject"}) == (
        "scaledobject-keda-v1alpha1"
    )
    assert schema_name({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget"}) == (
        "poddisruptionbudget-policy-v1"
    )


def test_standalone_schema_has_no_remote_references() -> None:
    schema = standalone_schema(BUNDLED_SCHEMAS, "deployment-apps-v1")
    refs = set(_refs(schema))
    assert refs
    assert all(ref.startswith("#/$defs/") for ref in refs)
    assert {ref.removeprefix("#/$defs/") for ref in refs} <= set(schema["$defs"])
    assert "io.k8s.api.core.v1.Probe" in schema["$defs"]


# --- rendering -------------------------------------------------------------------------


def render(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "template", "notify", CHART, "--kube-version", KUBE_VERSION, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def manifests(helm: Path, *args: str) -> list[dict[str, Any]]:
    done = render(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


STRIMZI = ("-f", str(STRIMZI_VALUES), "--set-file", f"directory.csv={SAMPLE_CSV}")
WITHOUT_KEDA = (*STRIMZI, "--set", "keda.enabled=false", "--set", "email.replicas=4")
EXISTING_SECRET = (
    "--set",
    "kafka.bootstrapServers=kafka:9092",
    "--set",
    "smtp.host=smtp.example.org",
    "--set",
    "mail.publicUrl=https://notify.example.org",
    "--set",
    "secrets.existingSecret=gnlc-secrets",
)


def test_chart_lints(helm: Path) -> None:
    done = subprocess.run(
        [helm, "lint", CHART, "--strict", *STRIMZI], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "values", [STRIMZI, WITHOUT_KEDA, EXISTING_SECRET], ids=["strimzi-keda", "replicas", "secret"]
)
def test_rendered_chart_validates(
    helm: Path, kubeconform: Path, tmp_path: Path, values: tuple[str, ...]
) -> None:
    done = render(helm, *values)
    assert done.returncode == 0, done.stderr
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(done.stdout)
    documents = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    write_schemas(documents, tmp_path / "schemas")
    checked = subprocess.run(
        [
            kubeconform,
            "-strict",
            "-summary",
            "-output",
            "json",
            "-schema-location",
            f"{tmp_path / 'schemas'}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            rendered,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    summary = json.loads(checked.stdout)["summary"]
    assert summary == {
        "valid": len(documents),
        "invalid": 0,
        "errors": 0,
        "skipped": 0,
    }


def test_kubeconform_catches_an_invalid_manifest(
    helm: Path, kubeconform: Path, tmp_path: Path
) -> None:
    """The validation can fail: a probe with a misspelt field is refused."""
    documents = manifests(helm, *STRIMZI)
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 1
    rendered = tmp_path / "broken.yaml"
    rendered.write_text(yaml.safe_dump(deployment))
    write_schemas([deployment], tmp_path / "schemas")
    checked = subprocess.run(
        [
            kubeconform,
            "-strict",
            "-schema-location",
            f"{tmp_path / 'schemas'}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            rendered,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode != 0
    assert "periodSecond" in checked.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("kafka.bootstrapServers=", "kafka.bootstrapServers is required"),
        ("postgresql.url=", "postgresql.url is required"),
        ("secrets.operatorToken=", "secrets.operatorToken is required"),
        ("secrets.operatorToken=too-short", "secrets.operatorToken is too short"),
        ("secrets.smtpPassword=", "secrets.smtpPassword is required when smtp.username is set"),
        ("secrets.unsubscribeSecrets=null", "secrets.unsubscribeSecrets is required"),
        ("smtp.host=", "smtp.host is required"),
        ("mail.publicUrl=", "mail.publicUrl is required"),
        ("image.tag=latest", 'pin a version, not "latest"'),
    ],
)
def test_required_values_fail_with_a_message(helm: Path, override: str, message: str) -> None:
    done = render(helm, *STRIMZI, "--set", override)
    assert done.returncode != 0
    assert message in done.stderr


def test_default_values_need_the_required_ones(helm: Path) -> None:
    done = render(helm)
    assert done.returncode != 0
    assert "kafka.bootstrapServers is required" in done.stderr


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployments(helm: Path) -> None:
    documents = manifests(helm, *STRIMZI)
    deployments = by_kind(documents, "Deployment")
    assert set(deployments) == {f"notify-gnlc-notify-{c}" for c in COMPONENTS}
    secret_values = yaml.safe_load(STRIMZI_VALUES.read_text())["secrets"]
    for component in COMPONENTS:
        deployment = deployments[f"notify-gnlc-notify-{component}"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "registry.example.org/gnlc/gnlc-notify:0.1.0"
        assert container["command"] == ["python", "-m", f"gnlc_{component}"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        env = env_of(container)
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "gnlc-kafka-bootstrap.kafka.svc:9092"
        assert env["GNLC_TOPIC_REPLICATION"] == "3"
        assert env["GNLC_STATE_DIR"] == "/var/lib/gnlc"
        assert env["GNLC_DATABASE_URL"] == {
            "secretKeyRef": {"name": "notify-gnlc-notify-secrets", "key": "database-url"}
        }
        assert ("GNLC_OPERATOR_TOKEN" in env) is (component != "email")
        rendered = yaml.safe_dump(deployment)
        for value in (secret_values["operatorToken"], secret_values["smtpPassword"]):
            assert value not in rendered  # secrets only by reference
    assert env_of(
        deployments["notify-gnlc-notify-email"]["spec"]["template"]["spec"]["containers"][0]
    )["GNLC_EMAIL_UNSUBSCRIBE_SECRETS"] == {
        "secretKeyRef": {"name": "notify-gnlc-notify-secrets", "key": "unsubscribe-secrets"}
    }
    console = env_of(
        deployments["notify-gnlc-notify-console"]["spec"]["template"]["spec"]["containers"][0]
    )
    assert console["GNLC_CONSOLE_SCHEDULER_URL"] == "http://notify-gnlc-notify-scheduler:8100"
    assert console["GNLC_CONSOLE_WEBHOOK_URL"] == "http://notify-gnlc-notify-webhook:8102"
    assert console["GNLC_CONSOLE_STATUS_URL"] == "http://notify-gnlc-notify-status:8104"
    assert console["GNLC_CONSOLE_EMAIL_URL"] == "http://notify-gnlc-notify-email:8101"
    assert console["GNLC_CONSOLE_COOKIE_SECURE"] == "true"
    # KEDA owns the consumers' replica counts; the scheduler and the console keep their own
    assert deployments["notify-gnlc-notify-scheduler"]["spec"]["replicas"] == 2
    assert deployments["notify-gnlc-notify-console"]["spec"]["replicas"] == 2
    assert "replicas" not in deployments["notify-gnlc-notify-email"]["spec"]
    assert "replicas" not in deployments["notify-gnlc-notify-webhook"]["spec"]


def test_consumers_scale_by_replicas_without_keda(helm: Path) -> None:
    documents = manifests(helm, *WITHOUT_KEDA, "--set", "webhook.replicas=3")
    deployments = by_kind(documents, "Deployment")
    assert deployments["notify-gnlc-notify-email"]["spec"]["replicas"] == 4
    assert deployments["notify-gnlc-notify-webhook"]["spec"]["replicas"] == 3
    assert not by_kind(documents, "ScaledObject")


def test_keda_scaled_objects_follow_consumer_lag(helm: Path) -> None:
    scaled = by_kind(manifests(helm, *STRIMZI), "ScaledObject")
    assert set(scaled) == {"notify-gnlc-notify-email", "notify-gnlc-notify-webhook"}
    for channel in ("email", "webhook"):
        spec = scaled[f"notify-gnlc-notify-{channel}"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"notify-gnlc-notify-{channel}"
        assert spec["maxReplicaCount"] <= 12  # never more consumers than partitions
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == f"gnlc.{channel}"
        assert trigger["metadata"]["bootstrapServers"] == "gnlc-kafka-bootstrap.kafka.svc:9092"


def test_disruption_budgets_services_secret_and_directory(helm: Path) -> None:
    documents = manifests(helm, *STRIMZI)
    budgets = by_kind(documents, "PodDisruptionBudget")
    services = by_kind(documents, "Service")
    for component in COMPONENTS:
        name = f"notify-gnlc-notify-{component}"
        selector = by_kind(documents, "Deployment")[name]["spec"]["selector"]["matchLabels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == selector
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        assert services[name]["spec"]["selector"] == selector
    (secret,) = by_kind(documents, "Secret").values()
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert set(data) == {"operator-token", "database-url", "unsubscribe-secrets", "smtp-password"}
    assert json.loads(data["unsubscribe-secrets"]) == ["placeholder-unsubscribe-secret-0123456789"]
    (directory,) = by_kind(documents, "ConfigMap").values()
    assert directory["data"]["cities.csv"] == SAMPLE_CSV.read_text().rstrip("\n")
    scheduler = by_kind(documents, "Deployment")["notify-gnlc-notify-scheduler"]
    (container,) = scheduler["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["GNLC_DIRECTORY_PATH"] == "/etc/gnlc/directory/cities.csv"
    assert {"name": "directory", "mountPath": "/etc/gnlc/directory", "readOnly": True} in (
        container["volumeMounts"]
    )


def test_existing_secret_makes_no_secret(helm: Path) -> None:
    documents = manifests(helm, *EXISTING_SECRET)
    assert not by_kind(documents, "Secret")
    assert not by_kind(documents, "ConfigMap")  # no directory given: the image's sample
    for deployment in by_kind(documents, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert env_of(container)["GNLC_DATABASE_URL"]["secretKeyRef"]["name"] == "gnlc-secrets"

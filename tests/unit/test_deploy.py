"""``shipyard.deploy``: every target's files, validated offline (Kubernetes JSON schemas,
a Dockerfile parser, the server's real metric names)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from shipyard.deploy import (
    COMPOSE_FILE,
    DASHBOARD_FILE,
    PREDICTION_LOG_ENV,
    UID,
    WORKFLOW_FILE,
    DeploySpec,
    PredictionLog,
    Target,
    dns_name,
    render,
    write_files,
)
from shipyard.errors import DeployError
from shipyard.serve._auth import PUBLIC_PATHS
from shipyard.serve._metrics import ServeMetrics

COMMON = {"Dockerfile", ".dockerignore", DASHBOARD_FILE, WORKFLOW_FILE}
K8S_FILES = {f"k8s/{n}.yaml" for n in ("deployment", "service", "hpa", "pdb", "servicemonitor")}
K8S_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
SECRETISH = re.compile(r"(password|secret|token|api_?key|credential)", re.I)


def _spec(**overrides: Any) -> DeploySpec:
    settings: dict[str, Any] = {
        "model_uri": "models:/penguins@production",
        "model_name": "penguins",
        "model_version": 3,
        "shipyard_version": "0.1.0",
    }
    return DeploySpec(**(settings | overrides))


def _k8s(spec: DeploySpec | None = None) -> dict[str, dict[str, Any]]:
    files = render(spec or _spec(), Target.k8s)
    return {
        Path(name).stem: yaml.safe_load(data) for name, data in files.items() if name in K8S_FILES
    }


def _dockerfile(spec: DeploySpec | None = None) -> DockerfileParser:
    text = render(spec or _spec(), Target.docker)["Dockerfile"].decode()
    return DockerfileParser(fileobj=io.StringIO(text))  # in memory: a path would be written


def _instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


@pytest.mark.parametrize(
    ("target", "extra"),
    [
        (Target.docker, set()),
        (Target.k8s, K8S_FILES),
        (Target.compose, {COMPOSE_FILE}),
    ],
)
def test_every_target_writes_its_files(target: Target, extra: set[str]) -> None:
    files = render(_spec(), target)
    assert set(files) == COMMON | extra
    for name, data in files.items():
        if name.endswith((".yaml", ".yml")):
            assert isinstance(yaml.safe_load(data), dict), name
    assert json.loads(files[DASHBOARD_FILE])["panels"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("kind", ["deployment", "service", "hpa", "pdb"])
def test_manifests_validate_against_the_kubernetes_schemas(version: str, kind: str) -> None:
    for spec in (_spec(), _spec(api_keys=True, secret_name="creds", port=9000, workers=2)):
        kubernetes_validate.validate(_k8s(spec)[kind], version, strict=True)


def test_an_invalid_manifest_fails_the_schema() -> None:
    """The validation above is real: a wrong field type is caught."""
    deployment = _k8s()["deployment"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_deployment_probes_resources_security_and_secrets() -> None:
    manifests = _k8s(_spec(api_keys=True))
    pod = manifests["deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    probed = {
        container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probed <= set(PUBLIC_PATHS), "probes must not need an API key"
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for env in container["env"]:  # every value comes from the Secret, by name
        assert (
            "value" not in env
            and env["valueFrom"]["secretKeyRef"]["name"] == "shipyard-penguins-secrets"
        )
    assert {e["name"] for e in container["env"]} >= {"SHIPYARD_STORE_URL", "SHIPYARD_API_KEYS"}
    assert container["args"][0] == "models:/penguins@production"


def test_hpa_pdb_and_service_select_the_deployment() -> None:
    m = _k8s(_spec(min_replicas=3, max_replicas=7, target_cpu_percent=60))
    labels = m["deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        m["deployment"]["spec"]["selector"]["matchLabels"],
        m["pdb"]["spec"]["selector"]["matchLabels"],
        m["service"]["spec"]["selector"],
        m["servicemonitor"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    assert m["hpa"]["apiVersion"] == "autoscaling/v2"
    assert m["hpa"]["spec"]["scaleTargetRef"]["name"] == m["deployment"]["metadata"]["name"]
    assert (m["hpa"]["spec"]["minReplicas"], m["hpa"]["spec"]["maxReplicas"]) == (3, 7)
    cpu = m["hpa"]["spec"]["metrics"][0]["resource"]
    assert cpu == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}
    assert m["pdb"]["apiVersion"] == "policy/v1"
    assert m["deployment"]["spec"]["replicas"] == 3  # never below the autoscaler's floor


# The Prometheus Operator's CRD is not among the core schemas: its structure, as the operator's
# monitoring.coreos.com/v1 CRD requires it (the fields used here).
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {
                                "type": "string",
                                "pattern": "^(0|(([0-9]+)(ms|s|m|h))+)$",
                            },
                            "authorization": {
                                "type": "object",
                                "required": ["credentials"],
                                "properties": {
                                    "type": {"type": "string"},
                                    "credentials": {
                                        "type": "object",
                                        "required": ["name", "key"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "name": {"type": "string"},
                                            "key": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize("api_keys", [False, True])
def test_service_monitor_scrapes_metrics_on_the_service_port(api_keys: bool) -> None:
    m = _k8s(_spec(api_keys=api_keys))
    jsonschema.validate(m["servicemonitor"], SERVICE_MONITOR_SCHEMA)
    (endpoint,) = m["servicemonitor"]["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == m["service"]["spec"]["ports"][0]["name"]
    assert ("authorization" in endpoint) is api_keys


def test_dockerfile_is_slim_pinned_non_root_with_a_healthcheck() -> None:
    parser = _dockerfile()
    assert parser.baseimage == "python:3.11-slim"
    assert not parser.baseimage.endswith(":latest")
    (user,) = _instructions(parser, "USER")
    assert user.split(":")[0] not in {"root", "0"}
    (health,) = _instructions(parser, "HEALTHCHECK")
    assert "/health" in health and "--interval" in health
    assert _instructions(parser, "EXPOSE") == ["8000"]
    (install,) = [r for r in _instructions(parser, "RUN") if "pip install" in r]
    assert '"shipyard[postgres]==0.1.0"' in install
    assert json.loads(_instructions(parser, "ENTRYPOINT")[0]) == ["shipyard", "serve"]
    assert json.loads(_instructions(parser, "CMD")[0])[:1] == ["models:/penguins@production"]
    for name, value in parser.envs.items():
        assert not SECRETISH.search(name) and "://" not in value, (name, value)


def test_dockerfile_installs_a_given_wheel() -> None:
    parser = _dockerfile(_spec(wheel="shipyard-0.1.0-py3-none-any.whl", port=9000))
    assert _instructions(parser, "COPY") == [
        "shipyard-0.1.0-py3-none-any.whl /tmp/shipyard-0.1.0-py3-none-any.whl"
    ]
    (install,) = [r for r in _instructions(parser, "RUN") if "pip install" in r]
    assert "/tmp/shipyard-0.1.0-py3-none-any.whl[postgres]" in install
    assert _instructions(parser, "EXPOSE") == ["9000"]


def test_compose_runs_the_server_on_a_healthy_postgres() -> None:
    files = render(_spec(), Target.compose)
    doc = yaml.safe_load(files[COMPOSE_FILE])
    services = doc["services"]
    assert set(services) == {"shipyard-penguins", "postgres"}
    db, server = services["postgres"], services["shipyard-penguins"]
    assert db["image"] == "postgres:15"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"][0].split(":")[0] in doc["volumes"]
    assert server["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    url = server["environment"]["SHIPYARD_STORE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert "${POSTGRES_PASSWORD" in url  # from the environment, never written
    assert "${POSTGRES_PASSWORD:?" in db["environment"]["POSTGRES_PASSWORD"]
    assert server["command"][0] == "models:/penguins@production"
    assert server["build"] == {"context": "."}


@pytest.mark.parametrize("log", list(PredictionLog))
def test_the_prediction_log_goes_where_asked(log: PredictionLog) -> None:
    """store: the server's log table in the store's database, its URL from the same Secret
    (k8s) or the same value (compose), never written out; folder: the default, under
    SHIPYARD_HOME; off: no log."""
    spec = _spec(prediction_log=log)
    (container,) = _k8s(spec)["deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    server = yaml.safe_load(render(spec, Target.compose)[COMPOSE_FILE])["services"][
        "shipyard-penguins"
    ]
    docker = _dockerfile(spec)
    if log is PredictionLog.store:
        ref = env[PREDICTION_LOG_ENV]["valueFrom"]["secretKeyRef"]
        assert ref == env["SHIPYARD_STORE_URL"]["valueFrom"]["secretKeyRef"]
        assert (
            server["environment"][PREDICTION_LOG_ENV] == server["environment"]["SHIPYARD_STORE_URL"]
        )
        assert f'{PREDICTION_LOG_ENV}="$SHIPYARD_STORE_URL"' in docker.content
    elif log is PredictionLog.folder:
        assert PREDICTION_LOG_ENV not in env
        assert PREDICTION_LOG_ENV not in server["environment"]
        assert any(v.endswith(":/var/lib/shipyard/predictions") for v in server["volumes"])
    else:
        assert env[PREDICTION_LOG_ENV] == {"name": PREDICTION_LOG_ENV, "value": "off"}
        assert server["environment"][PREDICTION_LOG_ENV] == "off"
        assert docker.envs[PREDICTION_LOG_ENV] == "off"
    assert docker.baseimage == "python:3.11-slim"  # still one valid stage


def _exported_names() -> set[str]:
    """Every sample name a server's /metrics may carry."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
    }
    names = set()
    for family in ServeMetrics(name="m", version="1").registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def test_grafana_panels_use_the_server_metric_names() -> None:
    board = json.loads(render(_spec(), Target.docker)[DASHBOARD_FILE])
    exported = _exported_names()
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bshipyard_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    for needed in (
        "shipyard_http_requests_total",
        "shipyard_http_request_duration_seconds_bucket",
        "shipyard_queue_rows",
        "shipyard_batch_rows_bucket",
        "shipyard_routed_records_total",
        "shipyard_shadow_records_total",
    ):
        assert needed in used
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"])
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for word in ("request rate", "p99", "error", "queue", "batch", "canary"):
        assert word in titles


@pytest.mark.parametrize("target", list(Target))
def test_ci_workflow_tests_retrains_gates_and_deploys(target: Target) -> None:
    text = render(_spec(), target, deploy_dir="ops/deploy")[WORKFLOW_FILE].decode()
    flow = yaml.safe_load(text)
    jobs = flow["jobs"]
    assert list(jobs)[:3] == ["test", "retrain", "image"]
    assert ("deploy" in jobs) is (target is Target.k8s)
    assert "shipyard run" in jobs["retrain"]["steps"][-1]["run"]
    assert jobs["image"]["if"] == "needs.retrain.outputs.promoted == 'true'"
    assert flow["env"]["DEPLOY_DIR"] == "ops/deploy"
    # secrets by name only
    for line in text.splitlines():
        if SECRETISH.search(line.split(":", 1)[0]) and ":" in line:
            assert "${{ secrets." in line or line.lstrip().startswith("#"), line


def test_no_secret_value_is_written() -> None:
    for target in Target:
        for name, data in render(_spec(api_keys=True), target).items():
            text = data.decode()
            assert not re.search(r"://[^$\s/]*:[^$\s{]+@", text), (name, "a password in a URL")


def test_write_files_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    files = render(_spec(), Target.k8s)
    written = write_files(files, tmp_path)
    assert {w.path.relative_to(tmp_path).as_posix() for w in written} == set(files)
    assert all(w.path.stat().st_size == w.size for w in written)
    assert not list(tmp_path.rglob("*.tmp"))
    (tmp_path / "Dockerfile").write_text("mine")
    with pytest.raises(DeployError, match=r"already exist.*--force"):
        write_files(files, tmp_path)
    assert (tmp_path / "Dockerfile").read_text() == "mine"
    write_files(files, tmp_path, force=True)
    assert (tmp_path / "Dockerfile").read_bytes() == files["Dockerfile"]


def test_write_files_reports_an_unwritable_folder(tmp_path: Path) -> None:
    (tmp_path / "k8s").write_text("a file where a folder should be")
    with pytest.raises(DeployError, match="cannot write"):
        write_files(render(_spec(), Target.k8s), tmp_path)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"min_replicas": 5, "max_replicas": 2}, "above max_replicas"),
        ({"wheel": "../x.whl"}, "wheel"),
        ({"resources": {"cpu_limit": "lots"}}, "Kubernetes quantity"),
        ({"base_image": "python"}, "pattern"),
        ({"store_url_env": "lower"}, "pattern"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_spec_refuses_bad_settings(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _spec(**overrides)


def test_names_are_dns_labels() -> None:
    assert dns_name("Churn_Model.v2") == "churn-model-v2"
    assert dns_name("___") == "model"
    assert len(dns_name("x" * 100)) == 63
    spec = _spec(model_name="Churn_Model")
    assert spec.app == "shipyard-churn-model"
    assert spec.image_ref == "shipyard-churn-model:v3"
    assert _spec(image="ghcr.io/acme/churn", tag="2024").image_ref == "ghcr.io/acme/churn:2024"

"""``shipyard deploy`` through ``shipyard.cli.main``: each target's files, and user errors."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import typer.main
import yaml
from palmerpenguins import load_penguins
from sklearn.dummy import DummyClassifier

from cli_runner import cli
from shipyard import __version__
from shipyard.cli import build_app
from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage, Registry
from shipyard.store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with ``models:/penguins/1`` and ``models:/penguins@production``, found through
    SHIPYARD_HOME; the working directory is ``tmp_path``."""
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    frame = load_penguins().dropna()
    sig = Signature(
        inputs=(
            ColumnSchema(name="bill_length_mm", kind="number", dtype="float64", nullable=True),
        ),
        classes=tuple(sorted(frame["species"].unique())),
    )
    model = DummyClassifier().fit(frame[["bill_length_mm"]], frame["species"])
    package = ModelPackage(pipeline=model, signature=sig, task="multiclass", metadata={})
    store = Store.from_env(None, root=tmp_path / ".shipyard")
    try:
        registry = Registry(store)
        registry.register("penguins", package)
        registry.promote("penguins", 1, "production", moved_by="test")
    finally:
        store.close()
    return tmp_path


def _serve_accepts(args: list[str]) -> None:
    """The container's ``shipyard serve`` arguments parse as the real command's options."""
    command = typer.main.get_command(build_app()).commands["serve"]  # type: ignore[attr-defined]
    command.make_context("serve", list(args))


@pytest.mark.parametrize(
    ("target", "files"),
    [
        ("docker", []),
        ("compose", ["docker-compose.yml"]),
        (
            "k8s",
            [f"k8s/{n}.yaml" for n in ("deployment", "service", "hpa", "pdb", "servicemonitor")],
        ),
    ],
)
def test_deploy_writes_each_target(
    capsys: pytest.CaptureFixture[str], home: Path, target: str, files: list[str]
) -> None:
    code, out = cli(
        capsys, "deploy", "models:/penguins@production", "--target", target, "-o", "out"
    )
    assert code == 0, out
    out_dir = home / "out"
    expected = [
        "Dockerfile",
        ".dockerignore",
        "grafana/shipyard-dashboard.json",
        ".github/workflows/shipyard.yml",
        *files,
    ]
    for name in expected:
        assert (out_dir / name).is_file(), name
        assert name in out  # the table of files written, with sizes
    assert f"{(out_dir / 'Dockerfile').stat().st_size:,}" in out
    assert "version 1" in out
    dockerfile = (out_dir / "Dockerfile").read_text()
    assert f'"shipyard[postgres]=={__version__}"' in dockerfile
    assert (
        yaml.safe_load((out_dir / ".github/workflows/shipyard.yml").read_text())["env"][
            "DEPLOY_DIR"
        ]
        == "out"
    )
    if target == "k8s":
        deployment = yaml.safe_load((out_dir / "k8s/deployment.yaml").read_text())
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        _serve_accepts(args)
        assert "kubectl create secret generic shipyard-penguins-secrets" in out
    if target == "compose":
        server = yaml.safe_load((out_dir / "docker-compose.yml").read_text())["services"][
            "shipyard-penguins"
        ]
        _serve_accepts(server["command"])


def test_deploy_options_reach_the_files(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    wheel = home / "shipyard-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK not really a wheel")
    code, out = cli(
        capsys, "deploy", "models:/penguins/1", "--target", "k8s", "-o", str(home / "abs"),
        "--image", "ghcr.io/acme/penguins", "--tag", "2026.1", "--port", "9000",
        "--replicas", "4", "--min-replicas", "3", "--max-replicas", "8", "--target-cpu", "55",
        "--cpu-limit", "2", "--memory-limit", "2Gi", "--secret-name", "penguin-creds",
        "--api-keys", "--wheel", str(wheel), "--workers", "2",
        "--store-url-env", "SHIPYARD_STORE_URL",
    )  # fmt: skip
    assert code == 0, out
    out_dir = home / "abs"
    assert (out_dir / wheel.name).read_bytes() == wheel.read_bytes()
    assert f"COPY {wheel.name} /tmp/{wheel.name}" in (out_dir / "Dockerfile").read_text()
    deployment = yaml.safe_load((out_dir / "k8s/deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/penguins:2026.1"
    assert container["ports"][0]["containerPort"] == 9000
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert deployment["spec"]["replicas"] == 4
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]} == {"penguin-creds"}
    hpa = yaml.safe_load((out_dir / "k8s/hpa.yaml").read_text())
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    monitor = yaml.safe_load((out_dir / "k8s/servicemonitor.yaml").read_text())
    assert "authorization" in monitor["spec"]["endpoints"][0]
    flow = yaml.safe_load((out_dir / ".github/workflows/shipyard.yml").read_text())
    assert flow["env"] == {"IMAGE": "ghcr.io/acme/penguins", "DEPLOY_DIR": "abs"}
    _serve_accepts(container["args"])


def test_existing_files_need_force(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    args = ("deploy", "models:/penguins/1", "--target", "docker", "-o", "out")
    assert cli(capsys, *args)[0] == 0
    (home / "out" / "Dockerfile").write_text("FROM mine\n")
    code, out = cli(capsys, *args)
    assert code == 1
    assert "already exist" in out and "--force" in out and "Traceback" not in out
    assert (home / "out" / "Dockerfile").read_text() == "FROM mine\n"
    code, out = cli(capsys, *args, "--force")
    assert code == 0, out
    assert (home / "out" / "Dockerfile").read_text().startswith("# syntax=docker/dockerfile:1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["models:/penguins/7", "--target", "docker"],
            "models:/penguins/7: model 'penguins' has no version 7",
        ),
        (
            ["models:/nope@production", "--target", "docker"],
            "cannot deploy models:/nope@production",
        ),
        (["not-a-uri", "--target", "docker"], "cannot parse model URI 'not-a-uri'"),
        (["models:/penguins/1", "--target", "helm"], "'helm' is not one of"),
        (
            ["models:/penguins/1", "--target", "k8s", "--min-replicas", "5", "--max-replicas", "2"],
            "min_replicas 5 is above",
        ),
        (
            ["models:/penguins/1", "--target", "k8s", "--memory-limit", "lots"],
            "memory_limit: 'lots' is not a Kubernetes",
        ),
        (
            ["models:/penguins/1", "--target", "k8s", "--wheel", "pyproject.toml"],
            "--wheel takes a built wheel",
        ),
        (["models:/penguins/1", "--target", "k8s", "--wheel", "missing.whl"], "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], home: Path, args: list[str], message: str
) -> None:
    (home / "pyproject.toml").write_text("")
    code, out = cli(capsys, "deploy", *args, "-o", "out")
    assert code in (1, 2), out
    assert message in " ".join(out.split()), out
    assert "Traceback" not in out
    assert not (home / "out").exists()


def test_without_a_store_deploy_says_where_it_looked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "nowhere"))
    code, out = cli(
        capsys, "deploy", "models:/penguins/1", "--target", "docker", "-o", str(tmp_path / "o")
    )
    assert code == 1
    assert "no Shipyard store" in out

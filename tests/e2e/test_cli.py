"""Every CLI command in process, through ``shipyard.cli.main`` (exit codes and output)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from cli_runner import cli

SPEC = """\
name: cancer
data: {source: {type: csv, path: data/train.csv}, target: diagnosis}
split: {cv_folds: 2}
models:
  - model: linear
  - model: lightgbm
    params: {n_estimators: 20}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_USER", "cli-test")
    monkeypatch.setenv("COLUMNS", "200")
    data = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    data["diagnosis"] = np.where(data.pop("target") == 1, "benign", "malignant")
    (tmp_path / "data").mkdir()
    data.to_csv(tmp_path / "data" / "train.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(SPEC)
    return tmp_path


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = cli(capsys, "init", "--name", "demo", "--data", "d.csv", "--target", "y")
    assert code == 0 and "shipyard.yaml" in out
    assert "name: demo" in (tmp_path / "shipyard.yaml").read_text()
    code, out = cli(capsys, "init")
    assert code == 1 and "already exists" in out
    code, _ = cli(capsys, "init", "--force")
    assert code == 0


def test_run_then_inspect_runs_and_models(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out = cli(capsys, "run")
    assert code == 0, out
    assert "Registered cancer version 1" in out and "promoted" in out
    assert "report.html" in out
    code, out = cli(capsys, "--verbose", "run", "shipyard.yaml", "--result", "result.json")
    assert code == 0 and "version 2" in out
    assert "not promoted" in out and "a tie keeps the champion" in out  # same data, same model
    outcome = json.loads((project / "result.json").read_text())  # what a CI job's gate reads
    assert outcome["model_uri"] == "models:/cancer/2" and outcome["promoted"] is False
    assert "a tie keeps the champion" in outcome["gate"] and outcome["run_id"] in out
    assert not list(project.glob(".result.json*"))  # written whole, then renamed

    code, out = cli(capsys, "runs", "list")
    assert code == 0 and out.count("finished") == 2
    code, out = cli(capsys, "runs", "list", "--all", "--project", "cancer", "--status", "finished")
    assert out.count("finished") == 6  # 2 parents + 2 x 2 candidates
    ids = [line.split()[1] for line in out.splitlines() if "finished" in line and " run " in line]
    assert len(ids) == 2
    code, out = cli(capsys, "runs", "show", ids[0])
    assert code == 0 and "dataset" in out and "roc_auc" in out
    assert "validation.json" in out and "evaluation.json" in out
    assert "confusion matrix" in out and "malignant" in out
    code, out = cli(capsys, "runs", "report", ids[0], "-o", "r.html")
    html = (project / "r.html").read_text()
    assert code == 0 and "data:image/png;base64," in html and "mean_radius" in html
    # CV, confusion matrix, ROC, PR, and the model card's (calibration, importance, SHAP,
    # learning curve: those its time allowed, the others say why)
    assert html.count("<img") >= 4 and 'id="card-timings"' in html
    code, out = cli(capsys, "runs", "compare", ids[0], ids[1])
    assert code == 0 and "param metric" in out
    code, out = cli(capsys, "runs", "compare", ids[0])
    assert code == 1 and "at least two" in out

    code, out = cli(capsys, "models", "list")
    assert code == 0 and "cancer" in out and "production=v1" in out
    code, out = cli(capsys, "models", "show", "models:/cancer/1")
    assert code == 0 and "Signature" in out and "mean_radius" in out
    code, out = cli(capsys, "models", "promote", "cancer", "2", "--reason", "by hand")
    assert code == 0 and "v1 -> v2" in out
    code, out = cli(capsys, "models", "promote", "cancer", "1", "--alias", "staging")
    assert code == 0 and "none -> v1" in out
    code, out = cli(capsys, "models", "rollback", "cancer")
    assert code == 0 and "v2 -> v1" in out
    code, out = cli(capsys, "models", "rollback", "cancer", "--alias", "staging")
    assert code == 1 and "no earlier version" in out
    code, out = cli(capsys, "models", "show", "cancer")
    assert "Alias history" in out and "cli-test" in out

    code, out = cli(capsys, "predict", "models:/cancer@production", "data/train.csv", "-o", "p.csv")
    assert code == 0 and "569 predictions" in out
    predictions = pd.read_csv(project / "p.csv")
    assert {"prediction", "proba_benign", "proba_malignant"} <= set(predictions.columns)
    assert (predictions["prediction"] == predictions["diagnosis"]).mean() > 0.9


def test_validate_reports_without_training(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out = cli(capsys, "validate", "--all")
    assert code == 0, out
    assert "missing_fraction" in out and "task binary" in out and "Signature" in out
    frame = pd.read_csv(project / "data" / "train.csv")
    frame.loc[[2, 7], "mean_radius"] = -5.0
    frame.to_csv(project / "data" / "train.csv", index=False)
    (project / "checked.yaml").write_text(
        SPEC + "validation:\n  expectations:\n    - {check: range, column: mean_radius, min: 0}\n"
    )
    code, out = cli(capsys, "validate", "checked.yaml")
    assert code == 1
    assert "ERROR" in out and "rows 3, 8" in out and "Signature" not in out
    assert not (project / ".shipyard").exists()  # nothing was tracked or trained


def test_user_errors_exit_1(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    (project / "bad.yaml").write_text(SPEC.replace("target: diagnosis", "targt: diagnosis"))
    code, out = cli(capsys, "run", "bad.yaml")
    assert code == 1 and "bad.yaml:2" in out and "did you mean 'target'" in out
    assert "Traceback" not in out
    code, out = cli(capsys, "predict", "models:/cancer@production", "data/train.csv")
    assert code == 1 and "no Shipyard store" in out  # nothing was ever run here
    code, out = cli(capsys, "run", "--no-such-option")
    assert code == 1 and "No such option" in out


def test_internal_errors_exit_2_and_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("shipyard.pipeline.run_project", boom)
    code, out = cli(capsys, "run")
    assert code == 2 and "internal error" in out and "kaboom" in out and "Traceback" not in out
    code, out = cli(capsys, "--debug", "run")
    assert code == 2 and "Traceback" in out


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys)
    assert code == 0 and "quickstart" in out
    code, out = cli(capsys, "--version")
    assert code == 0 and out.startswith("shipyard ")
    code, out = cli(capsys, "models")
    assert code == 0 and "promote" in out


def test_read_commands_do_not_create_a_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    for args in (("models", "list"), ("runs", "list"), ("serve", "models:/x@production")):
        code, out = cli(capsys, *args)
        assert code == 1 and "no Shipyard store at" in out
    assert not (tmp_path / ".shipyard").exists()

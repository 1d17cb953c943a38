"""``shipyard models show`` prints the promotion gate's decisions and their evidence: the paired
bootstrap's interval and probability, the champion's score on the same rows, fairness bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from cli_runner import cli
from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage, Registry
from shipyard.registry.gate import HoldoutPredictions, decide_promotion, package_scorer
from shipyard.spec import GateSpec
from shipyard.store import ENCRYPTION_KEY_ENV, Store

CLASSES = ("no", "yes")
SIG = Signature(
    inputs=(ColumnSchema(name="x", kind="number", dtype="float64", nullable=False),),
    classes=CLASSES,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACT_ROOT", raising=False)
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / ".shipyard"))
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _package(flip: bool) -> ModelPackage:
    x = pd.DataFrame({"x": np.linspace(-3, 3, 60)})
    y = np.where((x["x"] > 0) != flip, "yes", "no")
    model = make_pipeline(LogisticRegression()).fit(x, y)
    return ModelPackage(model, SIG, "binary", {"metrics": {"accuracy": 0.0 if flip else 1.0}})


def _gate_two_versions(home: Path) -> None:
    """v1 (wrong way round) holds production; v2 is judged against it on the same rows."""
    with Store.open(root=home / ".shipyard") as store:
        registry = Registry(store)
        registry.register("churn", _package(flip=True))
        registry.promote("churn", 1, moved_by="ann", reason="first")
        registry.register("churn", _package(flip=False))
        x = pd.DataFrame({"x": np.linspace(-2.95, 2.95, 100)})
        rng = np.random.default_rng(0)
        sensitive = pd.DataFrame({"region": rng.choice(["north", "south"], size=100)})
        y = np.where(x["x"] > 0, "yes", "no").astype(object)
        predictions = registry.load("models:/churn/2").predict(x)
        decide_promotion(
            registry,
            "churn",
            2,
            alias="production",
            metric="accuracy",
            metrics={"accuracy": 1.0},
            policy=GateSpec(
                bootstrap=200, confidence=0.9, fairness={"demographic_parity_difference": 0.9}
            ),
            holdout=HoldoutPredictions("binary", y, predictions, sensitive),
            score_champion=package_scorer(registry, x),
            user="ci",
        )


def test_models_show_prints_the_gate_decision_and_its_evidence(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _gate_two_versions(home)
    code, out = cli(capsys, "models", "show", "models:/churn/2")
    assert code == 0, out
    assert "Gate decision for production" in out
    assert "paired bootstrap" in out and "promoted" in out
    assert "on the same 100 holdout rows" in out
    assert "P(better by the margin)" in out and "100.0% (needs 90%)" in out
    assert "90% interval" in out and "v1: 0.0000" in out
    assert "Fairness bounds (production)" in out and "demographic_parity_difference" in out
    assert "region" in out and "within" in out

    code, out = cli(capsys, "models", "show", "churn")
    assert code == 0, out
    assert "Gate decisions" in out
    assert "accuracy 1.0000 vs 0.0000 (v1); better in 100.0%, needs 90%" in out

    code, out = cli(capsys, "models", "show", "models:/churn/1")
    assert code == 0 and "no promotion decision recorded" in out

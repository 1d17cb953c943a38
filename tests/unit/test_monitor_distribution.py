"""The prediction distribution each check keeps in its summary: a classifier's class shares, a
regression's deciles, both for the reference and the window (``check_model`` over a real
prediction log and a SQLite store)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression

from shipyard.data import ColumnSchema, Signature
from shipyard.model import ReferenceSample
from shipyard.monitor import QUANTILES, class_share_summary, quantile_summary
from shipyard.monitor._distribution import MAX_CLASSES, OTHER
from shipyard.pipeline import check_model
from shipyard.registry import ModelPackage, MonitorHistory, Registry
from shipyard.store import ParquetSink, PredictionEntry, Store

X = ColumnSchema(name="x", kind="number", dtype="float64", nullable=False)


def test_class_shares_name_every_class_on_both_sides_most_common_first() -> None:
    summary = class_share_summary({"a": 0.6, "b": 0.4}, {"b": 0.7, "c": 0.3})
    assert summary == {
        "kind": "classes",
        "reference": {"a": 0.6, "b": 0.4, "c": 0.0},
        "current": {"a": 0.0, "b": 0.7, "c": 0.3},
    }
    assert list(summary["reference"]) == ["a", "b", "c"]


def test_many_classes_keep_the_commonest_and_sum_the_rest() -> None:
    reference = {f"c{i:02d}": 1 / 40 for i in range(40)}
    summary = class_share_summary(reference, {"c00": 1.0})
    assert len(summary["reference"]) == MAX_CLASSES
    assert summary["reference"][OTHER] == pytest.approx((40 - MAX_CLASSES + 1) / 40)
    assert summary["current"]["c00"] == 1.0 and summary["current"][OTHER] == 0.0


def test_quantiles_are_the_deciles_of_the_finite_values() -> None:
    current = np.array([np.nan, np.inf, *range(50, 151)], dtype=float)
    summary = quantile_summary(np.arange(101, dtype=float), current)
    assert summary["kind"] == "quantiles" and summary["quantiles"] == list(QUANTILES)
    assert summary["reference"] == pytest.approx([10, 20, 30, 40, 50, 60, 70, 80, 90])
    assert summary["current"][4] == 100.0
    assert quantile_summary([], [float("nan")]) == {
        "kind": "quantiles",
        "quantiles": list(QUANTILES),
        "reference": None,
        "current": None,
    }
    assert quantile_summary([1 / 3] * 3, [2.0])["reference"] == [0.333333] * 9  # 6 digits


def _log(root: Path, model: str, rows: list[tuple[float, dict[str, object]]]) -> None:
    now = time.time()
    entries = [
        PredictionEntry(f"{model}-{i}", now - 60, model, "1", [{"x": x}], [output], 1.0)
        for i, (x, output) in enumerate(rows)
    ]
    sink = ParquetSink(root)
    sink.write(sink.encode(entries))
    sink.close()


def test_a_classifiers_check_stores_its_class_shares(tmp_path: Path) -> None:
    x = pd.DataFrame({"x": np.linspace(0, 1, 100)})
    model = DummyClassifier(strategy="prior").fit(x, ["a"] * 60 + ["b"] * 40)
    reference_predictions = pd.DataFrame(
        {"prediction": ["a"] * 60 + ["b"] * 40, "proba.a": 0.6, "proba.b": 0.4}
    )
    package = ModelPackage(
        model,
        Signature(inputs=(X,), classes=("a", "b")),
        "binary",
        {},
        reference=ReferenceSample.build(x, reference_predictions, max_rows=1_000, seed=0),
    )
    log = tmp_path / "predictions"
    outputs = [
        {"prediction": label, "probabilities": {"a": 0.6, "b": 0.4}}
        for label in ["a"] * 25 + ["b"] * 75
    ]
    _log(log, "clf", [(i / 100, o) for i, o in enumerate(outputs)])
    with Store.open(root=tmp_path / "sy") as store:
        Registry(store).register("clf", package)
        result = check_model("models:/clf/1", store=store, predictions=log, since="2000-01-01")
        assert result.check is not None
        stored = MonitorHistory(store).get(result.check.id).summary
    assert stored["distribution"] == {
        "kind": "classes",
        "reference": {"a": 0.6, "b": 0.4},
        "current": {"a": 0.25, "b": 0.75},
    }
    assert stored["uri"] == "models:/clf/1" and stored["predictions"]["drifted"] is True


def test_a_regressions_check_stores_its_deciles(tmp_path: Path) -> None:
    x = pd.DataFrame({"x": np.arange(101, dtype=float)})
    model = LinearRegression().fit(x, x["x"] * 2)
    reference_predictions = pd.DataFrame({"prediction": x["x"] * 2, "target": x["x"] * 2})
    package = ModelPackage(
        model,
        Signature(inputs=(X,)),
        "regression",
        {},
        reference=ReferenceSample.build(x, reference_predictions, max_rows=1_000, seed=0),
    )
    log = tmp_path / "predictions"
    _log(log, "reg", [(float(i), {"prediction": float(i) * 2 + 100}) for i in range(101)])
    with Store.open(root=tmp_path / "sy") as store:
        Registry(store).register("reg", package)
        result = check_model("models:/reg/1", store=store, predictions=log, since="2000-01-01")
        assert result.check is not None
        stored = MonitorHistory(store).get(result.check.id).summary["distribution"]
        unrecorded = check_model(
            "models:/reg/1", store=store, predictions=log, since="2000-01-01", record=False
        )
        assert unrecorded.check is None
        assert len(MonitorHistory(store).checks("reg")) == 1
    assert stored["kind"] == "quantiles" and stored["quantiles"] == list(QUANTILES)
    assert stored["reference"] == pytest.approx([20, 40, 60, 80, 100, 120, 140, 160, 180])
    assert stored["current"] == pytest.approx([120, 140, 160, 180, 200, 220, 240, 260, 280])

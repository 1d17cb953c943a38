"""Metrics agree with scikit-learn's own functions on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from shipyard.evaluate import aligned_proba, default_metric, evaluate_predictions, greater_is_better


def test_binary_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["no", "yes"], size=200)
    p_yes = np.clip(np.where(y == "yes", 0.7, 0.3) + rng.normal(0, 0.2, 200), 0.01, 0.99)
    proba = np.column_stack([1 - p_yes, p_yes])
    pred = np.where(p_yes > 0.5, "yes", "no")
    ev = evaluate_predictions("binary", y, pred, proba, ["no", "yes"])
    pos = (y == "yes").astype(int)
    assert ev.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert ev.metrics["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="yes"))
    assert ev.metrics["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="yes"))
    assert ev.metrics["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"))
    assert ev.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(pos, p_yes))
    assert ev.metrics["pr_auc"] == pytest.approx(skm.average_precision_score(pos, p_yes))
    assert ev.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=["no", "yes"]))
    assert ev.metrics["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert ev.confusion_matrix == skm.confusion_matrix(y, pred, labels=["no", "yes"]).tolist()


def test_multiclass_macro_and_weighted() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c", "a", "a"])
    pred = np.array(["a", "b", "b", "a", "c", "c", "a", "b"])
    proba = np.eye(3)[[0, 1, 1, 0, 2, 2, 0, 1]] * 0.8 + 0.2 / 3
    ev = evaluate_predictions("multiclass", y, pred, proba, ["a", "b", "c"])
    assert ev.metrics["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert ev.metrics["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert ev.metrics["f1"] == ev.metrics["f1_macro"]
    assert ev.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert len(ev.confusion_matrix or []) == 3


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 5.0])
    ev = evaluate_predictions("regression", y, p)
    assert ev.metrics["mae"] == pytest.approx(0.5)
    assert ev.metrics["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    assert ev.metrics["r2"] == pytest.approx(skm.r2_score(y, p))
    assert ev.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert ev.confusion_matrix is None


def test_single_class_holdout_gives_nan_auc() -> None:
    ev = evaluate_predictions(
        "binary", ["a", "a"], ["a", "b"], np.array([[0.9, 0.1], [0.4, 0.6]]), ["a", "b"]
    )
    assert np.isnan(ev.metrics["roc_auc"])


def test_directions_and_defaults() -> None:
    assert greater_is_better("f1_macro") and not greater_is_better("rmse")
    assert default_metric("regression") == "rmse" and default_metric("binary") == "f1_macro"


def test_aligned_proba_fills_missing_classes() -> None:
    class Fake:
        classes_ = np.array(["a", "c"])

        def predict_proba(self, x: object) -> np.ndarray:
            return np.array([[0.25, 0.75]])

    out = aligned_proba(Fake(), None, ["a", "b", "c"])
    assert out.tolist() == [[0.25, 0.0, 0.75]]

"""Performance estimation (CBPE) and the realised/estimated/holdout comparison."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.evaluate import evaluate_predictions
from shipyard.monitor import compare_performance, estimate_performance, fit_calibration

CLASSES = ["no", "yes"]


def _calibrated_binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities that are right by construction: y ~ Bernoulli(p)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, n)
    y = np.where(rng.random(n) < p, "yes", "no")
    pred = np.where(p >= 0.5, "yes", "no")
    return np.column_stack([1 - p, p]), pred, y


def test_estimates_match_realised_metrics_when_probabilities_are_calibrated() -> None:
    proba, pred, y = _calibrated_binary(100_000)
    estimated = estimate_performance("binary", proba, pred, CLASSES)
    realised = evaluate_predictions("binary", y, pred, proba, CLASSES).metrics
    assert set(estimated) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    for metric, value in estimated.items():
        assert value == pytest.approx(realised[metric], abs=0.01), metric


def test_multiclass_estimates_match_realised_metrics() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20_000, 4)) * 2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = ["a", "b", "c", "d"]
    u = rng.random(len(proba))
    y = np.asarray(classes, dtype=object)[(proba.cumsum(axis=1) < u[:, None]).sum(axis=1)]
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    estimated = estimate_performance("multiclass", proba, pred, classes)
    realised = evaluate_predictions("multiclass", y, pred, proba, classes).metrics
    for metric in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc"):
        assert estimated[metric] == pytest.approx(realised[metric], abs=0.015), metric


def test_calibration_is_applied_only_when_it_lowers_the_error_out_of_fold() -> None:
    proba, _, y = _calibrated_binary(4_000, seed=2)
    as_given = fit_calibration(y, proba, CLASSES)
    assert as_given.ece < 0.03  # right by construction: only binning noise
    squashed = 0.5 + 0.5 * (proba - 0.5)  # underconfident: the estimate would be too low
    fixed = fit_calibration(y, squashed, CLASSES)
    assert fixed.applied and fixed.ece_calibrated is not None
    assert fixed.ece_calibrated < fixed.ece
    big, big_pred, big_y = _calibrated_binary(50_000, seed=3)
    truth = evaluate_predictions("binary", big_y, big_pred, big, CLASSES).metrics["accuracy"]
    raw = estimate_performance("binary", 0.5 + 0.5 * (big - 0.5), big_pred, CLASSES)
    corrected = estimate_performance(
        "binary", fixed.apply(0.5 + 0.5 * (big - 0.5)), big_pred, CLASSES
    )
    assert abs(corrected["accuracy"] - truth) < 0.01 < abs(raw["accuracy"] - truth)
    # whether or not it chose to correct them, right probabilities stay right
    kept = estimate_performance("binary", as_given.apply(big), big_pred, CLASSES)
    assert kept["accuracy"] == pytest.approx(truth, abs=0.01)
    assert np.allclose(fixed.apply(squashed).sum(axis=1), 1.0)


def test_calibration_is_not_fitted_on_too_little_or_one_class_data() -> None:
    proba, _, y = _calibrated_binary(8)
    assert fit_calibration(y, proba, CLASSES).ece_calibrated is None
    proba, _, _ = _calibrated_binary(100)
    only_no = np.full(100, "no", dtype=object)
    calibration = fit_calibration(only_no, proba, CLASSES)
    assert calibration.ece_calibrated is None and not calibration.applied


def test_estimate_is_empty_for_regression_or_no_rows() -> None:
    assert estimate_performance("regression", np.zeros((3, 0)), [1.0, 2.0, 3.0], []) == {}
    assert estimate_performance("binary", np.zeros((0, 2)), [], CLASSES) == {}


def test_expected_auc_of_a_constant_probability_is_undefined() -> None:
    proba = np.column_stack([np.zeros(5), np.ones(5)])
    assert np.isnan(estimate_performance("binary", proba, ["yes"] * 5, CLASSES)["roc_auc"])


def test_comparison_shows_holdout_estimate_and_realised_with_the_drop() -> None:
    proba, pred, y = _calibrated_binary(2_000, seed=4)
    labelled = np.zeros(len(pred), dtype=bool)
    labelled[:500] = True
    report = compare_performance(
        "binary",
        {"accuracy": 0.9, "roc_auc": 0.95, "log_loss": 0.2},
        y_pred=pred,
        proba=proba,
        classes=CLASSES,
        y_true=y[:500],
        labelled=labelled,
    )
    assert report.n_predictions == 2_000 and report.n_labelled == 500
    accuracy = report.metric("accuracy")
    assert accuracy.reference == 0.9 and accuracy.n_labelled == 500
    assert accuracy.estimated is not None and accuracy.realised is not None
    assert accuracy.drop == pytest.approx(0.9 - accuracy.realised)
    log_loss = report.metric("log_loss")  # lower is better: a higher loss is a positive drop
    assert log_loss.estimated is None and log_loss.realised is not None
    assert log_loss.drop == pytest.approx(log_loss.realised - 0.2)
    with pytest.raises(KeyError):
        report.metric("mae")
    payload = report.to_dict()
    assert payload["n_labelled"] == 500 and payload["calibration"] is None


def test_without_labels_the_drop_uses_the_estimate() -> None:
    proba, pred, _ = _calibrated_binary(1_000, seed=5)
    report = compare_performance(
        "binary", {"accuracy": 0.95}, y_pred=pred, proba=proba, classes=CLASSES
    )
    accuracy = report.metric("accuracy")
    assert accuracy.realised is None and accuracy.estimated is not None
    assert accuracy.drop == pytest.approx(0.95 - accuracy.estimated)


def test_regression_gets_realised_metrics_only() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=300)
    pred = y + rng.normal(scale=0.5, size=300)
    report = compare_performance(
        "regression",
        {"rmse": 0.3, "mae": 0.2},
        y_pred=pred,
        y_true=y,
        labelled=np.ones(300, dtype=bool),
    )
    rmse = report.metric("rmse")
    assert rmse.estimated is None
    assert rmse.realised == pytest.approx(float(np.sqrt(np.mean((y - pred) ** 2))))
    assert rmse.drop == pytest.approx(rmse.realised - 0.3)  # lower is better

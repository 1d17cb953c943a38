"""The paired bootstrap: every metric's vectorised score equals the metrics module's on the same
rows, and the evidence says which model is better and how surely."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shipyard.evaluate import KEY_METRICS, greater_is_better, paired_bootstrap, score_predictions
from shipyard.evaluate._paired import bootstrap_scores

LABEL_EXTRA = (
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
)


def _classifier(task: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    classes = ["no", "yes"] if task == "binary" else ["a", "b", "c", "d"]
    y = rng.choice(classes, size=n, p=None if task == "binary" else [0.5, 0.3, 0.15, 0.05])
    logits = rng.normal(size=(n, len(classes)))
    logits[np.arange(n), [classes.index(v) for v in y]] += 1.0
    logits = np.round(logits, 1)  # ties among scores, as trees give
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y.astype(object), proba, classes


def _metrics(task: str) -> list[str]:
    names = set(KEY_METRICS[task])
    if task != "regression":
        names |= set(LABEL_EXTRA)
    if task == "binary":
        names |= {"f2", "mcc"}  # the metrics a decision threshold can be tuned for
    return sorted(names)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_every_classification_metric_matches_the_metrics_module(task: str) -> None:
    y, proba, classes = _classifier(task, 120, seed=1)
    idx = np.random.default_rng(2).integers(0, len(y), size=(8, len(y)))
    for metric in _metrics(task):
        got = bootstrap_scores(y, proba, task=task, metric=metric, classes=classes)(idx)
        want = [score_predictions(task, metric, y[i], proba[i], classes) for i in idx]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=metric)


def test_regression_metrics_match_the_metrics_module() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, size=80)
    y[:5] = 0.0  # MAPE's guard against dividing by zero
    pred = y + rng.normal(size=80)
    idx = rng.integers(0, 80, size=(30, 80))
    for metric in _metrics("regression"):
        got = bootstrap_scores(y, pred, task="regression", metric=metric)(idx)
        want = [score_predictions("regression", metric, y[i], pred[i]) for i in idx]
        np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=metric)


def test_a_resample_with_one_class_has_no_auc_and_is_left_out() -> None:
    y = np.array(["no"] * 9 + ["yes"], dtype=object)
    proba = np.column_stack([np.linspace(1, 0, 10), np.linspace(0, 1, 10)])
    idx = np.array([np.arange(10), np.zeros(10, int)])  # the second draws row 0 ten times
    auc = bootstrap_scores(y, proba, task="binary", metric="roc_auc", classes=["no", "yes"])
    got = auc(idx)
    assert got[0] == 1.0 and np.isnan(got[1])


def test_labels_count_for_label_metrics() -> None:
    # A tuned threshold: the labels are not the argmax of the probabilities.
    y = np.array(["no", "yes", "yes", "no"], dtype=object)
    labels = np.array(["no", "yes", "yes", "yes"], dtype=object)
    score = bootstrap_scores(y, labels, task="binary", metric="accuracy", classes=["no", "yes"])
    assert score(np.arange(4)[None, :])[0] == 0.75


def test_a_clearly_better_challenger_wins_surely() -> None:
    y, proba, classes = _classifier("binary", 2000, seed=4)
    noise = np.random.default_rng(5).uniform(size=proba.shape)
    worse = 0.4 * proba + 0.6 * noise / noise.sum(axis=1, keepdims=True)
    ev = paired_bootstrap(
        y, proba, worse, task="binary", metric="roc_auc", classes=classes, samples=300
    )
    assert ev.p_better == 1.0 and ev.n_valid == 300
    assert 0 < ev.ci_low <= ev.difference <= ev.ci_high
    assert ev.difference == pytest.approx(ev.challenger - ev.champion)


def test_the_difference_is_oriented_for_lower_is_better_metrics() -> None:
    y, proba, classes = _classifier("multiclass", 1500, seed=6)
    flat = np.full_like(proba, 1 / proba.shape[1])
    ev = paired_bootstrap(
        y, proba, flat, task="multiclass", metric="log_loss", classes=classes, samples=200
    )
    assert not greater_is_better("log_loss") and not ev.greater_is_better
    assert ev.challenger < ev.champion and ev.difference > 0 and ev.p_better == 1.0


def test_identical_models_are_never_better_and_the_margin_counts() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(size=300)
    pred = y + rng.normal(size=300)
    same = paired_bootstrap(y, pred, pred, task="regression", metric="rmse", samples=100)
    assert same.p_better == 0.0 and same.difference == 0.0
    slightly = pred + 0.01 * np.sign(pred - y)  # the champion is a hair worse everywhere
    ev = paired_bootstrap(y, pred, slightly, task="regression", metric="mae", samples=200)
    assert ev.p_better == 1.0
    far = paired_bootstrap(
        y, pred, slightly, task="regression", metric="mae", samples=200, margin=0.05
    )
    assert far.p_better == 0.0


def test_same_seed_same_evidence_and_json_ready() -> None:
    y, proba, classes = _classifier("binary", 300, seed=8)
    other = proba[::-1].copy()
    run = [
        paired_bootstrap(y, proba, other, task="binary", metric="f1", classes=classes, seed=3)
        for _ in range(2)
    ]
    assert run[0] == run[1]
    assert set(run[0].to_dict()) >= {"p_better", "ci_low", "ci_high", "difference", "samples"}


def test_bad_inputs_are_refused_with_a_sentence() -> None:
    y = np.array(["a", "b"], dtype=object)
    with pytest.raises(ValueError, match="class probabilities"):
        paired_bootstrap(y, y, y, task="binary", metric="roc_auc", classes=["a", "b"])
    with pytest.raises(ValueError, match="no paired bootstrap for metric 'nope'"):
        paired_bootstrap(y, y, y, task="binary", metric="nope", classes=["a", "b"])
    with pytest.raises(ValueError, match="3 predictions for 2"):
        paired_bootstrap(y, np.array(["a"] * 3), y, task="binary", metric="f1")


def test_fast_on_fifty_thousand_rows() -> None:
    y, proba, classes = _classifier("binary", 50_000, seed=9)
    started = time.perf_counter()
    for metric in ("roc_auc", "f1"):
        paired_bootstrap(
            y, proba, proba[::-1], task="binary", metric=metric, classes=classes, samples=1000
        )
    assert time.perf_counter() - started < 30

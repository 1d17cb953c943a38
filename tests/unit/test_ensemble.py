"""Ensemble selection on out-of-fold predictions: weights, the nested score, when it declines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from shipyard.train import ensemble_pipeline, select_ensemble, selection_score


def _folds(n: int, k: int = 5) -> list[np.ndarray]:
    return [np.arange(i, n, k) for i in range(k)]


def test_two_predictors_with_independent_errors_blend_evenly_and_beat_each() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=2_000)
    a, b = y + rng.normal(size=y.size), y + rng.normal(size=y.size)
    bad = y + 5 * rng.normal(size=y.size)
    choice = select_ensemble(
        {"a": a, "b": b, "bad": bad},
        y,
        _folds(y.size),
        task="regression",
        metric="rmse",
        classes=None,
    )
    assert choice is not None
    assert set(choice.weights) <= {"a", "b", "bad"} and abs(sum(choice.weights.values()) - 1) < 1e-9
    assert 0.35 <= choice.weights["a"] <= 0.65 and choice.weights.get("bad", 0) < 0.15
    rmse_a = float(np.sqrt(np.mean((a - y) ** 2)))
    assert choice.mean < 0.85 * rmse_a  # averaging two errors shrinks them by about 1/sqrt(2)
    assert len(choice.fold_scores) == 5 and choice.std >= 0


def test_a_dominant_candidate_alone_is_no_ensemble() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    choice = select_ensemble(
        {"good": y + 0.01 * rng.normal(size=y.size), "noise": rng.normal(size=y.size)},
        y,
        _folds(y.size),
        task="regression",
        metric="r2",
        classes=None,
    )
    assert choice is None
    assert (
        select_ensemble({"one": y}, y, _folds(y.size), task="regression", metric="r2", classes=None)
        is None
    )


def test_classifier_probabilities_blend_on_the_primary_metric() -> None:
    rng = np.random.default_rng(2)
    n = 1_500
    truth = rng.integers(0, 2, n)
    y = np.where(truth == 1, "yes", "no").astype(object)

    def noisy() -> np.ndarray:
        p = np.clip(0.5 + (truth - 0.5) * 0.4 + rng.normal(scale=0.3, size=n), 0.01, 0.99)
        return np.column_stack([1 - p, p])

    choice = select_ensemble(
        {"a": noisy(), "b": noisy()},
        y,
        _folds(n),
        task="binary",
        metric="log_loss",
        classes=("no", "yes"),
    )
    assert choice is not None and set(choice.weights) == {"a", "b"}


def test_the_ensemble_pipeline_votes_with_the_weights() -> None:
    x = pd.DataFrame({"v": np.arange(20.0)})
    y = np.where(x["v"] > 9, "hi", "lo")
    members = {
        "lr#1": Pipeline([("model", LogisticRegression())]),
        "lr#2": Pipeline([("model", LogisticRegression(C=0.01))]),
    }
    model = ensemble_pipeline("binary", members, {"lr#1": 0.75, "lr#2": 0.25}).fit(x, y)
    voting = model.named_steps["model"]
    assert list(voting.classes_) == ["hi", "lo"] and list(voting.weights) == [0.75, 0.25]
    assert model.predict_proba(x).shape == (20, 2)
    regression = ensemble_pipeline(
        "regression", {"a": LinearRegression(), "b": LinearRegression()}, {"a": 0.5, "b": 0.5}
    ).fit(x, x["v"] * 2)
    assert np.allclose(regression.predict(x), x["v"] * 2)


def test_on_one_holdout_the_parts_nested_blends_are_scored_together() -> None:
    """Candidates scored on one fold (a search's holdout): the other rows are NaN, the
    nested selection runs on parts of the fold, and the score is the whole fold's."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=3_000)
    held = np.arange(0, 3_000, 5)  # one fold of five; the rest was never predicted
    a = np.full(y.size, np.nan)
    b = np.full(y.size, np.nan)
    a[held] = y[held] + rng.normal(size=held.size)
    b[held] = y[held] + rng.normal(size=held.size)
    choice = select_ensemble(
        {"a": a, "b": b},
        y,
        np.array_split(held, 3),
        task="regression",
        metric="rmse",
        classes=None,
        pooled=True,
    )
    assert choice is not None and len(choice.fold_scores) == 1 and choice.std == 0
    rmse_a = float(np.sqrt(np.mean((a[held] - y[held]) ** 2)))
    assert np.isfinite(choice.mean) and choice.mean < 0.85 * rmse_a


def test_picking_the_best_single_candidate_is_scored_nested_as_the_ensemble_is() -> None:
    """Each fold scores the candidate the other folds pick: among close candidates the best
    one's own mean is the luckiest, and the nested score falls below it."""
    rng = np.random.default_rng(4)
    # twenty candidates of the same worth, 0.85, with fold noise
    folds = {f"c{i}": list(0.85 + rng.normal(0, 0.005, size=5)) for i in range(20)}
    nested = selection_score(folds, greater_is_better=True)
    best_mean = max(np.mean(v) for v in folds.values())
    assert nested is not None and nested < best_mean - 0.002
    assert abs(nested - 0.85) < 0.004
    # a candidate far ahead on every fold is picked on every fold: its own mean
    folds["star"] = [0.95, 0.96, 0.94, 0.95, 0.95]
    assert selection_score(folds, greater_is_better=True) == pytest.approx(0.95)
    # an error metric: the lowest is best
    assert selection_score({"a": [1.0, 3.0], "b": [2.0, 2.0]}, greater_is_better=False) == 2.5
    # one fold (a search's holdout): no nested score; candidates with fewer folds left out
    assert selection_score({"a": [0.9], "b": [0.8]}, greater_is_better=True) is None
    assert selection_score({"a": [0.9, 0.7], "b": [0.1]}, greater_is_better=True) == 0.8
    assert selection_score({}, greater_is_better=True) is None

"""Explanations of a model card: permutation importance on the raw inputs, and a SHAP summary
on the transformed features.

Both are sized to take seconds: permutation importance scores a sample of holdout rows a few
times per column, and SHAP explains at most a couple of hundred rows, after a pilot that
tells how many the time left allows. ``shap`` is imported only here, when a card asks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.evaluate._scorer import metric_scorer

__all__ = [
    "Importance",
    "NotExplainable",
    "ShapSummary",
    "permutation_cost",
    "permutation_importances",
    "shap_summary",
]

_TOP = 15
"""Features shown in the SHAP summary."""
_PILOT_ROWS = 10
_TREE_SHAP_OPS_PER_SECOND = 3e8
"""Leaf x depth^2 steps exact Tree SHAP does a second (measured: 5e8 on a laptop core)."""
_LINEAR_BACKGROUND = 100


class NotExplainable(Exception):  # a reason, caught inside the card, never raised out
    """SHAP has no fast explainer for this model; the message says why."""


@dataclass(frozen=True)
class Importance:
    """Permutation importance of each raw input column.

    Attributes:
        metric: the metric whose drop is measured (the run's primary metric).
        features: columns, most important first.
        mean, std: the metric's drop when the column is shuffled, over ``n_repeats`` shuffles
            (positive: the model relies on the column; lower-is-better metrics are turned
            so that a positive drop still means worse).
        n_rows: holdout rows scored.
        n_repeats: shuffles per column.
    """

    metric: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    n_rows: int
    n_repeats: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "metric": self.metric,
            "features": list(self.features),
            "mean": list(self.mean),
            "std": list(self.std),
            "n_rows": self.n_rows,
            "n_repeats": self.n_repeats,
        }


def permutation_cost(
    model: Any, x: pd.DataFrame, y: pd.Series, *, task: str, metric: str, classes: Any
) -> float:
    """Seconds one scoring of ``x`` takes (a permutation importance does ``columns x
    repeats`` of them)."""
    scorer = metric_scorer(task, metric, classes)
    started = time.perf_counter()
    scorer(model, x, y)
    return time.perf_counter() - started


def permutation_importances(
    model: Any,
    x: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    metric: str,
    classes: Sequence[str] | None,
    n_repeats: int,
    seed: int,
) -> Importance:
    """sklearn's permutation importance of each column of ``x`` for the primary metric."""
    from sklearn.inspection import permutation_importance

    target = y if task == "regression" else y.astype(str)
    result = permutation_importance(
        model,
        x,
        target,
        scoring=metric_scorer(task, metric, classes),
        n_repeats=n_repeats,
        random_state=seed,
    )
    order = np.argsort(-result.importances_mean, kind="stable")
    return Importance(
        metric,
        tuple(str(x.columns[i]) for i in order),
        tuple(float(result.importances_mean[i]) for i in order),
        tuple(float(result.importances_std[i]) for i in order),
        len(x),
        n_repeats,
    )


@dataclass(frozen=True)
class ShapSummary:
    """Mean absolute SHAP values of the top transformed features.

    Attributes:
        explainer: ``tree`` or ``linear``.
        output: what the values explain (the model's raw output for the positive class, the
            predicted value, or every class's).
        features: the top features, most influential first.
        mean_abs: their mean absolute SHAP value (summed over classes for multiclass).
        values: ``(rows, features)`` SHAP values for a beeswarm (binary and regression).
        feature_values: the same cells' feature values, scaled to [0, 1] per feature.
        by_class: ``(features, classes)`` mean absolute values (multiclass).
        classes: the classes of ``by_class``.
        n_rows: rows explained.
    """

    explainer: str
    output: str
    features: tuple[str, ...]
    mean_abs: tuple[float, ...]
    values: np.ndarray | None
    feature_values: np.ndarray | None
    by_class: np.ndarray | None
    classes: tuple[str, ...]
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the per-row values)."""
        return {
            "explainer": self.explainer,
            "output": self.output,
            "features": list(self.features),
            "mean_abs": list(self.mean_abs),
            "n_rows": self.n_rows,
        }


def shap_summary(
    model: Any,
    x: pd.DataFrame,
    *,
    task: str,
    classes: Sequence[str] | None,
    seed: int,
    max_rows: int = 200,
    budget: float | None = None,
) -> ShapSummary:
    """SHAP values of up to ``max_rows`` rows of ``x`` on the model's transformed features.

    Tree models get ``TreeExplainer``, linear ones ``LinearExplainer`` (background: 100 rows
    of ``x``). A pilot of 20 rows is timed first; only as many further rows as ``budget``
    seconds allow are explained.

    Raises:
        NotExplainable: the model is an ensemble of pipelines (no single feature space) or
            neither a tree nor a linear model (an exact explainer would take minutes).
    """
    import shap  # heavy: imported (outside the timing) when a card explains a model

    features, estimator = _split(model)
    rows = x.sample(n=min(max_rows, len(x)), random_state=seed) if len(x) else x
    xt = _dense(features.transform(rows))
    names = _names(features, xt.shape[1])
    started = time.perf_counter()
    explainer, kind = _explainer(shap, estimator, xt)
    approximate = kind == "tree" and _exact_cost(estimator) * len(xt) > (budget or np.inf) / 2
    piloted = time.perf_counter()
    pilot = np.asarray(_values(explainer, xt[:_PILOT_ROWS], approximate=approximate))
    per_row = max(time.perf_counter() - piloted, 1e-6) / max(1, min(_PILOT_ROWS, len(xt)))
    n_more = len(xt) - _PILOT_ROWS
    if budget is not None:
        n_more = min(n_more, int(max(0.0, budget - (time.perf_counter() - started)) / per_row))
    if n_more > 0:
        rest = _values(explainer, xt[_PILOT_ROWS : _PILOT_ROWS + n_more], approximate=approximate)
        pilot = np.concatenate([pilot, np.asarray(rest)])
    if approximate:
        kind = "tree (approximate: Saabas path attributions, exact Tree SHAP too slow here)"
    return _summarise(pilot, xt[: len(pilot)], names, kind, task, classes)


def _exact_cost(estimator: Any) -> float:
    """Seconds exact Tree SHAP is expected to take per row: it walks every leaf of every tree
    with a cost growing with depth squared (deep forests take a second a row)."""
    trees = np.ravel(getattr(estimator, "estimators_", []))
    work = 0.0
    for tree in trees:
        structure = getattr(tree, "tree_", None)
        if structure is not None:
            work += structure.n_leaves * structure.max_depth**2
    return work / _TREE_SHAP_OPS_PER_SECOND


def _split(model: Any) -> tuple[Any, Any]:
    steps = getattr(model, "named_steps", {})
    if "features" not in steps or "model" not in steps:
        msg = (
            "an ensemble of whole pipelines has no single feature space for SHAP; "
            "permutation importance covers it"
        )
        raise NotExplainable(msg)
    return steps["features"], steps["model"]


def _dense(values: Any) -> np.ndarray:
    if hasattr(values, "toarray"):
        values = values.toarray()
    return np.asarray(values, dtype=float)


def _names(features: Any, width: int) -> list[str]:
    try:
        names = [str(n) for n in features.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        return [f"feature {i}" for i in range(width)]
    return names if len(names) == width else [f"feature {i}" for i in range(width)]


def _explainer(shap: Any, estimator: Any, xt: np.ndarray) -> tuple[Any, str]:
    if hasattr(estimator, "coef_"):
        return shap.LinearExplainer(estimator, xt[:_LINEAR_BACKGROUND]), "linear"
    try:
        return shap.TreeExplainer(estimator), "tree"
    except Exception as exc:  # shap raises a bare Exception for model types it does not know
        name = type(estimator).__name__
        msg = (
            f"SHAP has no fast explainer for {name} (not a tree or linear model): "
            f"{str(exc).strip()[:120]}; permutation importance covers it"
        )
        raise NotExplainable(msg) from exc


def _values(explainer: Any, xt: np.ndarray, *, approximate: bool) -> Any:
    if approximate:
        values = explainer.shap_values(xt, approximate=True, check_additivity=False)
    else:
        values = explainer.shap_values(xt)
    if isinstance(values, list):  # older shap: one array per class
        values = np.stack(values, axis=-1)
    return values


def _summarise(
    values: np.ndarray,
    xt: np.ndarray,
    names: list[str],
    kind: str,
    task: str,
    classes: Sequence[str] | None,
) -> ShapSummary:
    labels = tuple(str(c) for c in classes or ())
    if values.ndim == 3 and task == "binary":
        values = values[..., -1]  # the positive class's column
    if values.ndim == 3:
        by_class = np.abs(values).mean(axis=0)
        strength = by_class.sum(axis=1)
        top = np.argsort(-strength, kind="stable")[:_TOP]
        return ShapSummary(
            kind,
            "each class's raw output",
            tuple(names[i] for i in top),
            tuple(float(strength[i]) for i in top),
            None,
            None,
            by_class[top],
            labels[: by_class.shape[1]],
            len(values),
        )
    strength = np.abs(values).mean(axis=0)
    top = np.argsort(-strength, kind="stable")[:_TOP]
    output = f"raw output for {labels[-1]!r}" if task == "binary" and labels else "prediction"
    return ShapSummary(
        kind,
        output,
        tuple(names[i] for i in top),
        tuple(float(strength[i]) for i in top),
        values[:, top],
        _scaled(xt[:, top]),
        None,
        (),
        len(values),
    )


def _scaled(values: np.ndarray) -> np.ndarray:
    low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (values - low) / span

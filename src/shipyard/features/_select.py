"""Feature selection after the feature transforms (``features.select``)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.feature_selection import (
    SelectFromModel,
    SelectKBest,
    VarianceThreshold,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.linear_model import LassoCV, LogisticRegression

from shipyard.spec import SelectSpec

__all__ = ["build_selector"]

_N_TREES = 100


class AtMost:
    """``SelectFromModel(max_features=AtMost(k))``: keep ``k`` features, or all when fewer.

    (An int ``max_features`` larger than the number of features is an error in sklearn, and
    how many features the transforms make is known only once they are fitted.)
    """

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, X: Any) -> int:
        return min(self.k, X.shape[1])

    def __repr__(self) -> str:
        return f"AtMost({self.k})"


def build_selector(spec: SelectSpec, task: str, *, seed: int, linear: bool) -> Any:
    """The selector ``spec`` asks for, for a ``task`` (``binary``/``multiclass``/``regression``).

    ``mutual_info`` keeps the ``k`` features with the highest mutual information with the
    target. ``model`` keeps the features a model finds important: an L1 model (logistic
    regression, or Lasso with its penalty chosen by 3-fold CV) when ``linear``, extremely
    randomised trees otherwise; with ``k`` it keeps the ``k`` most important (all of them
    when there are fewer), else those above ``threshold`` (sklearn's default: the mean
    importance for trees, 1e-5 for L1 models). ``variance`` drops features whose variance is
    at most ``threshold`` (0: constant features).
    """
    if spec.method == "variance":
        return VarianceThreshold(threshold=spec.threshold or 0.0)
    classify = task != "regression"
    if spec.method == "mutual_info":
        score = mutual_info_classif if classify else mutual_info_regression
        return SelectKBest(partial(score, random_state=seed), k=spec.k)
    threshold: float | None = spec.threshold
    if threshold is None and spec.k is not None:
        threshold = -np.inf  # rank by importance alone, so that k features are kept
    return SelectFromModel(
        _model(task, seed=seed, linear=linear),
        threshold=threshold,
        max_features=None if spec.k is None else AtMost(spec.k),
    )


def _model(task: str, *, seed: int, linear: bool) -> Any:
    if not linear:
        trees = ExtraTreesClassifier if task != "regression" else ExtraTreesRegressor
        return trees(n_estimators=_N_TREES, random_state=seed, n_jobs=1)
    if task == "regression":
        return LassoCV(cv=3, random_state=seed, max_iter=5000)
    solver = "liblinear" if task == "binary" else "saga"
    return LogisticRegression(l1_ratio=1.0, solver=solver, max_iter=2000, random_state=seed)

"""XGBoost estimators that stop early on a validation split of their fit rows.

See :mod:`shipyard.train._boosting`. They are ``XGBClassifier``/``XGBRegressor`` subclasses
(prediction and the ONNX converter use the best iteration). The classifier also takes any
labels, as scikit-learn's classifiers do (XGBoost itself wants ``0..n-1``): ``classes_`` and
``predict`` give the labels back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost
from sklearn.preprocessing import LabelEncoder

from shipyard.train._boosting import (
    DEFAULT_FRACTION,
    DEFAULT_ROUNDS,
    check_early_stopping,
    full_fit_rounds,
    validation_split,
)

__all__ = ["EarlyStoppingXGBClassifier", "EarlyStoppingXGBRegressor"]

_XGBOOST_ROUNDS = 100  # XGBoost's default n_estimators


class _EarlyStopping:
    early_stopping_rounds: int | None
    validation_fraction: float
    full_fit: bool
    random_state: Any
    n_estimators: int | None
    _stratify = False

    def _wrapper_params(self) -> set[str]:
        """Parameters that are not XGBoost's own (kept out of the booster's)."""
        return {*super()._wrapper_params(), "validation_fraction", "full_fit"}  # type: ignore[misc]

    def _fit_split(self, x: Any, y: Any, sample_weight: Any, kwargs: dict[str, Any]) -> Any:
        check_early_stopping(self.early_stopping_rounds, self.validation_fraction)
        library_fit = super().fit  # type: ignore[misc]
        split = None
        if self.early_stopping_rounds is not None and kwargs.get("eval_set") is None:
            split = validation_split(
                y, self.validation_fraction, self.random_state, stratify=self._stratify
            )
        if split is None:
            return self._fit_all(x, y, sample_weight, kwargs, self.n_estimators)
        x_fit, y_fit, w_fit, x_valid, y_valid, w_valid = split.take(x, y, sample_weight)
        fitted = library_fit(
            x_fit,
            y_fit,
            sample_weight=w_fit,
            eval_set=[(x_valid, y_valid)],
            sample_weight_eval_set=None if w_valid is None else [w_valid],
            verbose=False,
            **kwargs,
        )
        if not self.full_fit:
            return fitted
        cap = self.n_estimators or _XGBOOST_ROUNDS
        best = int(getattr(self, "best_iteration", cap - 1)) + 1
        rounds = full_fit_rounds(best, self.validation_fraction, cap)
        return self._fit_all(x, y, sample_weight, kwargs, rounds)

    def same_rounds_params(self) -> dict[str, Any]:
        """Parameters for a refit on other rows that fits as many rounds as this fitted
        model has, without early stopping (see :func:`shipyard.train.refit`)."""
        rounds = int(self.get_booster().num_boosted_rounds())  # type: ignore[attr-defined]
        return {"early_stopping_rounds": None, "full_fit": False, "n_estimators": rounds}

    def _fit_all(
        self, x: Any, y: Any, sample_weight: Any, kwargs: dict[str, Any], rounds: int | None
    ) -> Any:
        """Every row for ``rounds`` rounds, without early stopping (which XGBoost refuses
        without an evaluation set); the parameters are left as they were."""
        stopping, self.early_stopping_rounds = self.early_stopping_rounds, None
        cap, self.n_estimators = self.n_estimators, rounds
        try:
            return super().fit(x, y, sample_weight=sample_weight, **kwargs)  # type: ignore[misc]
        finally:
            self.early_stopping_rounds, self.n_estimators = stopping, cap


class EarlyStoppingXGBClassifier(_EarlyStopping, xgboost.XGBClassifier):
    """``XGBClassifier`` that stops early on a stratified validation split, for any labels.

    Args:
        early_stopping_rounds: stop after this many rounds without improvement of the
            validation log-loss; ``None``: no early stopping, ``n_estimators`` rounds.
        validation_fraction: the share of the fit rows held out for it.
        objective: XGBoost's objective.
        full_fit: then fit every row for the rounds found (see :mod:`shipyard.train._boosting`).
        **kwargs: ``XGBClassifier``'s parameters.
    """

    _stratify = True

    def __init__(
        self,
        *,
        early_stopping_rounds: int | None = DEFAULT_ROUNDS,
        validation_fraction: float = DEFAULT_FRACTION,
        objective: Any = "binary:logistic",
        full_fit: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(objective=objective, early_stopping_rounds=early_stopping_rounds, **kwargs)
        self.validation_fraction = validation_fraction
        self.full_fit = full_fit

    def fit(self, X: Any, y: Any, *, sample_weight: Any = None, **kwargs: Any) -> Any:
        """Encode the labels, then fit with early stopping (see the class)."""
        self.__dict__.pop("_labels", None)
        encoder = LabelEncoder().fit(np.asarray(y))
        codes = encoder.transform(np.asarray(y))
        if kwargs.get("eval_set") is not None:
            kwargs["eval_set"] = [
                (xv, encoder.transform(np.asarray(yv))) for xv, yv in kwargs["eval_set"]
            ]
        self._fit_split(X, codes, sample_weight, kwargs)
        self._labels = encoder.classes_
        return self

    @property
    def classes_(self) -> np.ndarray:
        """The labels, in the order of ``predict_proba``'s columns."""
        labels = self.__dict__.get("_labels")
        return labels if labels is not None else np.arange(self.n_classes_)

    def predict_proba(self, X: Any, **kwargs: Any) -> np.ndarray:  # type: ignore[override]
        """Class probabilities in ``classes_`` order, as float64 rows that sum to one
        (XGBoost's float32 rows miss by a rounding error, which metrics warn about)."""
        proba = np.asarray(super().predict_proba(X, **kwargs), dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """The most likely label of each row."""
        codes = np.asarray(super().predict(X, **kwargs), dtype=int)
        return np.asarray(self.classes_)[codes]


class EarlyStoppingXGBRegressor(_EarlyStopping, xgboost.XGBRegressor):
    """``XGBRegressor`` that stops early on a validation split (see the classifier)."""

    def __init__(
        self,
        *,
        early_stopping_rounds: int | None = DEFAULT_ROUNDS,
        validation_fraction: float = DEFAULT_FRACTION,
        objective: Any = "reg:squarederror",
        full_fit: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(objective=objective, early_stopping_rounds=early_stopping_rounds, **kwargs)
        self.validation_fraction = validation_fraction
        self.full_fit = full_fit

    def fit(self, X: Any, y: Any, *, sample_weight: Any = None, **kwargs: Any) -> Any:
        """Fit with early stopping (see the class)."""
        self._fit_split(X, y, sample_weight, kwargs)
        return self

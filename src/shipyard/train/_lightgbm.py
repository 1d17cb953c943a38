"""LightGBM estimators that stop early on a validation split of their fit rows.

See :mod:`shipyard.train._boosting`. They are ``LGBMClassifier``/``LGBMRegressor``
subclasses: prediction uses the best iteration, as does the ONNX converter (registered for
them by :func:`shipyard.train._onnx_boosters.register_booster_converters`).
"""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm

from shipyard.train._boosting import (
    DEFAULT_FRACTION,
    DEFAULT_ROUNDS,
    check_early_stopping,
    full_fit_rounds,
    validation_split,
)

__all__ = ["EarlyStoppingLGBMClassifier", "EarlyStoppingLGBMRegressor"]

_OURS = ("early_stopping_rounds", "validation_fraction", "full_fit", "categorical_columns")


class _EarlyStopping:
    """What both subclasses add; ``fit`` splits, then calls the library's ``fit``."""

    early_stopping_rounds: int | None
    validation_fraction: float
    full_fit: bool
    categorical_columns: list[int] | None
    random_state: Any
    n_estimators: int
    _stratify = False

    def _fit_split(self, X: Any, y: Any, sample_weight: Any, kwargs: dict[str, Any]) -> Any:
        check_early_stopping(self.early_stopping_rounds, self.validation_fraction)
        library_fit = super().fit  # type: ignore[misc]
        if self.categorical_columns:  # the features' category numbers (build_features)
            kwargs.setdefault("categorical_feature", list(self.categorical_columns))
        split = None
        if self.early_stopping_rounds is not None and kwargs.get("eval_set") is None:
            split = validation_split(
                y, self.validation_fraction, self.random_state, stratify=self._stratify
            )
        if split is None or self.early_stopping_rounds is None:
            return library_fit(X, y, sample_weight=sample_weight, **kwargs)
        x_fit, y_fit, w_fit, x_valid, y_valid, w_valid = split.take(X, y, sample_weight)
        stop = lightgbm.early_stopping(
            self.early_stopping_rounds, first_metric_only=True, verbose=False
        )
        callbacks = kwargs.pop("callbacks", None) or []
        with warnings.catch_warnings():
            # LightGBM 4.7 prefers eval_X/eval_y, but its classifier encodes the labels of
            # eval_set only (and 4.3-4.6 know no other)
            warnings.filterwarnings("ignore", "The argument 'eval_set' is deprecated")
            fitted = library_fit(
                x_fit,
                y_fit,
                sample_weight=w_fit,
                eval_set=[(x_valid, y_valid)],
                eval_sample_weight=None if w_valid is None else [w_valid],
                callbacks=[*callbacks, stop],
                **kwargs,
            )
        if not self.full_fit:
            return fitted
        cap = self.n_estimators
        best = int(getattr(self, "best_iteration_", 0) or cap)
        self.n_estimators = full_fit_rounds(best, self.validation_fraction, cap)
        try:  # every row, for the rounds found (see shipyard.train._boosting)
            return library_fit(X, y, sample_weight=sample_weight, callbacks=callbacks, **kwargs)
        finally:
            self.n_estimators = cap

    def same_rounds_params(self) -> dict[str, Any]:
        """Parameters for a refit on other rows that fits as many rounds as this fitted
        model has, without early stopping (see :func:`shipyard.train.refit`)."""
        rounds = int(self.booster_.current_iteration())  # type: ignore[attr-defined]
        return {"early_stopping_rounds": None, "full_fit": False, "n_estimators": rounds}

    def _process_params(self, stage: str) -> dict[str, Any]:
        params: dict[str, Any] = super()._process_params(stage)  # type: ignore[misc]
        for name in _OURS:  # ours, not LightGBM's (which reads early_stopping_rounds itself)
            params.pop(name, None)
        return params


class EarlyStoppingLGBMClassifier(_EarlyStopping, lightgbm.LGBMClassifier):
    """``LGBMClassifier`` that stops early on a stratified validation split.

    Args:
        early_stopping_rounds: stop after this many rounds without improvement of the
            validation log-loss; ``None``: no early stopping, ``n_estimators`` rounds.
        validation_fraction: the share of the fit rows held out for it.
        full_fit: then fit every row for the rounds found (see :mod:`shipyard.train._boosting`).
        categorical_columns: positions of the input columns that hold category numbers, split
            on as categories (LightGBM's ``categorical_feature``); set by the run from the
            features (:func:`shipyard.features.build_features`).
        **kwargs: ``LGBMClassifier``'s parameters.
    """

    _stratify = True

    def __init__(
        self,
        *,
        early_stopping_rounds: int | None = DEFAULT_ROUNDS,
        validation_fraction: float = DEFAULT_FRACTION,
        full_fit: bool = False,
        categorical_columns: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.full_fit = full_fit
        self.categorical_columns = categorical_columns

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Fit, holding out ``validation_fraction`` of the rows to stop early (unless
        ``early_stopping_rounds`` is ``None`` or an ``eval_set`` is given)."""
        return self._fit_split(X, y, sample_weight, kwargs)


class EarlyStoppingLGBMRegressor(_EarlyStopping, lightgbm.LGBMRegressor):
    """``LGBMRegressor`` that stops early on a validation split (see the classifier)."""

    def __init__(
        self,
        *,
        early_stopping_rounds: int | None = DEFAULT_ROUNDS,
        validation_fraction: float = DEFAULT_FRACTION,
        full_fit: bool = False,
        categorical_columns: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.full_fit = full_fit
        self.categorical_columns = categorical_columns

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Fit, holding out ``validation_fraction`` of the rows to stop early (unless
        ``early_stopping_rounds`` is ``None`` or an ``eval_set`` is given)."""
        return self._fit_split(X, y, sample_weight, kwargs)

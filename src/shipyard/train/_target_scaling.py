"""Regressors that fit a standardised target, for families whose defaults assume one.

An SVR's ``epsilon`` and ``C``, an MLP's initial weights and the lasso's ``alpha`` are all on
the scale of the target: the same defaults (and search ranges) that suit a target in units
fail on prices in thousands. These subclasses fit ``(y - mean) / std`` and predict in the
target's own units, so their defaults and ranges hold for any target. They do not convert to
ONNX (the model runs on the scikit-learn runtime).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import ElasticNet, Lasso
from sklearn.neural_network import MLPRegressor
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "StandardizedElasticNet",
    "StandardizedLasso",
    "StandardizedMLPRegressor",
    "StandardizedSVR",
]


class _StandardizedTarget:
    target_mean_: float
    target_scale_: float

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
        """Fit on the standardised target; remember its mean and scale."""
        target = np.asarray(y, dtype=float)
        self.target_mean_ = float(np.mean(target)) if target.size else 0.0
        scale = float(np.std(target)) if target.size else 1.0
        self.target_scale_ = scale if scale > 0 else 1.0
        super().fit(X, (target - self.target_mean_) / self.target_scale_, **kwargs)  # type: ignore[misc]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions in the target's units."""
        check_is_fitted(self, "target_scale_")
        scaled = np.asarray(super().predict(X))  # type: ignore[misc]
        return scaled * self.target_scale_ + self.target_mean_


class StandardizedSVR(_StandardizedTarget, SVR):
    """``SVR`` on the standardised target (``epsilon`` in standard deviations)."""


class StandardizedMLPRegressor(_StandardizedTarget, MLPRegressor):
    """``MLPRegressor`` on the standardised target."""


class StandardizedLasso(_StandardizedTarget, Lasso):
    """``Lasso`` on the standardised target (``alpha`` independent of the target's units)."""


class StandardizedElasticNet(_StandardizedTarget, ElasticNet):
    """``ElasticNet`` on the standardised target (``alpha`` independent of its units)."""

"""``log1p`` and square-root transforms for columns of counts and amounts (values >= 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["NonNegativeTransform"]

_FUNCS = ("log", "sqrt")


class NonNegativeTransform(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """``log1p(x)`` or ``sqrt(x)`` of columns whose training values are all >= 0.

    Fitting refuses a negative training value, naming the column and its minimum: neither
    function is defined there, and silently clipping would hide a data problem (use a
    Yeo-Johnson transform for columns of any sign). At prediction, a value below 0 (outside
    what training saw) is clipped to 0 so that the output stays finite. Missing values stay
    missing (impute after this step).

    Args:
        func: ``"log"`` (``log1p``) or ``"sqrt"``.

    Example:
        >>> NonNegativeTransform(func="sqrt").fit_transform(np.array([[4.0], [np.nan]])).tolist()
        [[2.0], [nan]]
    """

    def __init__(self, *, func: str = "log") -> None:
        self.func = func

    def fit(self, X: Any, y: Any = None) -> NonNegativeTransform:
        """Check ``func`` and that every training value is >= 0 (NaN aside)."""
        if self.func not in _FUNCS:
            msg = f"unknown func {self.func!r}; expected one of {list(_FUNCS)}"
            raise ValueError(msg)
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        negative = np.nan_to_num(values, nan=0.0).min(axis=0, initial=0.0) < 0
        if negative.any():
            names = getattr(self, "feature_names_in_", None)
            cols = [
                str(names[i]) if names is not None else f"#{i}" for i in np.flatnonzero(negative)
            ]
            lowest = np.nanmin(values[:, negative], axis=0)
            found = ", ".join(f"{c!r} (minimum {m:g})" for c, m in zip(cols, lowest, strict=True))
            msg = (
                f"Negative values in data: {found} in training; the {self.func!r} transform "
                "needs values >= 0: use 'yeo-johnson' under features.transforms, which takes "
                "any sign, or fix the data"
            )
            raise ValueError(msg)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return ``func`` of ``X`` clipped at 0, as floats (NaN stays NaN)."""
        check_is_fitted(self, "n_features_in_")
        values = validate_data(
            self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False, copy=True
        )
        clipped = np.where(values < 0, 0.0, values)
        return np.log1p(clipped) if self.func == "log" else np.sqrt(clipped)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values pass through
        tags.input_tags.positive_only = True  # fit refuses negative values
        return tags

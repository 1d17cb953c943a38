"""A transformer that expands datetime columns into calendar parts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

__all__ = ["DatetimeFeatures"]

_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour", "minute")


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Expand each datetime column into numeric calendar parts.

    Args:
        parts: which parts to emit, from ``year``, ``month``, ``day``, ``day_of_week``,
            ``day_of_year``, ``hour``, ``minute``. Missing datetimes give NaN parts.

    Example:
        >>> frame = pd.DataFrame({"d": pd.to_datetime(["2024-01-31", None])})
        >>> DatetimeFeatures(parts=("year", "month")).fit_transform(frame).tolist()
        [[2024.0, 1.0], [nan, nan]]
    """

    def __init__(self, *, parts: tuple[str, ...] = ("year", "month", "day", "day_of_week")) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:
        """Record the input columns; validates ``parts``."""
        unknown = [p for p in self.parts if p not in _PARTS]
        if unknown:
            msg = f"unknown datetime parts {unknown}; expected some of {list(_PARTS)}"
            raise ValueError(msg)
        validate_data(self, X, dtype=None, ensure_all_finite="allow-nan", reset=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return ``(n_rows, n_columns * len(parts))`` floats."""
        check_is_fitted(self, "n_features_in_")
        validate_data(self, X, dtype=None, ensure_all_finite="allow-nan", reset=False)
        frame = self._frame(X)
        out = []
        for col in frame.columns:
            values = pd.to_datetime(frame[col], errors="coerce")
            for part in self.parts:
                out.append(getattr(values.dt, part).to_numpy(dtype=float, na_value=np.nan))
        if not out:
            return np.empty((len(frame), 0))
        return np.column_stack(out)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing datetimes give NaN parts
        tags.input_tags.string = True  # date strings are parsed
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names as ``<column>_<part>``."""
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        return np.asarray([f"{c}_{p}" for c in names for p in self.parts], dtype=object)

    @staticmethod
    def _frame(X: Any) -> pd.DataFrame:
        return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))

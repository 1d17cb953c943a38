"""Holdout splits and cross-validation splitters, seeded and reproducible."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data._schema import close_matches
from shipyard.errors import DataError
from shipyard.spec._models import SplitSpec

__all__ = ["cv_splitter", "holdout_split"]

logger = logging.getLogger(__name__)

_CLASSIFICATION = ("binary", "multiclass")


def holdout_split(
    df: pd.DataFrame, *, target: str, split: SplitSpec, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into train and test positions.

    Strategy ``None`` means stratified for classification and random for regression;
    ``"time"`` sorts by ``split.time_column`` and tests on the latest ``test_size`` share.
    Rows whose target is missing are in neither part (validation warns about them).

    Args:
        df: the data.
        target: the target column.
        split: the project's split settings (strategy, test_size, time_column, seed).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns:
        ``(train, test)`` positional indices for ``df.iloc``: ascending for random and
        stratified splits, in time order for time splits.

    Raises:
        DataError: when the target or time column is missing, the time column is not
            date-like, or stratification is impossible (a class with fewer than 2 rows).
    """
    if target not in df.columns:
        msg = (
            f"the target column {target!r} is not in the data; {close_matches(target, df.columns)}"
        )
        raise DataError(msg)
    labelled = np.flatnonzero(df[target].notna().to_numpy())
    strategy = split.strategy or ("stratified" if task in _CLASSIFICATION else "random")
    if strategy == "time":
        return _time_split(df, labelled, split)
    stratify = None
    if strategy == "stratified":
        stratify = _stratify_labels(df[target].iloc[labelled], task)
    train, test = _shuffle_split(labelled, split, stratify)
    logger.debug("%s split: %d train, %d test rows", strategy, len(train), len(test))
    return np.sort(train), np.sort(test)


def _shuffle_split(
    rows: np.ndarray, split: SplitSpec, stratify: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.model_selection import train_test_split  # slow import: only when splitting

        train, test = train_test_split(
            rows, test_size=split.test_size, random_state=split.seed, stratify=stratify
        )
    except ValueError as exc:  # e.g. a test set smaller than the number of classes
        msg = (
            f"cannot split {len(rows)} labelled rows with test_size={split.test_size}: {exc}; "
            "use more data, a larger test_size or split.strategy 'random'"
        )
        raise DataError(msg) from exc
    return np.asarray(train), np.asarray(test)


def _stratify_labels(y: pd.Series, task: str) -> np.ndarray:
    if task not in _CLASSIFICATION:
        msg = (
            f"split.strategy 'stratified' needs a classification task, not {task!r}; "
            "use 'random' (the default for regression)"
        )
        raise DataError(msg)
    counts = y.value_counts()
    rare = counts[counts < 2]
    if not rare.empty:
        shown = ", ".join(f"{label!r} ({n} row)" for label, n in rare.items())
        msg = (
            f"cannot stratify on the target {y.name!r}: class(es) {shown} have fewer than 2 "
            "rows; add examples of them, drop them, or set split.strategy to 'random'"
        )
        raise DataError(msg)
    return y.to_numpy()


def _time_split(
    df: pd.DataFrame, labelled: np.ndarray, split: SplitSpec
) -> tuple[np.ndarray, np.ndarray]:
    times = _time_values(df, split.time_column or "")
    order = labelled[np.argsort(times[labelled], kind="stable")]
    n_test = math.ceil(split.test_size * len(order))
    if n_test >= len(order) or n_test == 0:
        msg = (
            f"a time split of {len(order)} labelled rows with test_size={split.test_size} "
            "leaves an empty train or test part; use more data or another test_size"
        )
        raise DataError(msg)
    return order[:-n_test], order[-n_test:]


def _time_values(df: pd.DataFrame, column: str) -> np.ndarray:
    if column not in df.columns:
        msg = (
            f"split.time_column {column!r} is not in the data; {close_matches(column, df.columns)}"
        )
        raise DataError(msg)
    series = df[column]
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype="float64")
        bad = np.isnan(values)
    else:
        parsed = _as_datetimes(series, column)
        values = parsed.to_numpy(dtype="datetime64[ns]")
        bad = np.isnat(values)
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + 1).tolist()
        msg = (
            f"split.time_column {column!r} has {int(bad.sum())} missing or unparseable "
            f"value(s) (rows {rows}); fill or drop them before a time split"
        )
        raise DataError(msg)
    return values


def _as_datetimes(series: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            return series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series
    parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    if series.notna().any() and parsed.notna().sum() == 0:
        msg = (
            f"split.time_column {column!r} is not date-like (dtype {series.dtype}, e.g. "
            f"{series.dropna().iloc[0]!r}); use a date/time or numeric time column"
        )
        raise DataError(msg)
    return parsed.dt.tz_localize(None)


def cv_splitter(*, split: SplitSpec, task: str) -> Any:
    """The cross-validation splitter for the training part.

    Args:
        split: the project's split settings (strategy, cv_folds, seed).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns:
        ``TimeSeriesSplit`` for time splits (the training part must be in time order, as
        :func:`holdout_split` returns it), ``StratifiedKFold`` for classification unless the
        strategy is ``"random"``, else ``KFold``; shuffled with ``split.seed``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit  # slow import

    if split.strategy == "time":
        return TimeSeriesSplit(n_splits=split.cv_folds)
    if task in _CLASSIFICATION and split.strategy != "random":
        return StratifiedKFold(n_splits=split.cv_folds, shuffle=True, random_state=split.seed)
    return KFold(n_splits=split.cv_folds, shuffle=True, random_state=split.seed)

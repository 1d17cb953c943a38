"""Declared expectations (``validation.expectations``), checked column by column, vectorised."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.data._coerce import is_object, to_text
from shipyard.data._report import CheckResult, row_result, table_result
from shipyard.data._schema import close_matches
from shipyard.spec._models import AllowedValues, NotNull, Range, Regex, RowCount, Unique

__all__ = ["AnyExpectation", "check_expectation"]

logger = logging.getLogger(__name__)

AnyExpectation = NotNull | Range | AllowedValues | Unique | RowCount | Regex


def check_expectation(
    expectation: AnyExpectation, columns: Mapping[str, pd.Series], n_rows: int
) -> CheckResult:
    """Run one expectation against the columns of a frame.

    Args:
        expectation: the declared expectation.
        columns: the frame's columns by name (first occurrence of a duplicated name).
        n_rows: the frame's row count.

    Returns:
        The result; an expectation naming an unknown column is a failed ``error`` result.
    """
    if isinstance(expectation, RowCount):
        return _row_count(expectation, n_rows)
    name = expectation.column
    if name not in columns:
        message = (
            f"{expectation.check} expectation names column {name!r}, which is not in the "
            f"data; {close_matches(name, list(columns))}"
        )
        return table_result(expectation.check, name, "error", message, failed=True)
    series = columns[name]
    if isinstance(expectation, NotNull):
        failed = series.isna().to_numpy()
        return _result(expectation, "not_null", failed, series)
    if isinstance(expectation, Range):
        return _range(expectation, series)
    if isinstance(expectation, AllowedValues):
        return _allowed(expectation, series)
    if isinstance(expectation, Unique):
        failed = (series.duplicated(keep=False) & series.notna()).to_numpy()
        return _result(expectation, "unique", failed, series)
    return _regex(expectation, series)


def _result(
    expectation: AnyExpectation, what: str, failed: np.ndarray, series: pd.Series
) -> CheckResult:
    column = getattr(expectation, "column", None) or str(series.name)
    return row_result(expectation.check, column, expectation.severity, what, failed, series)


def _row_count(expectation: RowCount, n_rows: int) -> CheckResult:
    low = expectation.min if expectation.min is not None else 0
    high = expectation.max if expectation.max is not None else float("inf")
    bounds = f"[{expectation.min if expectation.min is not None else '-'}, "
    bounds += f"{expectation.max if expectation.max is not None else '-'}]"
    failed = not low <= n_rows <= high
    verdict = "outside" if failed else "within"
    message = f"row_count {bounds}: the data has {n_rows} rows, {verdict} the expected range"
    return table_result("row_count", None, expectation.severity, message, failed=failed)


def _range(expectation: Range, series: pd.Series) -> CheckResult:
    low = "-inf" if expectation.min is None else f"{expectation.min:g}"
    high = "inf" if expectation.max is None else f"{expectation.max:g}"
    what = f"range [{low}, {high}]"
    values = _numbers(series)
    if values is None:
        message = (
            f"{what} needs a numeric column, but {series.name!r} holds {series.dtype} values; "
            "use allowed_values or regex for text"
        )
        return table_result("range", str(series.name), "error", message, failed=True)
    failed = np.zeros(len(values), dtype=bool)
    if expectation.min is not None:
        failed |= values < expectation.min
    if expectation.max is not None:
        failed |= values > expectation.max
    return _result(expectation, what, failed, series)


def _numbers(series: pd.Series) -> np.ndarray | None:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return None
    converted = pd.to_numeric(series, errors="coerce")
    if (converted.isna() & series.notna()).any():
        return None
    return converted.to_numpy(dtype="float64", na_value=np.nan)


def _allowed(expectation: AllowedValues, series: pd.Series) -> CheckResult:
    allowed = expectation.values
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in allowed[:10])
    what = f"allowed_values {{{shown}{', ...' if len(allowed) > 10 else ''}}}"
    failed = _not_in(series, allowed)
    if failed.any():
        # Compare the rest as text, so that "1" in a CSV text column matches an allowed 1.
        texts = {str(t) for t in to_text(pd.Series(allowed, dtype=object))}
        positions = np.flatnonzero(failed)
        rest = to_text(series.iloc[positions])
        failed[positions[pd.Index(rest, dtype=object).isin(list(texts))]] = False
    return _result(expectation, what, failed, series)


def _not_in(series: pd.Series, allowed: list[str | int | float | bool]) -> np.ndarray:
    """Mask of present values not in ``allowed`` (Arrow's kernel for Arrow-backed text)."""
    arrow = _arrow_text(series)
    if arrow is not None and all(isinstance(v, str) for v in allowed):
        found = pc.is_in(arrow, value_set=pa.array(allowed, type=arrow.type))
        return ~np.asarray(found, dtype=bool) & series.notna().to_numpy()
    return (~series.isin(allowed) & series.notna()).to_numpy(copy=True)


def _arrow_text(series: pd.Series) -> Any:
    """The series as an Arrow array when it is Arrow-backed text (zero copy), else None."""
    if not pd.api.types.is_string_dtype(series.dtype) or is_object(series.dtype):
        return None
    if getattr(series.dtype, "storage", None) != "pyarrow":
        return None
    return pa.array(series)


def _regex(expectation: Regex, series: pd.Series) -> CheckResult:
    what = f"regex {expectation.pattern!r}"
    try:
        compiled = re.compile(expectation.pattern)
    except re.error as exc:
        message = f"{what} is not a valid regular expression ({exc}); fix the pattern"
        return table_result("regex", str(series.name), "error", message, failed=True)
    present = series.notna().to_numpy()
    text = series if pd.api.types.is_string_dtype(series.dtype) else _as_str(series)
    try:
        matched = text.str.fullmatch(expectation.pattern)
    except ValueError:  # a Python-only construct the Arrow (RE2) engine rejects
        matched = (
            _as_str(series)
            .astype(object)
            .map(lambda v: v is not None and v == v and compiled.fullmatch(v) is not None)
        )
    ok = matched.to_numpy(dtype=bool, na_value=False)
    return _result(expectation, what, present & ~ok, series)


def _as_str(series: pd.Series) -> pd.Series:
    return pd.Series(to_text(series), index=series.index, dtype="str")

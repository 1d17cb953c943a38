"""Convert columns to the canonical dtypes that training and serving both feed the pipeline.

One rule set, used everywhere a frame meets a :class:`Signature` (training, batch and online
prediction, validation), so that a value means the same thing on every path:

* ``number`` / ``integer`` -> ``float64`` (``NaN`` for missing; ``""`` counts as missing; a
  value that is not a number is an error, or missing when the column's ``on_bad_numbers`` is
  ``"coerce"``);
* ``boolean`` -> ``float64`` 0/1 (accepts bools, 0/1 and ``true/false``, ``yes/no``, ``t/f``,
  ``y/n`` in any case);
* ``category`` / ``string`` -> ``object`` holding ``str`` (``np.nan`` for missing); numbers
  become their shortest text, integer-valued floats without the ``.0`` (``2007.0`` ->
  ``"2007"``) so that a CSV value and a Parquet value of the same year agree;
* ``datetime`` -> naive ``datetime64[ns]`` (time-zone aware values are converted to UTC).

Every function here is vectorised: the server calls :func:`coerce_frame` per request.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shipyard.data._signature import ColumnKind, ColumnSchema, Signature
from shipyard.errors import PredictionError

__all__ = [
    "ColumnProblem",
    "coerce_column",
    "coerce_frame",
    "format_examples",
    "is_object",
    "to_numbers",
    "to_text",
    "unknown_categories",
]

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 5
_TRUE = ("true", "yes", "t", "y", "1", "1.0")
_FALSE = ("false", "no", "f", "n", "0", "0.0")
_BOOL_MAP = {**dict.fromkeys(_TRUE, 1.0), **dict.fromkeys(_FALSE, 0.0)}
_EXACT_INT_LIMIT = 2.0**53
_SMALL = 256


@dataclass(frozen=True)
class ColumnProblem:
    """Values of one column that break its schema.

    Attributes:
        column: the column's name.
        mask: boolean array, ``True`` on the offending rows (positional).
        expected: what the values should have been, in words.
    """

    column: str
    mask: np.ndarray
    expected: str


def coerce_frame(frame: pd.DataFrame, signature: Signature) -> pd.DataFrame:
    """Select the signature's inputs, in order, and convert them to the canonical dtypes.

    Extra columns are ignored. The result keeps ``frame``'s index.

    Args:
        frame: input records, one row each.
        signature: the model's Signature.

    Returns:
        A new frame with exactly ``signature.input_names`` as columns.

    Raises:
        PredictionError: when columns are missing, values do not convert (except text in a
            number column whose ``on_bad_numbers`` is ``"coerce"``: it is read as missing), or
            a category column holds a value the model never saw; the message names every
            offending column, up to five row numbers (1-based) and values, and what was
            expected.

    Example:
        >>> sig = Signature(inputs=(ColumnSchema(name="x", kind="number", dtype="float64",
        ...                                      nullable=False),))
        >>> coerce_frame(pd.DataFrame({"x": ["1.5"], "y": [0]}), sig).dtypes["x"]
        dtype('float64')
    """
    missing = [name for name in signature.input_names if name not in frame.columns]
    if missing:
        msg = (
            f"missing input column(s) {missing}; the model expects {signature.input_names} "
            f"(found {list(map(str, frame.columns))}); add the missing field(s) to every record"
        )
        raise PredictionError(msg)
    out: dict[str, np.ndarray] = {}
    problems: list[tuple[ColumnProblem, pd.Series]] = []
    for col in signature.inputs:
        series = frame[col.name]
        values, problem = coerce_column(series, col, check_categories=True)
        out[col.name] = values
        if problem is not None:
            problems.append((problem, series))
    if problems:
        raise PredictionError(_problems_message(problems, len(frame)))
    return _assemble(out, frame.index)


def _assemble(columns: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """Build a frame from converted arrays, keeping object arrays as ``object`` dtype.

    ``DataFrame._from_arrays`` skips the dict constructor's dtype inference (which would turn
    object text into pandas' ``str`` dtype) and costs a third as much, which matters per
    request; the public constructor plus ``astype`` is the fallback should it ever go away.
    """
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    names = list(columns)
    if from_arrays is not None:
        return from_arrays(
            list(columns.values()), columns=names, index=index, verify_integrity=False
        )
    frame = pd.DataFrame(columns, index=index, columns=names, copy=False)
    texts = {name: object for name, arr in columns.items() if arr.dtype == object}
    return frame.astype(texts) if texts else frame


def coerce_column(
    series: pd.Series, col: ColumnSchema, *, check_categories: bool
) -> tuple[np.ndarray, ColumnProblem | None]:
    """Convert one column to its kind's canonical dtype.

    Args:
        series: the raw column.
        col: its schema (``kind``; ``categories`` when ``check_categories``).
        check_categories: report non-missing values outside ``col.categories``.

    Returns:
        The converted values and the problem found, if any (values that do not convert are
        missing in the result; they are no problem in a column whose ``on_bad_numbers`` is
        ``"coerce"``).
    """
    values, bad, expected = _convert(series, col.kind)
    if bad is not None and bad.any():
        if col.on_bad_numbers == "coerce":  # only numbers take the policy: they are missing
            logger.debug("column %r: %d value(s) read as missing", col.name, int(bad.sum()))
            return values, None
        return values, ColumnProblem(col.name, bad, expected)
    if check_categories and col.kind == "category" and col.categories is not None:
        unknown = unknown_categories(values, col.categories)
        if unknown.any():
            return values, ColumnProblem(col.name, unknown, _allowed(col.categories))
    return values, None


def _convert(series: pd.Series, kind: ColumnKind) -> tuple[np.ndarray, np.ndarray | None, str]:
    if kind in ("number", "integer"):
        values, bad = _to_float(series)
        return values, bad, "a number"
    if kind == "boolean":
        values, bad = _to_bool(series)
        return values, bad, "a boolean (true/false, yes/no or 0/1)"
    if kind == "datetime":
        dt, bad = _to_datetime(series)
        return dt, bad, "a date/time (e.g. 2024-01-31 or 2024-01-31T12:00:00)"
    return to_text(series), None, "text"


def _allowed(categories: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in categories[:20])
    more = f" and {len(categories) - 20} more" if len(categories) > 20 else ""
    return f"one of the categories seen in training: {shown}{more}"


def unknown_categories(values: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Mask of present text values that are not among ``categories``."""
    present = pd.notna(values)
    if len(values) <= _SMALL:  # numpy's comparison loop beats building a hash table here
        return present & ~np.isin(values, np.asarray(categories, dtype=object))
    return present & ~pd.Index(values, dtype=object).isin(categories)


def to_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Read a column as numbers, by the rule of ``number`` columns.

    Args:
        series: any column.

    Returns:
        The ``float64`` values (``NaN`` where missing or not a number) and the mask of the
        present values that are not numbers.
    """
    values, bad = _to_float(series)
    return values, np.zeros(len(values), dtype=bool) if bad is None else bad


def _to_float(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan), None
    text, missing = _clean_text(series)
    try:
        values = np.where(missing, "nan", text).astype("float64")
    except ValueError:  # some value is not a number: find which, value by value (in C)
        values = np.asarray(pd.to_numeric(_with_none(text, missing), errors="coerce"), "float64")
    return values, np.isnan(values) & ~missing


def _clean_text(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Stripped text of each value and the missing mask (blank text counts as missing).

    Small inputs (a request) go through numpy's string functions, which cost microseconds;
    large ones (a dataset) through pandas' string methods, which do not copy every value into
    a fixed-width array.
    """
    if len(series) <= _SMALL:
        raw = series.to_numpy(dtype=object)
        missing = pd.isna(raw)
        text = np.strings.strip(np.where(missing, "", raw).astype(str))
        return text, missing | (text == "")
    missing = series.isna().to_numpy()
    stripped = series.astype(object).where(~missing, "").astype(str).str.strip()
    text = stripped.to_numpy(dtype=object)
    return text, missing | (text == "")


def _with_none(text: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = text.astype(object)
    out[missing] = None
    return out


def _to_bool(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan), None
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isnan(values) & (values != 0.0) & (values != 1.0)
        return np.where(bad, np.nan, values), bad
    text, missing = _clean_text(series)
    lower = np.strings.lower(text) if text.dtype.kind == "U" else _lower_objects(text)
    values = np.where(np.isin(lower, _TRUE), 1.0, np.where(np.isin(lower, _FALSE), 0.0, np.nan))
    values[missing] = np.nan
    return values, np.isnan(values) & ~missing


def _lower_objects(text: np.ndarray) -> np.ndarray:
    return pd.Series(text, dtype="str").str.lower().to_numpy(dtype=object)


def _to_datetime(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        return series.to_numpy(dtype="datetime64[ns]"), None
    text, missing = _clean_text(series)
    values = _parse_iso(np.where(missing, "NaT", text)) if text.dtype.kind == "U" else None
    if values is None:
        raw = pd.Series(_with_none(text, missing))
        values = _parse_datetimes(raw).to_numpy(dtype="datetime64[ns]")
    return values, np.isnat(values) & ~missing


def _parse_iso(text: np.ndarray) -> np.ndarray | None:
    """Parse naive ISO 8601 text with numpy (microseconds); ``None`` when any value is not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy only warns on a time-zone offset
            return text.astype("datetime64[ns]")
    except (ValueError, UserWarning, DeprecationWarning):
        return None


def _parse_datetimes(raw: pd.Series) -> pd.Series:
    # The fast path infers one format from the first value; mixed formats fall back per value.
    parsed = pd.to_datetime(raw, errors="coerce", utc=True)
    retry = parsed.isna() & raw.notna()
    if retry.any():
        again = pd.to_datetime(raw[retry], errors="coerce", utc=True, format="mixed")
        parsed = parsed.copy()
        parsed[retry] = again
    return parsed.dt.tz_localize(None)


def to_text(series: pd.Series) -> np.ndarray:
    """Convert a column to an object array of ``str``, ``np.nan`` for missing.

    Integer-valued floats lose their ``.0`` (``2007.0`` -> ``"2007"``); other floats use their
    shortest round-tripping form (``0.1`` -> ``"0.1"``); bools become ``"True"``/``"False"``.

    Args:
        series: any column.

    Returns:
        A 1-D object array, as long as ``series``.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = to_text(pd.Series(dtype.categories))
        codes = series.cat.codes.to_numpy()
        out = np.where(codes >= 0, cats[np.maximum(codes, 0)] if len(cats) else np.nan, np.nan)
        return out.astype(object)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return _numbers_to_text(series)
    if pd.api.types.is_string_dtype(dtype) and not is_object(dtype):
        return series.to_numpy(dtype=object, na_value=np.nan)
    return _objects_to_text(series)


def is_object(dtype: object) -> bool:
    """Whether ``dtype`` is numpy's ``object`` dtype."""
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _numbers_to_text(series: pd.Series) -> np.ndarray:
    dtype = series.dtype
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        text = np.where(series.to_numpy(dtype=bool, na_value=False), "True", "False")
    elif pd.api.types.is_integer_dtype(dtype):
        text = series.to_numpy(dtype="int64", na_value=0).astype(str)
    else:
        floats = series.to_numpy(dtype="float64", na_value=np.nan)
        whole = np.isfinite(floats) & (np.abs(floats) < _EXACT_INT_LIMIT)
        whole &= floats == np.round(floats)
        as_int = np.where(whole, floats, 0).astype("int64").astype(str)
        text = np.where(whole, as_int, floats.astype(str))
    out = text.astype(object)
    out[missing] = np.nan
    return out


def _objects_to_text(series: pd.Series) -> np.ndarray:
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("string", "empty"):
        return series.to_numpy(dtype=object, na_value=np.nan).copy()
    if inferred in ("integer", "floating", "mixed-integer-float", "boolean"):
        return _numbers_to_text(pd.Series(series.tolist(), dtype=_numeric_dtype(inferred)))
    # Mixed values: convert each distinct value once, through the same rules.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = np.array([category_text(v) for v in uniques], dtype=object)
    out = np.full(len(series), np.nan, dtype=object)
    present = codes >= 0
    out[present] = texts[codes[present]]
    return out


def _numeric_dtype(inferred: str) -> str:
    return "boolean" if inferred == "boolean" else "float64"


def category_text(value: object) -> str:
    """One value as category text, by the rule :func:`to_text` applies to whole columns.

    Example:
        >>> category_text(2007.0), category_text(0.1), category_text(True)
        ('2007', '0.1', 'True')
    """
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | float | np.integer | np.floating):
        return str(_numbers_to_text(pd.Series([value], dtype="float64"))[0])
    return str(value)


def format_examples(mask: np.ndarray, series: pd.Series) -> tuple[list[int], list[object]]:
    """Up to five 1-based row numbers where ``mask`` holds, and the raw values there."""
    positions = np.flatnonzero(mask)[:MAX_EXAMPLES]
    values = series.iloc[positions].tolist()
    return [int(p) + 1 for p in positions], values


def _problems_message(problems: list[tuple[ColumnProblem, pd.Series]], n_rows: int) -> str:
    lines = []
    for problem, series in problems:
        rows, values = format_examples(problem.mask, series)
        n_bad = int(problem.mask.sum())
        shown = ", ".join(f"row {r}: {v!r}" for r, v in zip(rows, values, strict=True))
        lines.append(
            f"column {problem.column!r}: {n_bad} of {n_rows} value(s) invalid ({shown}); "
            f"expected {problem.expected}"
        )
    names = [p.column for p, _ in problems]
    return (
        f"input does not match the model's signature in column(s) {names}:\n  "
        + "\n  ".join(lines)
        + "\nfix these values (or send them as missing) and retry"
    )

"""Schema inference: what kind each column is and the domain it was observed to take.

Kinds, in order of precedence:

* a bool dtype (or object column of bools) -> ``boolean``;
* an integer dtype -> ``integer``; a float dtype -> ``number`` (even when every value is whole:
  a float column usually means the source allows fractions or missing values);
* a datetime dtype -> ``datetime``; a text column whose sampled values look like dates
  (digits and ``-``, ``/`` or ``:``) and of which at least 95% parse -> ``datetime``;
* other text or a pandas categorical -> ``category`` when it has at most ``max_categories``
  distinct values and is not identifier-like (at least 20 values, more than half of them
  distinct); otherwise ``string`` (free text, kept but not used as a feature by default).

Domains are computed on the values as :func:`coerce_frame` converts them, so that a frame's
inferred schema always accepts the frame itself.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from shipyard.data._coerce import coerce_column, format_examples, is_object, to_text
from shipyard.data._signature import ColumnKind, ColumnSchema
from shipyard.errors import DataError

__all__ = ["close_matches", "infer_schema", "sorted_labels"]

logger = logging.getLogger(__name__)

DATE_SAMPLE = 1000
DATE_PARSE_SHARE = 0.95
MIN_ROWS_FOR_ID_RULE = 20
_OBJECT_KINDS: dict[str, ColumnKind] = {
    "boolean": "boolean",
    "integer": "integer",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "datetime": "datetime",
    "datetime64": "datetime",
    "date": "datetime",
}


def infer_schema(
    df: pd.DataFrame,
    *,
    overrides: Mapping[str, ColumnKind] | None = None,
    max_categories: int = 50,
) -> dict[str, ColumnSchema]:
    """Infer each column's kind and observed domain.

    Args:
        df: the data.
        overrides: forced kinds by column name (e.g. an integer code column as ``category``;
            its categories are then the codes' text).
        max_categories: the most distinct values a ``category`` column may have.

    Returns:
        Column name -> :class:`ColumnSchema`, in the frame's column order.

    Raises:
        DataError: when an override names an unknown column or forces a kind the values do
            not convert to (naming the column, rows and values).
    """
    overrides = dict(overrides or {})
    unknown = [name for name in overrides if name not in df.columns]
    if unknown:
        hints = "; ".join(close_matches(name, df.columns) for name in unknown)
        msg = f"type override(s) for unknown column(s) {unknown}; {hints}"
        raise DataError(msg)
    schema: dict[str, ColumnSchema] = {}
    for position, name in enumerate(df.columns):
        series = df.iloc[:, position]
        kind = overrides.get(name) or infer_kind(series, max_categories=max_categories)
        schema[str(name)] = _column_schema(str(name), series, kind)
    return schema


def infer_kind(series: pd.Series, *, max_categories: int = 50) -> ColumnKind:
    """The kind of one column (see the module docstring for the rules)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return _text_kind(series.dropna(), max_categories, check_dates=False)
    if is_object(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in _OBJECT_KINDS:
            return _OBJECT_KINDS[inferred]
    return _text_kind(series.dropna(), max_categories, check_dates=True)


def _text_kind(present: pd.Series, max_categories: int, *, check_dates: bool) -> ColumnKind:
    if present.empty:
        return "string"
    if check_dates and _looks_like_dates(present):
        return "datetime"
    n_distinct = present.nunique()
    id_like = len(present) >= MIN_ROWS_FOR_ID_RULE and n_distinct > len(present) / 2
    return "category" if n_distinct <= max_categories and not id_like else "string"


def _looks_like_dates(present: pd.Series) -> bool:
    sample = pd.Series(present.unique()[:DATE_SAMPLE], dtype=object).astype(str)
    shaped = sample.str.contains(r"\d", regex=True) & sample.str.contains(r"[-/:]", regex=True)
    if shaped.mean() < DATE_PARSE_SHARE:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= DATE_PARSE_SHARE)


def _column_schema(name: str, series: pd.Series, kind: ColumnKind) -> ColumnSchema:
    loose = ColumnSchema(name=name, kind=kind, dtype=str(series.dtype), nullable=True)
    values, problem = coerce_column(series, loose, check_categories=False)
    if problem is not None:
        rows, bad = format_examples(problem.mask, series)
        msg = (
            f"column {name!r} cannot be read as {kind!r}: {int(problem.mask.sum())} value(s) "
            f"are not {problem.expected} (rows {rows}, values {bad}); fix the data or change "
            "the column's type in features.types"
        )
        raise DataError(msg)
    missing = pd.isna(values)
    domain: dict[str, object] = {"nullable": bool(missing.any())}
    if kind in ("number", "integer", "boolean") and not missing.all():
        domain["minimum"] = float(np.nanmin(values))
        domain["maximum"] = float(np.nanmax(values))
    if kind == "category":
        domain["categories"] = tuple(sorted_labels(values[~missing]))
    return loose.model_copy(update=domain)


def sorted_labels(texts: np.ndarray | Sequence[str]) -> list[str]:
    """Distinct labels, numerically when every label is a number, else alphabetically."""
    distinct = {str(t) for t in texts}
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def close_matches(name: object, choices: Sequence[object] | pd.Index) -> str:
    """A "did you mean" hint for ``name`` among ``choices`` (the available list otherwise)."""
    names = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(map(repr, close))}?"
    return f"available: {names[:30]}"


def text_labels(series: pd.Series) -> list[str]:
    """The distinct non-missing values of ``series`` as sorted labels (for classes)."""
    texts = to_text(series)
    return sorted_labels(texts[pd.notna(texts)])

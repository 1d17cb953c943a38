"""Validate a dataset: structural checks, schema checks and declared expectations.

Every check is vectorised per column (numpy/pandas operations, no Python loop over rows).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from shipyard.data._coerce import coerce_column, unknown_categories
from shipyard.data._expectations import AnyExpectation, check_expectation
from shipyard.data._report import CheckResult, ValidationReport, row_result, table_result
from shipyard.data._schema import close_matches
from shipyard.data._signature import ColumnSchema, Signature

__all__ = ["validate"]

logger = logging.getLogger(__name__)

_CONSTANT_SAMPLE = 1024
_PARALLEL_ROWS = 100_000  # below this, thread start-up costs more than it saves
_VARIES = object()


def validate(
    df: pd.DataFrame,
    *,
    schema: Mapping[str, ColumnSchema] | Signature | None = None,
    expectations: Sequence[AnyExpectation] = (),
    target: str | None = None,
    max_missing_fraction: float = 0.5,
    checks: Sequence[CheckResult] = (),
) -> ValidationReport:
    """Check a dataset and report every finding (this function never raises on bad data).

    Always checked: duplicate column names (error), missing target values (warning: those
    rows are dropped), columns missing more than ``max_missing_fraction`` of their values or
    all of them (warning) and constant columns (warning). With a ``schema`` (e.g. a model's
    Signature, to check new data): missing columns and values that do not convert (errors),
    values outside the training range, unknown categories and nulls in a never-null column
    (warnings). Then each expectation, at its own severity.

    Args:
        df: the data.
        schema: column schemas (or a Signature: its inputs, and its target when present).
        expectations: declared expectations (``validation.expectations``).
        target: the target column, if any.
        max_missing_fraction: the missing share above which a column is reported.
        checks: results of checks already made on how the data was read (such as
            :func:`read_numbers`'s), reported first.

    Returns:
        The report; call :meth:`ValidationReport.raise_for_errors` to stop on errors.
    """
    columns = _first_columns(df)
    report = ValidationReport(n_rows=len(df), n_columns=df.shape[1])
    report.results += checks
    report.results += _duplicate_names(df)
    if target is not None:
        report.results.append(_target_check(target, columns))
    for name, series in columns.items():
        report.results += _column_health(name, series, max_missing_fraction)
    for col in _schema_columns(schema):
        report.results += _schema_checks(col, columns)
    report.results += _check_all(expectations, columns, len(df))
    logger.info(
        "validated %d rows x %d columns: %d errors, %d warnings",
        report.n_rows,
        report.n_columns,
        len(report.errors),
        len(report.warnings),
    )
    return report


def _check_all(
    expectations: Sequence[AnyExpectation], columns: Mapping[str, pd.Series], n_rows: int
) -> list[CheckResult]:
    """Run the expectations, on a thread per core for large data.

    The checks are numpy/Arrow kernels that release the GIL (regex matching above all), so
    threads use every core; results keep the declared order.
    """
    if n_rows < _PARALLEL_ROWS or len(expectations) < 2:
        return [check_expectation(e, columns, n_rows) for e in expectations]
    workers = min(len(expectations), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shipyard-validate") as pool:
        return list(pool.map(lambda e: check_expectation(e, columns, n_rows), expectations))


def _first_columns(df: pd.DataFrame) -> dict[str, pd.Series]:
    columns: dict[str, pd.Series] = {}
    for position, name in enumerate(df.columns):
        columns.setdefault(str(name), df.iloc[:, position])
    return columns


def _duplicate_names(df: pd.DataFrame) -> list[CheckResult]:
    counts = Counter(str(c) for c in df.columns)
    dupes = {name: n for name, n in counts.items() if n > 1}
    if not dupes:
        return []
    shown = ", ".join(f"{name!r} x{n}" for name, n in dupes.items())
    message = f"duplicate column names: {shown}; rename them so every column is unique"
    return [table_result("duplicate_columns", None, "error", message, failed=True)]


def _target_check(target: str, columns: Mapping[str, pd.Series]) -> CheckResult:
    if target not in columns:
        message = (
            f"the target column {target!r} is not in the data; "
            f"{close_matches(target, list(columns))}"
        )
        return table_result("target", target, "error", message, failed=True)
    series = columns[target]
    what = "target has a value (rows without one are dropped)"
    return row_result("target_missing", target, "warning", what, series.isna().to_numpy(), series)


def _column_health(name: str, series: pd.Series, max_missing: float) -> list[CheckResult]:
    n_rows = len(series)
    if n_rows == 0:
        return []
    n_missing = int(series.isna().sum())
    share = n_missing / n_rows
    too_sparse = share > max_missing or n_missing == n_rows
    if n_missing == n_rows:  # whatever the limit: such a column can only mislead
        message = (
            f"every value is missing ({n_rows} rows); the column cannot help a model, "
            "fill it or exclude it in features.exclude"
        )
    else:
        message = (
            f"missing values: {n_missing} of {n_rows} rows ({share:.0%}), "
            f"{'above' if too_sparse else 'within'} the limit {max_missing:.0%}"
        ) + ("; fill or drop the column" if too_sparse else "")
    results = [
        CheckResult(
            "missing_fraction",
            name,
            "warning",
            int(too_sparse) * n_missing,
            n_rows,
            message=message,
        )
    ]
    if n_missing < n_rows:
        results.append(_constant_check(name, series))
    return results


def _constant_check(name: str, series: pd.Series) -> CheckResult:
    value = _constant_value(series)
    constant = value is not _VARIES
    message = (
        f"constant column: every present value is {value!r}; it cannot help a model, "
        "exclude it in features.exclude"
        if constant
        else "constant column: values vary"
    )
    return table_result("constant", name, "warning", message, failed=constant)


def _constant_value(series: pd.Series) -> object:
    """The one value a column holds (missing values aside), or ``_VARIES``."""
    # Most columns vary: a strided sample settles them without a full pass.
    step = max(1, len(series) // _CONSTANT_SAMPLE)
    sample = series.iloc[::step].dropna()
    if sample.empty or (sample != sample.iloc[0]).any():
        return _VARIES if not sample.empty else _full_constant_value(series)
    return _full_constant_value(series)


def _full_constant_value(series: pd.Series) -> object:
    present = series.dropna()
    if len(present) < 2 or (present != present.iloc[0]).any():
        return _VARIES
    return present.iloc[0]


def _schema_columns(schema: Mapping[str, ColumnSchema] | Signature | None) -> list[ColumnSchema]:
    if schema is None:
        return []
    if isinstance(schema, Signature):
        target = [schema.target] if schema.target is not None else []
        return [*schema.inputs, *target]
    return list(schema.values())


def _schema_checks(col: ColumnSchema, columns: Mapping[str, pd.Series]) -> list[CheckResult]:
    if col.name not in columns:
        message = (
            f"column {col.name!r} ({col.kind}) of the schema is missing from the data; "
            f"{close_matches(col.name, list(columns))}"
        )
        return [table_result("missing_column", col.name, "error", message, failed=True)]
    series = columns[col.name]
    values, problem = coerce_column(series, col, check_categories=False)
    if problem is not None:
        what = f"type {col.kind} (expected {problem.expected})"
        return [row_result("type", col.name, "error", what, problem.mask, series)]
    results = []
    if col.kind in ("number", "integer", "boolean") and col.minimum is not None:
        results.append(_training_range(col, values, series))
    if col.kind == "category" and col.categories is not None:
        unknown = unknown_categories(values, col.categories)
        what = f"categories seen in training ({len(col.categories)})"
        results.append(row_result("categories", col.name, "warning", what, unknown, series))
    if not col.nullable:
        what = "no missing values (none in training)"
        missing = np.asarray(pd.isna(values))
        results.append(row_result("nulls", col.name, "warning", what, missing, series))
    return results


def _training_range(col: ColumnSchema, values: np.ndarray, series: pd.Series) -> CheckResult:
    low = col.minimum if col.minimum is not None else -np.inf
    high = col.maximum if col.maximum is not None else np.inf
    outside = (values < low) | (values > high)
    what = f"training range [{low:g}, {high:g}]"
    return row_result("training_range", col.name, "warning", what, outside, series)

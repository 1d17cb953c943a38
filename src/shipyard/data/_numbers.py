"""Columns of numbers with a few values that are not numbers (``"unknown"``, ``"?"``, ``"100 mg"``).

A CSV reader turns such a column into text, and a text column would become a category of
every distinct number ("100.0", "101.0", ...), so that a served model later refuses the number
``99`` and accepts the text ``"100.0"``. :func:`read_numbers` finds these columns before
anything is inferred from them and applies the project's ``data.on_bad_numbers``: ``error``
reports them as validation errors (nothing is trained), ``coerce`` reads the values that are
not numbers as missing, with a warning; the Signature keeps the choice, so that prediction
reads them the same way.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from shipyard.data._coerce import is_object, to_numbers
from shipyard.data._report import MAX_EXAMPLES, CheckResult, Severity, plain, show
from shipyard.spec._models import ProjectSpec

__all__ = ["MOSTLY_NUMBERS", "read_numbers"]

logger = logging.getLogger(__name__)

MOSTLY_NUMBERS = 0.9
"""The share of a text column's present values that must be numbers for it to be numbers."""
_SAMPLE = 1000
_CLEARLY_TEXT = 0.5  # a sample with more text than this settles a large column without a parse
_NUMBER_KINDS = ("number", "integer")
_CLASSIFICATION = ("binary", "multiclass")


def read_numbers(df: pd.DataFrame, spec: ProjectSpec) -> tuple[pd.DataFrame, list[CheckResult]]:
    """Find the text columns that are numbers but for a few values, and read them as numbers.

    Checked: the model's columns (the target unless the task is declared a classification,
    and the inputs that ``features.include``/``exclude`` leave) held as text, of which at least
    :data:`MOSTLY_NUMBERS` of the present values are numbers, and every column declared
    ``number`` or ``integer`` under ``features.types`` whatever its share. Columns declared
    another kind are text on purpose and are left alone.

    Args:
        df: the data as loaded.
        spec: the project spec (``data.on_bad_numbers``, ``features``, ``task``, the source
            type: row numbers of a CSV source are also given as file lines).

    Returns:
        The data with each such column as ``float64`` (its values that are not numbers
        missing; ``df`` itself is not changed), and one result per such column: an error
        naming how many values are not numbers, up to five of them and their rows, and the
        ways out (``data.on_bad_numbers: error``), or a warning that they are read as missing
        (``coerce``).
    """
    found: list[CheckResult] = []
    out = df
    for position, name in _candidates(df, spec):
        series = df.iloc[:, position]
        declared = spec.features.types.get(name)
        checked = _bad_numbers(series, 0.0 if declared else MOSTLY_NUMBERS)
        if checked is None:
            continue
        values, bad = checked
        found.append(_result(spec, name, series, bad, int(np.count_nonzero(~np.isnan(values)))))
        if out is df:
            out = df.copy(deep=False)
        out.isetitem(position, values)
        logger.info("column %r: %d value(s) are not numbers", name, int(bad.sum()))
    return out, found


def _candidates(df: pd.DataFrame, spec: ProjectSpec) -> list[tuple[int, str]]:
    """Positions and names of the columns to check (the first of a repeated name only)."""
    target = spec.data.target
    include = set(spec.features.include)
    exclude = set(spec.features.exclude)
    seen: set[str] = set()
    out = []
    for position, raw in enumerate(df.columns):
        name = str(raw)
        if name in seen:
            continue
        seen.add(name)
        declared = spec.features.types.get(name)
        if declared is not None and declared not in _NUMBER_KINDS:
            continue
        if name == target:
            if spec.task in _CLASSIFICATION and declared is None:
                continue
        elif (include and name not in include) or name in exclude:
            continue
        if _is_text(df.iloc[:, position].dtype):
            out.append((position, name))
    return out


def _is_text(dtype: object) -> bool:
    return is_object(dtype) or isinstance(dtype, pd.StringDtype)


def _bad_numbers(series: pd.Series, share: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The column as numbers and its values that are not, when numbers are at least ``share``.

    ``None`` when every present value is a number, or when too few are.
    """
    if share > 0 and len(series) > 2 * _SAMPLE:
        # a seeded random sample: a stride could fall in step with a pattern in the rows
        positions = np.random.default_rng(0).choice(len(series), _SAMPLE, replace=False)
        values, bad = to_numbers(series.iloc[np.sort(positions)])
        n_present = int(np.count_nonzero(~np.isnan(values))) + int(bad.sum())
        if n_present and bad.sum() > _CLEARLY_TEXT * n_present:
            return None
    values, bad = to_numbers(series)
    n_bad = int(bad.sum())
    n_present = int(np.count_nonzero(~np.isnan(values))) + n_bad
    if n_bad == 0 or n_bad > (1.0 - share) * n_present:
        return None
    return values, bad


def _result(
    spec: ProjectSpec, name: str, series: pd.Series, bad: np.ndarray, n_numbers: int
) -> CheckResult:
    n_bad = int(bad.sum())
    positions = np.flatnonzero(bad)[:MAX_EXAMPLES]
    rows = tuple(int(p) + 1 for p in positions)
    values = tuple(plain(v) for v in series.iloc[positions].tolist())
    more = ", ..." if n_bad > len(rows) else ""
    where = f"rows {', '.join(map(str, rows))}{more}"
    if spec.data.source.type == "csv":  # the header is line 1
        where += f" (lines {', '.join(str(r + 1) for r in rows)}{more} of the CSV file)"
    shown = ", ".join(show(v) for v in values)
    declared = spec.features.types.get(name)
    lead = (
        f"declared {declared!r} in features.types ({spec.locate('features', 'types', name)}): "
        if declared
        else "mostly numbers: "
    )
    found = (
        f"{lead}{n_numbers} of {n_numbers + n_bad} values are numbers, {n_bad} are not "
        f"({where}; values {shown})"
    )
    severity: Severity
    if spec.data.on_bad_numbers == "coerce":
        severity = "warning"
        message = f"{found}; read as missing (data.on_bad_numbers: coerce)"
    else:
        severity = "error"
        text = (
            "" if declared else ", declare the column 'category' under features.types if it is text"
        )
        message = (
            f"{found}; fix them{text}, or set data.on_bad_numbers: coerce "
            f"({spec.locate('data', 'on_bad_numbers')}) to read them as missing"
        )
    return CheckResult("numbers", name, severity, n_bad, n_numbers + n_bad, rows, values, message)

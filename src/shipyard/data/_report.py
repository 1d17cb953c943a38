"""Validation results: a :class:`CheckResult` per check, in a :class:`ValidationReport`."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from shipyard.errors import DataValidationError

__all__ = ["CheckResult", "Severity", "ValidationReport", "row_result", "table_result"]

logger = logging.getLogger(__name__)

Severity = Literal["error", "warning"]
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one column (or on the whole table).

    Attributes:
        check: the check's name (``not_null``, ``range``, ``missing_column``, ...).
        column: the column checked, ``None`` for table-level checks.
        severity: ``"error"`` (stops a run) or ``"warning"``.
        n_failed: rows (or items) that fail.
        n_checked: rows (or items) checked.
        examples: up to five failing row numbers, 1-based (the first data row is 1, so a
            CSV file's line is the row number plus one).
        example_values: the values at those rows, as plain Python values.
        message: one human-readable sentence: what was checked, what was found, where.
    """

    check: str
    column: str | None
    severity: Severity
    n_failed: int
    n_checked: int
    examples: tuple[int, ...] = ()
    example_values: tuple[Any, ...] = ()
    message: str = ""

    @property
    def passed(self) -> bool:
        """Whether nothing failed."""
        return self.n_failed == 0

    def to_sentence(self) -> str:
        """The result as a sentence that names its column: ``column 'x': message``."""
        return f"column {self.column!r}: {self.message}" if self.column else self.message

    def to_line(self) -> str:
        """The result as one line of text: ``SEVERITY  column  message``."""
        return f"{self.severity.upper()}  {self.column or '<table>'}  {self.message}"


@dataclass
class ValidationReport:
    """Every check run on a dataset.

    Attributes:
        results: all results, passed ones included, in the order the checks ran.
        n_rows: the dataset's row count.
        n_columns: the dataset's column count.
    """

    results: list[CheckResult] = field(default_factory=list)
    n_rows: int = 0
    n_columns: int = 0

    @property
    def errors(self) -> list[CheckResult]:
        """Failed checks of severity ``error``."""
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        """Failed checks of severity ``warning``."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    @property
    def ok(self) -> bool:
        """Whether no error-severity check failed (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (``ok``, counts and every result)."""
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "results": [
                {
                    **asdict(r),
                    "examples": list(r.examples),
                    "example_values": list(r.example_values),
                }
                for r in self.results
            ],
        }

    def to_text(self) -> str:
        """Plain text, one line per failed check (errors first), or a one-line all-clear."""
        failed = self.errors + self.warnings
        if not failed:
            return (
                f"OK  all {len(self.results)} checks passed on {self.n_rows} rows x "
                f"{self.n_columns} columns"
            )
        return "\n".join(r.to_line() for r in failed)

    def raise_for_errors(self) -> None:
        """Raise when an error-severity check failed.

        Raises:
            DataValidationError: listing the failed error checks; ``report`` is this report.
        """
        errors = self.errors
        if not errors:
            return
        lines = "\n  ".join(r.to_line() for r in errors)
        msg = (
            f"data validation failed: {len(errors)} error check(s) on {self.n_rows} rows:\n  "
            f"{lines}\nfix the data, or relax the expectation in the project file "
            "(validation.expectations; severity 'warning' reports without stopping)"
        )
        raise DataValidationError(msg, report=self)


def row_result(
    check: str,
    column: str,
    severity: Severity,
    what: str,
    failed: np.ndarray,
    series: pd.Series,
) -> CheckResult:
    """A row-level result: ``failed`` marks failing rows of ``series`` (positional)."""
    n_rows = len(series)
    n_failed = int(np.count_nonzero(failed))
    if n_failed == 0:
        message = f"{what}: all {n_rows} rows pass"
        return CheckResult(check, column, severity, 0, n_rows, message=message)
    positions = np.flatnonzero(failed)[:MAX_EXAMPLES]
    rows = tuple(int(p) + 1 for p in positions)
    values = tuple(plain(v) for v in series.iloc[positions].tolist())
    shown_rows = ", ".join(map(str, rows)) + (", ..." if n_failed > len(rows) else "")
    shown_values = ", ".join(show(v) for v in values)
    message = f"{what}: {n_failed} of {n_rows} rows fail (rows {shown_rows}; values {shown_values})"
    return CheckResult(check, column, severity, n_failed, n_rows, rows, values, message)


def table_result(
    check: str,
    column: str | None,
    severity: Severity,
    message: str,
    *,
    failed: bool,
) -> CheckResult:
    """A table-level (or column-level) result that either passes or fails as a whole."""
    return CheckResult(check, column, severity, int(failed), 1, message=message)


def plain(value: Any) -> Any:
    """A JSON-friendly Python value: numpy scalars unwrapped, times as ISO text, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
        return value.isoformat()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def show(value: Any) -> str:
    """A value as written in a message: text quoted, numbers and missing values bare."""
    if value is None:
        return "missing"
    return repr(value) if isinstance(value, str) else str(value)

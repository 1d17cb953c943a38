"""Data drift: every column of a current sample tested against the reference.

:func:`detect_drift` picks each column's test the way Evidently's ``DataDriftPreset`` does, so
that verdicts compare, unless ``shipyard.yaml`` names one (``monitoring.drift``):

- with at most 1,000 reference values: KS for a numeric column with more than 5 distinct
  values; chi-square for a categorical column, or a numeric one with 3-5 distinct values; the
  z-test for proportions for at most 2 distinct values; drift at p < 0.05;
- above 1,000: the Wasserstein distance normed by the reference's standard deviation for a
  numeric column with more than 5 distinct values; the Jensen-Shannon distance otherwise; drift
  at a distance of 0.1 or more.

Distinct values are counted over both samples. The dataset drifts when at least
``drift_share`` (half, by default) of the tested columns do.

Example:
    >>> report = detect_drift(reference, current)  # doctest: +SKIP
    >>> report.drifted, report.share_drifted  # doctest: +SKIP
    (True, 0.6)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import pandas as pd

from shipyard.errors import DataError, SpecError
from shipyard.monitor._columns import ColumnKind, ColumnSamples
from shipyard.monitor._methods import DriftMethod, DriftMethods, default_drift_methods
from shipyard.spec import ColumnDriftSpec, DriftSpec

__all__ = ["ColumnDrift", "ColumnTable", "DriftReport", "Table", "column_kinds", "detect_drift"]

AUTO = "auto"
_MAX_THREADS = 4
_THREADS_FROM_ROWS = 200_000  # below this, a column takes less than starting a thread
_SMALL_REFERENCE = 1_000  # at most this many reference values: p-value tests
_FEW_VALUES = 5  # at most this many distinct values: a categorical test


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift test.

    Attributes:
        column: the column.
        kind: ``numeric`` or ``categorical``.
        method: the test's name (``None`` when the column was not tested).
        statistic: ``p_value`` or ``distance``.
        value: the test's statistic (``None`` when not tested).
        threshold: the threshold it was compared with.
        drifted: the verdict (``None`` when not tested).
        n_reference: reference values tested (missing values and infinities left out).
        n_current: current values tested (likewise).
        missing_reference: the reference's share of missing values (and infinities).
        missing_current: the current sample's share of missing values (and infinities).
        n_unique: distinct values in both samples together.
        note: why the column was not tested (empty otherwise).
    """

    column: str
    kind: ColumnKind
    method: str | None
    statistic: str | None
    value: float | None
    threshold: float | None
    drifted: bool | None
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    n_unique: int
    note: str = ""


@dataclass(frozen=True)
class DriftReport:
    """Every column's verdict and the dataset's.

    Attributes:
        columns: one result per column, in the order the columns were given.
        drift_share: the share of drifted columns at which the dataset drifts.
        n_reference: rows in the reference.
        n_current: rows in the current sample.
    """

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    n_reference: int
    n_current: int

    @property
    def tested(self) -> tuple[ColumnDrift, ...]:
        """The columns that were tested."""
        return tuple(c for c in self.columns if c.drifted is not None)

    @property
    def n_drifted(self) -> int:
        """How many columns drifted."""
        return sum(1 for c in self.columns if c.drifted)

    @property
    def share_drifted(self) -> float:
        """The share of tested columns that drifted (0 when none was tested)."""
        tested = len(self.tested)
        return self.n_drifted / tested if tested else 0.0

    @property
    def drifted(self) -> bool:
        """Whether the dataset drifted: at least ``drift_share`` of its columns did."""
        return bool(self.tested) and self.share_drifted >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        """The result for one column.

        Raises:
            KeyError: no column of that name was in the report.
        """
        for result in self.columns:
            if result.column == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: the dataset's verdict, then every column's."""
        return {
            "drifted": self.drifted,
            "share_drifted": self.share_drifted,
            "n_drifted": self.n_drifted,
            "n_tested": len(self.tested),
            "drift_share": self.drift_share,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "columns": [asdict(c) for c in self.columns],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per column."""
        return pd.DataFrame([asdict(c) for c in self.columns])


class ColumnTable(Protocol):
    """A table read one column at a time (a Parquet file, say), so that testing it needs one
    column in memory at a time, not the table. A DataFrame works wherever this does."""

    @property
    def columns(self) -> Sequence[str]:
        """The column names."""
        ...

    def __len__(self) -> int:
        """The number of rows."""
        ...

    def __getitem__(self, name: str) -> pd.Series:
        """One column's values."""
        ...

    def column_kinds(self) -> dict[str, ColumnKind]:
        """Each testable column's kind (as :func:`column_kinds` reads a frame's dtypes)."""
        ...


Table = pd.DataFrame | ColumnTable
"""What :func:`detect_drift` tests: a DataFrame, or a table read column by column."""


def column_kinds(frame: Table) -> dict[str, ColumnKind]:
    """Each column's kind from its dtype: numbers (not booleans) are numeric, datetimes are
    left out, everything else is categorical."""
    if not isinstance(frame, pd.DataFrame):
        return frame.column_kinds()
    kinds: dict[str, ColumnKind] = {}
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        kinds[str(name)] = "numeric" if numeric else "categorical"
    return kinds


def detect_drift(
    reference: Table,
    current: Table,
    *,
    kinds: Mapping[str, ColumnKind] | None = None,
    options: DriftSpec | None = None,
    methods: DriftMethods | None = None,
) -> DriftReport:
    """Test every column of ``current`` against ``reference``.

    Args:
        reference: the baseline sample (training inputs, holdout predictions): a DataFrame
            or a :class:`ColumnTable` (then only the columns being tested are in memory).
        current: the sample to test (a window of the prediction log), likewise.
        kinds: which columns to test and how; by default every column of ``reference``, of
            the kind its dtype suggests (:func:`column_kinds`). A ``kind`` in ``options``'
            per-column settings overrides both.
        options: the tests and thresholds (``monitoring.drift`` in ``shipyard.yaml``).
        methods: the registered drift tests (:func:`default_drift_methods`).

    Returns:
        The report: each column's test, statistic and verdict, and the dataset's verdict.

    Raises:
        DataError: a column to test is missing from either sample.
        SpecError: a configured test is unknown or does not apply to its column's kind.
    """
    options = options or DriftSpec()
    methods = methods or default_drift_methods()
    kinds = dict(kinds if kinds is not None else column_kinds(reference))
    unknown = sorted(set(options.columns) - set(kinds) - set(reference.columns))
    if unknown:
        msg = (
            f"monitoring.drift.columns names {unknown}, which the reference does not have "
            f"(its columns: {sorted(map(str, reference.columns))})"
        )
        raise SpecError(msg)
    _check_methods(options, methods)
    _check_columns(kinds, reference, "reference")
    _check_columns(kinds, current, "current")

    def one(name: str, kind: ColumnKind) -> ColumnDrift:
        settings = options.columns.get(name, ColumnDriftSpec())
        samples = _prepare(name, settings.kind or kind, reference[name], current[name])
        return _test(samples, settings, options, methods)

    wanted = [
        (name, kind)
        for name, kind in kinds.items()
        if not options.columns.get(name, ColumnDriftSpec()).ignore
    ]
    # numpy sorts and searches without the GIL: columns run side by side on every core
    workers = min(len(wanted), os.cpu_count() or 1, _MAX_THREADS)
    if workers <= 1 or len(reference) + len(current) < _THREADS_FROM_ROWS:
        results = [one(name, kind) for name, kind in wanted]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="shipyard-drift") as pool:
            results = list(pool.map(lambda item: one(*item), wanted))
    return DriftReport(tuple(results), options.drift_share, len(reference), len(current))


def _check_methods(options: DriftSpec, methods: DriftMethods) -> None:
    """Every test named in the settings exists, whether or not its column has values."""
    if options.method != AUTO:
        methods.get(options.method, where="monitoring.drift")
    for name, settings in options.columns.items():
        if settings.method is not None and settings.method != AUTO:
            methods.get(settings.method, where=f"monitoring.drift.columns.{name}")


def _check_columns(kinds: Mapping[str, ColumnKind], frame: Table, which: str) -> None:
    missing = [name for name in kinds if name not in frame.columns]
    if missing:
        msg = (
            f"the {which} sample has no column {missing[0]!r}"
            + (f" (nor {missing[1:]})" if len(missing) > 1 else "")
            + f"; expected the columns {sorted(kinds)}"
        )
        raise DataError(msg)


def _prepare(
    name: str, kind: ColumnKind, reference: pd.Series, current: pd.Series
) -> ColumnSamples:
    if kind == "numeric":
        try:
            return ColumnSamples.numeric(name, reference, current)
        except (TypeError, ValueError) as exc:
            msg = (
                f"column {name!r} was to be tested as numeric but holds values that are not "
                f"numbers ({exc}); declare it 'kind: categorical' under "
                f"monitoring.drift.columns.{name}"
            )
            raise DataError(msg) from exc
    return ColumnSamples.categorical(name, reference, current)


def _test(
    samples: ColumnSamples,
    settings: ColumnDriftSpec,
    options: DriftSpec,
    methods: DriftMethods,
) -> ColumnDrift:
    n_ref_all = samples.n_reference + samples.missing_reference
    n_cur_all = samples.n_current + samples.missing_current
    untested = ColumnDrift(
        column=samples.name,
        kind=samples.kind,
        method=None,
        statistic=None,
        value=None,
        threshold=None,
        drifted=None,
        n_reference=samples.n_reference,
        n_current=samples.n_current,
        missing_reference=samples.missing_reference / n_ref_all if n_ref_all else 0.0,
        missing_current=samples.missing_current / n_cur_all if n_cur_all else 0.0,
        n_unique=samples.n_unique,
    )
    if not samples.n_reference or not samples.n_current:
        which = "reference" if not samples.n_reference else "current sample"
        return replace(untested, note=f"not tested: the {which} has no values in this column")
    name = settings.method or options.method
    where = f"monitoring.drift.columns.{samples.name}" if settings.method else "monitoring.drift"
    method = _auto(samples, methods) if name == AUTO else methods.get(name, where=where)
    if samples.kind not in method.kinds:
        msg = (
            f"{where}: drift method {method.name!r} tests "
            f"{' or '.join(sorted(method.kinds))} columns, and column {samples.name!r} is "
            f"{samples.kind}; choose one of "
            f"{sorted(m.name for m in methods if samples.kind in m.kinds)}"
        )
        raise SpecError(msg)
    threshold = _threshold(settings, options, method)
    value = method.compute(samples)
    return replace(
        untested,
        method=method.name,
        statistic=method.statistic,
        value=value,
        threshold=threshold,
        drifted=method.drifted(value, threshold),
    )


def _auto(samples: ColumnSamples, methods: DriftMethods) -> DriftMethod:
    """Evidently's ``DataDriftPreset`` choice of test for a column."""
    few = samples.n_unique <= _FEW_VALUES
    if samples.n_reference <= _SMALL_REFERENCE:
        if samples.kind == "numeric" and not few:
            return methods.get("ks")
        return methods.get("chisquare" if samples.n_unique > 2 else "z")
    if samples.kind == "numeric" and not few:
        return methods.get("wasserstein")
    return methods.get("jensenshannon")


def _threshold(settings: ColumnDriftSpec, options: DriftSpec, method: DriftMethod) -> float:
    for value in (settings.threshold, options.threshold):
        if value is not None:
            return value
    return method.default_threshold

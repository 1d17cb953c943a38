"""Two samples of one column, prepared once for every drift test that reads them.

A drift test needs sorted values (KS, Wasserstein), distinct-value counts (chi-square, z-test,
Jensen-Shannon and PSI on few values) or histogram counts (Jensen-Shannon and PSI on many).
:class:`ColumnSamples` computes each at most once per column, whichever tests run:

- a numeric column's two samples are sorted once each, and merged without another sort: each
  current value's place in the union is its rank among the current values plus the number of
  reference values at or below it (one binary search per value over the sorted reference). The
  merge gives both empirical CDFs (a cumulative sum), the distinct values and their counts,
  with every value exactly as given (``-0.0`` counts as ``0.0``, as pandas counts it);
- categories are counted with one hash pass (:func:`pandas.factorize`) over both samples.

Missing values and infinities are left out, as Evidently's data-drift tests do (for categorical
columns too); their counts are kept for the report.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["ColumnKind", "ColumnSamples", "ValueCounts"]

_BLOCK = 1 << 18  # values per block of the CDF area: a few MB of temporaries, not the union

ColumnKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class ValueCounts:
    """How often each distinct value occurs in the reference and in the current sample.

    Attributes:
        keys: the distinct values of both samples (sorted for numeric columns).
        reference: each key's count in the reference.
        current: each key's count in the current sample.
    """

    keys: np.ndarray
    reference: np.ndarray
    current: np.ndarray


class ColumnSamples:
    """A column's reference and current values, with the statistics drift tests share.

    Build it with :meth:`numeric` or :meth:`categorical`; every statistic is computed on first
    use and kept.

    Attributes:
        name: the column.
        kind: ``numeric`` or ``categorical``.
        n_reference: the reference's values (missing values and infinities left out).
        n_current: the current sample's values (likewise).
        missing_reference: the reference's missing values and infinities.
        missing_current: the current sample's missing values and infinities.
        integer: whether a numeric column holds integers (histogram bins are then at least
            one unit wide, as numpy chooses them).
    """

    def __init__(
        self,
        name: str,
        kind: ColumnKind,
        *,
        n_reference: int,
        n_current: int,
        missing_reference: int,
        missing_current: int,
        integer: bool = False,
        merged: tuple[np.ndarray, np.ndarray] | None = None,
        counts: ValueCounts | None = None,
        reference_std: float | None = None,
    ) -> None:
        self.name = name
        self.kind: ColumnKind = kind
        self.n_reference = n_reference
        self.n_current = n_current
        self.missing_reference = missing_reference
        self.missing_current = missing_current
        self.integer = integer
        self._merged = merged
        self._counts = counts
        self._reference_std = reference_std

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def numeric(cls, name: str, reference: Any, current: Any) -> ColumnSamples:
        """Prepare a numeric column (anything numpy converts to float64).

        Args:
            name: the column.
            reference: the reference values (array or Series; missing values allowed).
            current: the current values.
        """
        integer = _is_integer(reference) and _is_integer(current)
        ref, n_bad_ref = _finite(reference)
        cur, n_bad_cur = _finite(current)
        values, in_current = _merge(ref, cur)
        return cls(
            name,
            "numeric",
            n_reference=ref.size,
            n_current=cur.size,
            missing_reference=n_bad_ref,
            missing_current=n_bad_cur,
            integer=integer,
            merged=(values, in_current),
            reference_std=_std(ref),
        )

    @classmethod
    def categorical(cls, name: str, reference: Any, current: Any) -> ColumnSamples:
        """Prepare a categorical column: labels compared by value, missing values left out.

        Args:
            name: the column.
            reference: the reference labels (array or Series).
            current: the current labels.
        """
        ref, cur = pd.Series(reference, copy=False), pd.Series(current, copy=False)
        counts = _count(ref, cur)
        n_ref, n_cur = int(counts.reference.sum()), int(counts.current.sum())
        return cls(
            name,
            "categorical",
            n_reference=n_ref,
            n_current=n_cur,
            missing_reference=len(ref) - n_ref,
            missing_current=len(cur) - n_cur,
            counts=counts,
        )

    # -- numeric views ---------------------------------------------------------------------

    @property
    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """Both samples' values in one sorted array, and which of them came from current."""
        if self._merged is None:
            msg = f"column {self.name!r} is categorical: it has no sorted values"
            raise TypeError(msg)
        return self._merged

    @functools.cached_property
    def reference(self) -> np.ndarray:
        """The reference's values, sorted (numeric columns)."""
        values, in_current = self.merged
        return values[~in_current]

    @functools.cached_property
    def current(self) -> np.ndarray:
        """The current sample's values, sorted (numeric columns)."""
        values, in_current = self.merged
        return values[in_current]

    @property
    def cdf_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the merged values change, and the two empirical CDFs' difference there.

        Returns:
            ``(steps, gaps)``: ``steps[i]`` is the width of the i-th interval between two
            consecutive merged values and ``gaps[i]`` is ``F_ref - F_cur`` over it.
        """
        values, in_current = self.merged
        if not self.n_reference or not self.n_current:
            empty = np.zeros(0, dtype=np.float64)
            return empty, empty
        jumps = np.where(in_current[:-1], -1.0 / self.n_current, 1.0 / self.n_reference)
        return np.diff(values), np.cumsum(jumps, out=jumps)

    def cdf_area(self) -> float:
        """The area between the two empirical CDFs, ``∫ |F_ref - F_cur| dx`` (the
        Wasserstein-1 distance), summed in blocks so that its temporaries stay small."""
        values, in_current = self.merged
        if not self.n_reference or not self.n_current:
            return float("nan")
        up, down = 1.0 / self.n_reference, -1.0 / self.n_current
        area, level, n = 0.0, 0.0, values.size - 1
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            gaps = np.where(in_current[start:stop], down, up)
            np.cumsum(gaps, out=gaps)
            gaps += level
            level = float(gaps[-1])
            np.abs(gaps, out=gaps)
            area += float(np.dot(gaps, values[start + 1 : stop + 1] - values[start:stop]))
        return area

    @functools.cached_property
    def reference_std(self) -> float:
        """The reference's standard deviation (``ddof=0``), over its values as given."""
        if self._reference_std is None:
            return _std(self.reference)
        return self._reference_std

    # -- counts ----------------------------------------------------------------------------

    @functools.cached_property
    def counts(self) -> ValueCounts:
        """Each distinct value's count in both samples."""
        if self._counts is not None:
            return self._counts
        values, in_current = self.merged
        if values.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return ValueCounts(values, empty, empty)
        starts = np.flatnonzero(np.diff(values)) + 1
        starts = np.concatenate([[0], starts])
        sizes = np.diff(np.append(starts, values.size))
        current = np.add.reduceat(in_current.astype(np.int64), starts)
        return ValueCounts(values[starts], sizes - current, current)

    @functools.cached_property
    def n_unique(self) -> int:
        """Distinct values in both samples together."""
        if self._merged is None or "counts" in self.__dict__:
            return int(self.counts.keys.size)
        values, _ = self._merged
        return int(np.count_nonzero(values[1:] != values[:-1])) + int(values.size > 0)

    @functools.cached_property
    def n_unique_reference(self) -> int:
        """Distinct values in the reference."""
        return int(np.count_nonzero(self.counts.reference))

    def histogram(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Counts of each sample in ``edges``' bins, as :func:`numpy.histogram` counts them.

        Bins are half-open, ``[a, b)``, except the last, which holds its right edge.
        """
        return _histogram(self.reference, edges), _histogram(self.current, edges)


def _is_integer(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and pd.api.types.is_integer_dtype(dtype)


def _finite(values: Any) -> tuple[np.ndarray, int]:
    """The finite values as float64, and how many were missing or infinite."""
    if isinstance(values, pd.Series):
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        array = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(array)
    n_bad = int(array.size - np.count_nonzero(keep))
    return (array[keep] if n_bad else array), n_bad


def _std(values: np.ndarray) -> float:
    """The standard deviation (``ddof=0``); NaN for no values, inf past float range."""
    if values.size == 0:
        return float("nan")
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.std(values))


def _merge(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each sample once and merge them without a third sort.

    Returns:
        ``(values, in_current)``: the union, sorted, and a mask of the values that came from
        ``current``.
    """
    ref = reference + 0.0  # a copy, with -0.0 turned into 0.0
    ref.sort()
    cur = current + 0.0
    cur.sort()
    # a current value's place: its rank among current values + reference values at or below it
    places = np.searchsorted(ref, cur, side="right")
    places += np.arange(cur.size, dtype=places.dtype)
    in_current = np.zeros(ref.size + cur.size, dtype=bool)
    in_current[places] = True
    values = np.empty(ref.size + cur.size, dtype=np.float64)
    values[places] = cur
    values[~in_current] = ref
    return values, in_current


def _histogram(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    cuts = np.searchsorted(sorted_values, edges, side="left")
    cuts[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    return np.diff(cuts)


def _without_missing(series: pd.Series) -> pd.Series:
    """The values without missing ones and infinities (numbers stored as objects included)."""
    series = series.dropna()
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series[np.isfinite(series.to_numpy(dtype=np.float64))]
    if series.dtype == object:
        infinite = series.map(lambda v: isinstance(v, float) and np.isinf(v))
        return series[~infinite.to_numpy(dtype=bool)]
    return series


def _count(reference: pd.Series, current: pd.Series) -> ValueCounts:
    """Count the labels of each sample (missing values and infinities left out), then line
    the two short lists of counts up; labels are never copied into one long column."""
    if _mixed(reference, current):
        reference, current = _as_numbers(reference), _as_numbers(current)
    if _mixed(reference, current):  # numbers and text: compare as text
        reference = _without_missing(reference).astype(str)
        current = _without_missing(current).astype(str)
    ref, cur = _sample_counts(reference), _sample_counts(current)
    keys = ref.index.append(cur.index).unique()
    ref_counts = ref.reindex(keys, fill_value=0).to_numpy(dtype=np.int64)
    cur_counts = cur.reindex(keys, fill_value=0).to_numpy(dtype=np.int64)
    return ValueCounts(np.asarray(keys, dtype=object), ref_counts, cur_counts)


def _sample_counts(series: pd.Series) -> pd.Series:
    """Each present label's count, by label (as objects, so that ``1 == 1.0`` matches)."""
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts.to_numpy() > 0]  # a categorical dtype lists unused categories
    counts.index = counts.index.astype(object)
    finite = [not (isinstance(k, float) and math.isinf(k)) for k in counts.index]
    return counts[finite] if not all(finite) else counts


def _as_numbers(series: pd.Series) -> pd.Series:
    """Numbers stored as objects (``[1, 2, None]``) as numbers, so that ``1 == 1.0``; text
    stays text."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series
    if pd.api.types.infer_dtype(series, skipna=True) not in (
        "integer",
        "floating",
        "mixed-integer-float",
        "decimal",
    ):
        return series
    return pd.to_numeric(series, errors="coerce")


def _mixed(reference: pd.Series, current: pd.Series) -> bool:
    """Whether one sample holds numbers and the other text (``1`` and ``"1"`` are equal)."""
    numeric = pd.api.types.is_numeric_dtype
    return bool(numeric(reference.dtype) != numeric(current.dtype))

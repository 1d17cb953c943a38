"""Leakage guards: signs that a model's holdout score will not hold in production.

=====================  =====================================================================
finding                what is measured
=====================  =====================================================================
``target_proxy``       one column alone predicts the target: the leave-one-out accuracy of
                       the majority class within each of its values (numbers in up to 100
                       quantile bins; a missing value is a value), or that within-value mean's
                       R^2 for a numeric target, on up to 20,000 training rows
``identifier``         a column of short text codes (or integers named like an id) with a
                       distinct value on nearly every row
``overlap``            holdout rows whose feature values all equal a training row's
``time_order``         training rows later than the earliest holdout row
``fold_order``         a CV fold that trains on rows later than those it validates on
=====================  =====================================================================

Leave-one-out keeps the proxy score honest for many-valued columns: a row alone in its value
is predicted by the overall majority, so an identifier does not look like a perfect predictor
(it has its own finding). Everything is counts over factorised codes, so 50,000 rows by 50
columns take well under a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from shipyard.data._report import CheckResult

__all__ = ["LeakageFinding", "LeakageKind", "leakage_warnings"]

LeakageKind = Literal["target_proxy", "identifier", "overlap", "time_order", "fold_order"]

PROXY_SCORE = 0.99
"""A column whose single-column score reaches this is reported as a target proxy."""
ID_SHARE = 0.95
"""A text or integer column with this share of distinct values is reported as an identifier."""
_ID_NAME = re.compile(
    r"(?:^|[_\W])(?i:id|key|uuid|guid|code|number|no|nr)$|[a-z0-9](?:Id|ID|Key|No|Nr)$"
)
_SAMPLE = 20_000
_BINS = 100
_MIN_ROWS = 50
_GAIN = 0.9  # a proxy must also remove 90% of the majority class's errors (rare classes)


@dataclass(frozen=True)
class LeakageFinding:
    """One sign of leakage.

    Attributes:
        kind: what was found (see the module's table).
        column: the column concerned, ``None`` for whole-row findings.
        score: the finding's measure: the proxy's accuracy or R^2, the identifier's share of
            distinct values, the share of holdout rows seen in training, the share of
            training rows after the holdout starts, or of a fold's training rows after its
            validation starts.
        n_rows: the rows concerned (holdout rows overlapping, training rows out of order ...).
        n_checked: the rows examined.
        message: one sentence: what, how much, and what to do.
    """

    kind: LeakageKind
    column: str | None
    score: float
    n_rows: int
    n_checked: int
    message: str

    def to_check(self) -> CheckResult:
        """The finding as a validation warning (``check`` is ``leakage_<kind>``)."""
        return CheckResult(
            check=f"leakage_{self.kind}",
            column=self.column,
            severity="warning",
            n_failed=self.n_rows,
            n_checked=self.n_checked,
            message=self.message,
        )


def leakage_warnings(
    x: pd.DataFrame,
    y: pd.Series,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    task: str,
    time_column: str | None = None,
    times: pd.Series | None = None,
    folds: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
    seed: int = 0,
) -> list[LeakageFinding]:
    """Look for target proxies, identifiers, train/holdout overlap and time-order breaches.

    Args:
        x: the feature columns (not the target), one row per example.
        y: the target, row-aligned with ``x``.
        train_idx: positions (``iloc``) of the training rows.
        test_idx: positions of the holdout rows.
        task: ``binary``, ``multiclass`` or ``regression``.
        time_column: the time column's name, for messages (and read from ``x`` when
            ``times`` is not given).
        times: each row's time, row-aligned with ``x`` (dates or numbers); with it, training
            rows after the holdout's start are reported.
        folds: the CV folds as ``(fit, validate)`` positions *within the training rows*
            (what a splitter yields for ``x.iloc[train_idx]``); checked against ``times``.
        seed: the seed of the row sample the proxy check reads.

    Returns:
        The findings, proxies and identifiers first; an empty list when nothing was found.

    Example:
        >>> x = pd.DataFrame({"refund": [0, 1] * 50, "age": range(100)})
        >>> y = pd.Series(["stay", "churn"] * 50)
        >>> [f.kind for f in leakage_warnings(x, y, np.arange(80), np.arange(80, 100),
        ...                                   task="binary")]
        ['target_proxy']
    """
    train, test = np.asarray(train_idx, dtype=np.int64), np.asarray(test_idx, dtype=np.int64)
    findings = _column_findings(x, y, train, task, time_column, seed)
    findings += _overlap(x, train, test)
    if times is None and time_column is not None and time_column in x.columns:
        times = x[time_column]
    if times is not None:
        clock = _as_numbers(times)
        name = time_column or "the time column"
        findings += _time_order(clock, train, test, name)
        if folds is not None:
            findings += _fold_order(clock[train], list(folds), name)
    return findings


# --- one column at a time -----------------------------------------------------------------


def _column_findings(
    x: pd.DataFrame, y: pd.Series, train: np.ndarray, task: str, time_column: str | None, seed: int
) -> list[LeakageFinding]:
    rows = train
    if len(rows) > _SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(rows, _SAMPLE, replace=False))
    target = y.iloc[rows]
    known = target.notna().to_numpy()
    rows, target = rows[known], target[known]
    if len(rows) < _MIN_ROWS:
        return []
    scorer = _TargetScorer(target, task)
    if scorer.trivial:
        return []
    out: list[LeakageFinding] = []
    for name in x.columns:
        col = x[name].iloc[rows]
        if name != time_column and (found := _identifier(str(name), col)) is not None:
            out.append(found)
            continue
        out += scorer.check(str(name), col)
    return out


def _identifier(name: str, col: pd.Series) -> LeakageFinding | None:
    values = col.dropna()
    if len(values) < _MIN_ROWS or not _id_like(name, values):
        return None
    distinct = int(values.nunique())
    share = distinct / len(values)
    if share < ID_SHARE:
        return None
    message = (
        f"looks like an identifier: {distinct:,} distinct values in {len(values):,} training "
        f"rows ({share:.1%}); a model can memorise it but it says nothing about new rows. "
        f"Leave it out (features.exclude: [{name}]), or mark it as personal data (features.pii)"
    )
    return LeakageFinding("identifier", name, share, distinct, len(values), message)


def _id_like(name: str, values: pd.Series) -> bool:
    """Codes, not quantities or prose: integers named like an id, or short text tokens (an
    amount in whole dollars is near-unique too, and so is free text)."""
    if values.dtype.kind in "iu":
        return bool(_ID_NAME.search(name))
    if values.dtype.kind not in "OSU" and not isinstance(
        values.dtype, pd.CategoricalDtype | pd.StringDtype
    ):
        return False
    text = values.astype(str)
    return bool(text.str.len().median() <= 64 and text.str.contains(" ").mean() < 0.1)


class _TargetScorer:
    """How well one column alone predicts the target, leave-one-out, from group counts."""

    def __init__(self, target: pd.Series, task: str) -> None:
        self.regression = task == "regression"
        self.n = len(target)
        if self.regression:
            self.y = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
            self.y = np.nan_to_num(self.y, nan=float(np.nanmean(self.y)))
            self.total = float(((self.y - self.y.mean()) ** 2).sum())
            self.trivial = self.total == 0.0
            return
        codes, classes = pd.factorize(target.astype(str))
        self.codes, self.k = codes.astype(np.int64), len(classes)
        counts = np.bincount(self.codes, minlength=self.k)
        self.base_class = int(counts.argmax())
        self.base = float(counts.max() / self.n)
        self.trivial = self.k < 2

    def check(self, name: str, col: pd.Series) -> list[LeakageFinding]:
        groups = _groups(col)
        if groups.max() + 1 >= self.n:  # every row its own value: nothing to learn from
            return []
        score = self._r2(groups) if self.regression else self._accuracy(groups)
        if score < PROXY_SCORE or (not self.regression and self._gain(score) < _GAIN):
            return []
        return [LeakageFinding("target_proxy", name, score, self.n, self.n, self._say(score))]

    def _gain(self, score: float) -> float:
        """How much of the majority class's errors the column removes (1: all of them)."""
        return (score - self.base) / (1.0 - self.base) if self.base < 1.0 else 0.0

    def _say(self, score: float) -> str:
        if self.regression:
            what = f"explains {score:.1%} of the target's variance (R^2 {score:.4f}) on its own"
        else:
            what = (
                f"alone predicts the target for {score:.1%} of training rows (the majority "
                f"class alone: {self.base:.1%})"
            )
        return (
            f"{what}: a value recorded after, or from, the outcome? Check how it is collected "
            "and leave it out (features.exclude) if it is not known at prediction time"
        )

    def _accuracy(self, groups: np.ndarray) -> float:
        n_groups = int(groups.max()) + 1
        counts = np.bincount(groups * self.k + self.codes, minlength=n_groups * self.k)
        counts = counts.reshape(n_groups, self.k)
        own = counts[groups, self.codes] - 1  # leave the row itself out
        ordered = np.sort(counts, axis=1)  # k >= 2: a single class is trivial
        top, second = ordered[:, -1], ordered[:, -2]
        is_top = counts[groups, self.codes] == top[groups]
        rival = np.where(is_top, second[groups], top[groups])
        alone = counts.sum(axis=1)[groups] == 1  # nothing else in its value: the majority
        right = np.where(alone, self.codes == self.base_class, own > rival)
        return float(right.mean())

    def _r2(self, groups: np.ndarray) -> float:
        n_groups = int(groups.max()) + 1
        size = np.bincount(groups, minlength=n_groups)[groups]
        total = np.bincount(groups, weights=self.y, minlength=n_groups)[groups]
        others = np.where(size > 1, (total - self.y) / np.maximum(size - 1, 1), self.y.mean())
        return 1.0 - float(((self.y - others) ** 2).sum()) / self.total


def _groups(col: pd.Series) -> np.ndarray:
    """Value codes: categories as they are, numbers in up to 100 quantile bins; missing is a
    value of its own."""
    numbers = _as_numbers(col) if col.dtype.kind in "biufcmM" else None
    if numbers is None or pd.Series(numbers).nunique() <= _BINS:
        codes, _ = pd.factorize(col.astype(object), use_na_sentinel=False)
        return codes.astype(np.int64)
    present = ~np.isnan(numbers)
    order = np.argsort(numbers[present], kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    out = np.full(len(numbers), _BINS, dtype=np.int64)  # missing: a bin of its own
    out[present] = ranks * _BINS // max(len(order), 1)
    return out


def _as_numbers(values: pd.Series | Sequence[Any]) -> np.ndarray:
    """Numbers to compare or bin: datetimes as epoch seconds, text parsed as dates."""
    s = pd.Series(values)
    if s.dtype.kind == "m":
        return s.dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    if s.dtype.kind == "M" or isinstance(s.dtype, pd.DatetimeTZDtype):
        return _seconds(pd.to_datetime(s, utc=True))
    if s.dtype.kind in "biufc":
        return s.to_numpy(dtype=float, na_value=np.nan)
    return _seconds(pd.to_datetime(s, errors="coerce", utc=True, format="mixed"))


def _seconds(stamps: pd.Series) -> np.ndarray:
    """Epoch seconds of UTC timestamps, NaN for NaT."""
    epoch = pd.Timestamp(0, tz="UTC")
    seconds = (stamps - epoch).dt.total_seconds()
    return seconds.to_numpy(dtype=float, na_value=np.nan)


# --- whole rows ---------------------------------------------------------------------------


def _overlap(x: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> list[LeakageFinding]:
    if not len(train) or not len(test) or x.shape[1] == 0:
        return []
    hashes = pd.util.hash_pandas_object(x, index=False).to_numpy()
    seen = hashes[train]
    distinct = len(np.unique(seen)) / len(seen)
    shared = np.isin(hashes[test], seen)
    n_shared = int(shared.sum())
    if not n_shared or distinct < 0.5:  # few distinct rows anyway: repeats are expected
        return []
    share = n_shared / len(test)
    message = (
        f"{n_shared:,} of {len(test):,} holdout rows ({share:.1%}) have the same feature values "
        "as a training row, so the holdout score flatters the model. Drop duplicate rows "
        "before splitting, or keep related rows together (split.strategy: group)"
    )
    return [LeakageFinding("overlap", None, share, n_shared, len(test), message)]


def _time_order(
    clock: np.ndarray, train: np.ndarray, test: np.ndarray, name: str
) -> list[LeakageFinding]:
    t_train, t_test = clock[train], clock[test]
    t_test = t_test[~np.isnan(t_test)]
    if not len(t_test) or not len(train):
        return []
    later = int((t_train > t_test.min()).sum())
    if not later:
        return []
    share = later / len(train)
    message = (
        f"{later:,} training rows ({share:.1%}) are later in {name!r} than the earliest holdout "
        "row: the model learns from the future of the rows it is scored on. Split by time "
        f"(split.strategy: time, split.time_column: {name})"
    )
    return [LeakageFinding("time_order", name, share, later, len(train), message)]


def _fold_order(
    clock: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], name: str
) -> list[LeakageFinding]:
    late = []
    for i, (fit, valid) in enumerate(folds, 1):
        t_valid = clock[np.asarray(valid)]
        t_valid = t_valid[~np.isnan(t_valid)]
        if len(t_valid):
            late.append((i, int((clock[np.asarray(fit)] > t_valid.min()).sum()), len(fit)))
    bad = [(i, n, size) for i, n, size in late if n]
    if not bad:
        return []
    n_rows = sum(n for _, n, _ in bad)
    n_fit = sum(size for _, _, size in bad)
    which = ", ".join(str(i) for i, _, _ in bad)
    message = (
        f"{len(bad)} of {len(folds)} CV folds (fold {which}) train on rows later in {name!r} "
        f"than rows they validate on ({n_rows:,} rows in all): the CV score looks into the "
        "future. Use time-ordered folds (split.strategy: time)"
    )
    return [LeakageFinding("fold_order", name, n_rows / max(n_fit, 1), n_rows, n_fit, message)]

"""The data profile of a model card: each input's type, missing share, distribution, and its
association with the target, tested with the test that fits the two columns' kinds.

=================  ====================  ===========================================
feature            target                test (effect size)
=================  ====================  ===========================================
numeric            classes               Kruskal-Wallis H across classes (epsilon^2)
numeric            numeric               Spearman rank correlation (rho)
categorical        classes               chi-square of the contingency table (Cramer's V)
categorical        numeric               Kruskal-Wallis H across categories (epsilon^2)
=================  ====================  ===========================================

Datetimes are tested as numbers (their timestamps); missing categories are a category of
their own, missing numbers are left out of the test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["Association", "FeatureProfile", "profile_features"]

_MAX_ROWS = 20_000
"""Rows tested (a seeded sample beyond this): p-values are tiny long before, and time grows."""
_BINS = 16
_TOP_CATEGORIES = 8
_MISSING = "(missing)"


@dataclass(frozen=True)
class Association:
    """One feature's association test with the target.

    Attributes:
        test: the test's name (``kruskal``, ``spearman`` or ``chi2``).
        statistic: the test statistic.
        p_value: its p-value.
        effect: an effect size in [0, 1] (absolute for Spearman's rho, signed there).
        effect_name: the effect size's name.
        n: rows used.
    """

    test: str
    statistic: float
    p_value: float
    effect: float
    effect_name: str
    n: int


@dataclass(frozen=True)
class FeatureProfile:
    """One input column of the training data.

    Attributes:
        name: the column.
        kind: ``numeric``, ``categorical``, ``boolean`` or ``datetime``.
        missing: the share of missing values.
        n_unique: distinct non-missing values.
        summary: a short description (range and median, or the top category).
        bins: ``(label, count)`` pairs of the distribution (a histogram or top categories).
        association: the test against the target, or ``None`` (``note`` says why).
        note: why there is no test, if there is none.
    """

    name: str
    kind: str
    missing: float
    n_unique: int
    summary: str
    bins: tuple[tuple[str, int], ...]
    association: Association | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the histogram)."""
        a = self.association
        return {
            "name": self.name,
            "kind": self.kind,
            "missing": self.missing,
            "n_unique": self.n_unique,
            "test": None if a is None else a.test,
            "statistic": None if a is None else a.statistic,
            "p_value": None if a is None else a.p_value,
            "effect": None if a is None else a.effect,
            "note": self.note,
        }


def profile_features(
    x: pd.DataFrame, y: pd.Series | np.ndarray, *, task: str, seed: int
) -> list[FeatureProfile]:
    """Profile each column of ``x`` and test its association with ``y``.

    Args:
        x: the training inputs.
        y: the training target (labels or values), aligned with ``x`` by position.
        task: ``binary``, ``multiclass`` or ``regression``.
        seed: the sample's seed when ``x`` has more than 20,000 rows.

    Returns:
        One profile per column, in ``x``'s order.
    """
    target = pd.Series(np.asarray(y)).reset_index(drop=True)
    frame = x.reset_index(drop=True)
    if len(frame) > _MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), _MAX_ROWS, replace=False))
        frame, target = frame.iloc[keep].reset_index(drop=True), target.iloc[keep]
        target = target.reset_index(drop=True)
    numeric_target = task == "regression"
    target = pd.to_numeric(target, errors="coerce") if numeric_target else target.astype(str)
    return [_profile(str(name), frame[name], target, numeric_target) for name in frame.columns]


def _kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    return "categorical"


def _profile(
    name: str, series: pd.Series, target: pd.Series, numeric_target: bool
) -> FeatureProfile:
    kind = _kind(series)
    missing = float(series.isna().mean()) if len(series) else 0.0
    present = series.dropna()
    n_unique = int(present.nunique())
    if kind in ("numeric", "datetime"):
        values = _as_numbers(series)
        summary, bins = _numeric_summary(values, kind)
        association, note = _numeric_test(values, target, numeric_target)
    else:
        labels = series.astype(object).where(series.notna(), _MISSING).astype(str)
        summary, bins = _categorical_summary(labels)
        association, note = _categorical_test(labels, target, numeric_target)
    return FeatureProfile(name, kind, missing, n_unique, summary, bins, association, note)


def _as_numbers(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = series.astype("datetime64[ns]").astype("int64").astype(float)
        return stamps.where(series.notna()) / 1e9
    return pd.to_numeric(series, errors="coerce").astype(float)


def _numeric_summary(values: pd.Series, kind: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    finite = values[np.isfinite(values)]
    if finite.empty:
        return "no values", ()
    if kind == "datetime":
        low, high = (pd.Timestamp(v, unit="s").date() for v in (finite.min(), finite.max()))
        summary = f"{low} to {high}"
    else:
        summary = f"{finite.min():.4g} to {finite.max():.4g}, median {finite.median():.4g}"
    counts, edges = np.histogram(finite, bins=_BINS if np.ptp(finite) > 0 else 1)
    return summary, tuple((f"{edges[i]:.3g}", int(c)) for i, c in enumerate(counts))


def _categorical_summary(labels: pd.Series) -> tuple[str, tuple[tuple[str, int], ...]]:
    counts = labels.value_counts()
    if counts.empty:
        return "no values", ()
    top = counts.iloc[:_TOP_CATEGORIES]
    bins = [(str(k), int(v)) for k, v in top.items()]
    if len(counts) > _TOP_CATEGORIES:
        bins.append(
            (f"{len(counts) - _TOP_CATEGORIES} others", int(counts.iloc[_TOP_CATEGORIES:].sum()))
        )
    share = top.iloc[0] / counts.sum()
    return f"top {top.index[0]!s} ({share:.0%})", tuple(bins)


def _numeric_test(
    values: pd.Series, target: pd.Series, numeric_target: bool
) -> tuple[Association | None, str]:
    ok = np.isfinite(values.to_numpy()) & target.notna().to_numpy()
    v, t = values.to_numpy()[ok], target.to_numpy()[ok]
    if v.size < 3 or np.ptp(v) == 0:
        return None, "not tested: constant or fewer than 3 values"
    if numeric_target:
        if np.ptp(t.astype(float)) == 0:
            return None, "not tested: the target is constant"
        rho, p = _quiet(stats.spearmanr, v, t)
        return Association("spearman", float(rho), float(p), float(rho), "rho", int(v.size)), ""
    return _kruskal(v, t.astype(str))


def _categorical_test(
    labels: pd.Series, target: pd.Series, numeric_target: bool
) -> tuple[Association | None, str]:
    if labels.nunique() < 2:
        return None, "not tested: a single category"
    if numeric_target:
        ok = target.notna().to_numpy()
        return _kruskal(target.to_numpy(dtype=float)[ok], labels.to_numpy()[ok])
    table = pd.crosstab(labels, target)
    if min(table.shape) < 2:
        return None, "not tested: the target has a single class"
    chi2, p, _dof, _ = stats.chi2_contingency(table.to_numpy())
    n = int(table.to_numpy().sum())
    cramer = float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    return Association("chi2", float(chi2), float(p), cramer, "Cramer's V", n), ""


def _kruskal(values: np.ndarray, groups: np.ndarray) -> tuple[Association | None, str]:
    """Kruskal-Wallis H of ``values`` across ``groups`` (epsilon-squared as the effect)."""
    codes, uniques = pd.factorize(groups)
    samples = [values[codes == i] for i in range(len(uniques))]
    samples = [s for s in samples if s.size]
    if len(samples) < 2:
        return None, "not tested: fewer than 2 groups"
    if np.ptp(values) == 0:
        return None, "not tested: constant"
    h, p = _quiet(stats.kruskal, *samples)
    n = int(values.size)
    effect = float(min(1.0, h / (n - 1))) if n > 1 else float("nan")
    return Association("kruskal", float(h), float(p), effect, "epsilon^2", n), ""


def _quiet(fn: Any, *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)

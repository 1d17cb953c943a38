"""Confidence intervals of holdout metrics (bootstrap) and of cross-validated means (folds).

The bootstrap resamples the holdout predictions, never refits; the resampled scores come from
:func:`shipyard.evaluate._paired.bootstrap_scores`, which scores a block of resamples at once
(the gate's paired bootstrap uses the same scorers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from shipyard.evaluate._paired import PROBA_METRICS, bootstrap_scores

__all__ = ["Interval", "bootstrap_intervals", "fold_intervals"]

_CELLS_PER_BLOCK = 2_000_000
"""Resampled row indices drawn at once (16 MB of int64)."""


@dataclass(frozen=True)
class Interval:
    """A metric's estimate and its confidence interval.

    Attributes:
        estimate: the value on all the rows (or the mean over folds).
        low, high: the interval's bounds (``nan`` when it could not be computed).
        method: how the interval was computed (``bootstrap`` or ``t over folds``).
        n: the number of resamples (finite scores among them), or of folds.
    """

    estimate: float
    low: float
    high: float
    method: str
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "method": self.method,
            "n": self.n,
        }


def bootstrap_intervals(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[str] | None,
    *,
    metrics: Sequence[str],
    n_resamples: int,
    confidence: float,
    seed: int,
    deadline: float | None = None,
    min_resamples: int = 200,
) -> dict[str, Interval]:
    """Percentile bootstrap intervals of ``metrics`` on the holdout predictions.

    Every metric is scored on the same resamples. Label metrics use ``y_pred`` (so a tuned
    threshold is respected), probability metrics ``proba``; without ``proba`` those are left
    out, as are metrics the vectorised scorers do not know.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true, y_pred: the holdout's labels (or values) and the model's predictions.
        proba: probabilities in ``classes`` order (classifiers), or ``None``.
        classes: the class labels; for binary tasks the last is the positive class.
        metrics: the metrics to bound.
        n_resamples: how many resamples (at least 1).
        confidence: the interval's coverage, e.g. ``0.95``.
        seed: the resampling's random seed.
        deadline: a :func:`time.monotonic` time after which no further block of resamples
            is drawn once ``min_resamples`` are in (each interval's ``n`` says how many were
            scored); ``None``: all ``n_resamples``.
        min_resamples: the resamples drawn whatever the deadline.

    Returns:
        ``{metric: Interval}``; the estimate is the metric on all the rows.

    Example:
        >>> y = np.array([1.0, 2.0, 3.0, 4.0])
        >>> ci = bootstrap_intervals("regression", y, y + 0.5, None, None, metrics=["mae"],
        ...                          n_resamples=200, confidence=0.9, seed=0)
        >>> ci["mae"].estimate, ci["mae"].low, ci["mae"].high
        (0.5, 0.5, 0.5)
    """
    n = len(y_true)
    scorers = {}
    for name in dict.fromkeys(metrics):
        output = proba if name in PROBA_METRICS and task != "regression" else y_pred
        if output is None:
            continue  # a probability metric of a model without probabilities
        try:
            scorers[name] = bootstrap_scores(
                y_true, np.asarray(output), task=task, metric=name, classes=classes
            )
        except ValueError:  # a metric the vectorised scorers do not know: no interval
            continue
    draws: dict[str, list[np.ndarray]] = {name: [] for name in scorers}
    drawn = 0
    for rows in _resamples(n, n_resamples, seed):
        if deadline is not None and drawn >= min_resamples and time.monotonic() >= deadline:
            break  # enough for an interval, and no time for more
        for name, scorer in scorers.items():
            draws[name].append(scorer(rows))
        drawn += len(rows)
    whole = np.arange(n)[None, :]
    tail = (1.0 - confidence) / 2 * 100
    out = {}
    for name, scorer in scorers.items():
        values = np.concatenate(draws[name]) if draws[name] else np.empty(0)
        finite = values[np.isfinite(values)]
        low, high = (
            (float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail)))
            if finite.size
            else (float("nan"), float("nan"))
        )
        out[name] = Interval(float(scorer(whole)[0]), low, high, "bootstrap", int(finite.size))
    return out


def _resamples(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of resampled row indices, drawn one at a time (a stopped bootstrap draws no
    more), the same rows for the same seed whatever the stop."""
    rng = np.random.default_rng(seed)
    per_block = max(1, _CELLS_PER_BLOCK // max(n, 1))
    for start in range(0, n_resamples, per_block):
        yield rng.integers(0, n, size=(min(per_block, n_resamples - start), n))


def fold_intervals(folds: Sequence[Mapping[str, float]], confidence: float) -> dict[str, Interval]:
    """Student-t intervals of the mean of each metric over cross-validation folds.

    Folds share training rows, so the interval is optimistic (too narrow); it still tells a
    stable candidate from a lucky one.
    """
    names = sorted({name for fold in folds for name in fold})
    out = {}
    for name in names:
        values = np.array([fold.get(name, np.nan) for fold in folds], dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        mean = float(values.mean())
        if values.size < 2 or np.ptp(values) == 0:
            out[name] = Interval(mean, mean, mean, "t over folds", int(values.size))
            continue
        half = float(stats.t.ppf((1 + confidence) / 2, values.size - 1) * stats.sem(values))
        out[name] = Interval(mean, mean - half, mean + half, "t over folds", int(values.size))
    return out

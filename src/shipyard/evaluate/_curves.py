"""Calibration and learning curves of a model card.

Calibration reads the holdout probabilities (free); a learning curve refits the model on
growing shares of the training rows (the card's most costly section, so it comes with a cost
estimate the card weighs against its deadline).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.evaluate._metrics import greater_is_better
from shipyard.evaluate._scorer import metric_scorer

__all__ = [
    "LEARNING_CURVE_FOLDS",
    "LEARNING_CURVE_SIZES",
    "Calibration",
    "LearningCurve",
    "calibration",
    "learning_curve",
    "learning_curve_cost",
]

LEARNING_CURVE_SIZES = (0.2, 0.5, 1.0)
"""Shares of each training fold the learning curve fits on."""
LEARNING_CURVE_FOLDS = 3
_BINS = 10
_SAFETY = 1.5
"""Headroom on a fit's estimated time (scoring, a busy machine, superlinear fits)."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram's points.

    Attributes:
        target: what is calibrated: the positive class's probability (binary) or the top
            class's (multiclass: is the most probable class right as often as its
            probability says?).
        predicted: mean predicted probability per bin (non-empty bins of 10 equal-width bins).
        observed: the observed frequency in each bin.
        counts: rows per bin.
        brier: the Brier score of ``target``.
        ece: the expected calibration error (count-weighted gap between the two).
    """

    target: str
    predicted: tuple[float, ...]
    observed: tuple[float, ...]
    counts: tuple[int, ...]
    brier: float
    ece: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "target": self.target,
            "predicted": list(self.predicted),
            "observed": list(self.observed),
            "counts": list(self.counts),
            "brier": self.brier,
            "ece": self.ece,
        }


def calibration(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
) -> Calibration:
    """The reliability of a classifier's probabilities on the holdout.

    Raises:
        ValueError: the outcome is constant (a single class), so there is nothing to calibrate.
    """
    from sklearn.calibration import calibration_curve

    truth = np.asarray([str(v) for v in y_true], dtype=object)
    p = np.asarray(proba, float)
    if task == "binary":
        hit, score = (truth == str(classes[-1])).astype(int), p[:, -1]
        target = f"probability of {classes[-1]!r}"
    else:
        predicted = np.asarray(classes, dtype=object)[p.argmax(axis=1)]
        hit, score = (truth == predicted).astype(int), p.max(axis=1)
        target = "probability of the predicted class"
    if hit.min() == hit.max():
        msg = f"every holdout row has the same outcome for the {target}"
        raise ValueError(msg)
    observed, mean_predicted = calibration_curve(hit, score, n_bins=_BINS, strategy="uniform")
    counts = np.bincount(np.clip((score * _BINS).astype(int), 0, _BINS - 1), minlength=_BINS)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / counts.sum() * np.abs(observed - mean_predicted)))
    return Calibration(
        target,
        tuple(map(float, mean_predicted)),
        tuple(map(float, observed)),
        tuple(map(int, counts)),
        float(np.mean((score - hit) ** 2)),
        ece,
    )


@dataclass(frozen=True)
class LearningCurve:
    """Scores against training rows.

    Attributes:
        metric: the metric scored (the run's primary metric).
        sizes: training rows at each point.
        train: mean score on the rows fitted, per size.
        validation: mean score on the held-out fold, per size.
        validation_std: its standard deviation over folds.
        folds: the number of folds.
        note: why the curve stops short of all the training rows, if it does.
    """

    metric: str
    sizes: tuple[int, ...]
    train: tuple[float, ...]
    validation: tuple[float, ...]
    validation_std: tuple[float, ...]
    folds: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "metric": self.metric,
            "sizes": list(self.sizes),
            "train": list(self.train),
            "validation": list(self.validation),
            "validation_std": list(self.validation_std),
            "folds": self.folds,
            "note": self.note,
        }


def learning_curve_cost(
    fit_seconds: float, shares: Sequence[float] = LEARNING_CURVE_SIZES
) -> float:
    """Seconds a learning curve over ``shares`` of the training folds is expected to take,
    given one fit on all training rows (fits grow about linearly with rows; the factor
    covers scoring and a busy machine)."""
    fold_share = (LEARNING_CURVE_FOLDS - 1) / LEARNING_CURVE_FOLDS
    return _SAFETY * fit_seconds * fold_share * sum(shares) * LEARNING_CURVE_FOLDS


def learning_curve(
    model: Any,
    x: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    metric: str,
    classes: Sequence[str] | None,
    seed: int,
    fit_seconds: float | None = None,
    deadline: float | None = None,
) -> LearningCurve:
    """Fit clones of ``model`` on 20%, 50% and 100% of each of 3 training folds (stratified
    for classifiers), scoring the primary metric on the rows fitted and on the held-out fold.

    Sizes are done smallest first; before each, its cost is estimated from the last fits
    (or ``fit_seconds``, one fit on all of ``x``), and the curve stops where the next size
    would end past ``deadline`` (a :func:`time.monotonic` time), saying so in ``note``. A fit
    that fails (a class missing from a small share) scores ``nan``, as sklearn's
    ``learning_curve`` with ``error_score=nan`` does.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold if task != "regression" else KFold
    target = y.reset_index(drop=True) if task == "regression" else y.astype(str)
    target = target.reset_index(drop=True)
    frame = x.reset_index(drop=True)
    cv = splitter(n_splits=LEARNING_CURVE_FOLDS, shuffle=True, random_state=seed)
    folds = list(cv.split(frame, target))
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(train) for train, _ in folds]
    scorer = metric_scorer(task, metric, classes)
    n_full = max(len(frame), 1)
    per_fit: Any = None if fit_seconds is None else (lambda n: fit_seconds * n / n_full)
    points: list[tuple[int, float, float, float]] = []
    note = ""
    for share in LEARNING_CURVE_SIZES:
        counts = [max(2, round(share * len(order))) for order in orders]
        if deadline is not None and per_fit is not None:
            need = _SAFETY * sum(per_fit(n) for n in counts)
            left = deadline - time.monotonic()
            if need > left:
                note = (
                    f"stopped before {share:.0%} of the rows: it needs about {need:.1f} s, "
                    f"{max(left, 0.0):.1f} s left"
                )
                break
        started = time.perf_counter()
        scores = [
            _fit_score(model, frame, target, order[:n], test, scorer)
            for order, (_, test), n in zip(orders, folds, counts, strict=True)
        ]
        per_fit = _fit_time_model(
            (time.perf_counter() - started) / len(counts),
            float(np.mean(counts)),
            fit_seconds,
            n_full,
        )
        train, held = np.array(scores).T
        points.append((int(np.mean(counts)), _mean(train), _mean(held), _std(held)))
    sign = 1.0 if greater_is_better(metric) else -1.0
    return LearningCurve(
        metric,
        tuple(p[0] for p in points),
        tuple(sign * p[1] for p in points),
        tuple(sign * p[2] for p in points),
        tuple(p[3] for p in points),
        LEARNING_CURVE_FOLDS,
        note,
    )


def _fit_time_model(seconds: float, rows: float, fit_seconds: float | None, n_full: int) -> Any:
    """Seconds a fit (and its scoring) on ``n`` rows takes, as ``a + b * n``: a line through
    the fits just timed and, when known, the full fit (small fits are mostly fixed costs)."""
    if fit_seconds is None or n_full <= rows:
        return lambda n: seconds * n / max(rows, 1.0)
    slope = max(0.0, (fit_seconds - seconds) / (n_full - rows))
    intercept = max(0.0, seconds - slope * rows)
    return lambda n: intercept + slope * n


def _fit_score(
    model: Any,
    x: pd.DataFrame,
    y: pd.Series,
    rows: np.ndarray,
    test: np.ndarray,
    scorer: Any,
) -> tuple[float, float]:
    from sklearn.base import clone

    try:
        fitted = clone(model).fit(x.iloc[rows], y.iloc[rows])
    except ValueError as exc:  # e.g. a class missing from a small share: sklearn's error_score
        logger.info("learning curve fit on %d rows failed: %s", len(rows), exc)
        return float("nan"), float("nan")
    return scorer(fitted, x.iloc[rows], y.iloc[rows]), scorer(fitted, x.iloc[test], y.iloc[test])


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _std(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size else float("nan")

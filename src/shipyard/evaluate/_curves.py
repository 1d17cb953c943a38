"""Calibration and learning curves of a model card.

Calibration reads the holdout probabilities (free); a learning curve refits the model on
growing shares of the training rows (the card's most costly section, so it comes with a cost
estimate the card weighs against its deadline).
"""

from __future__ import annotations

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
    """

    metric: str
    sizes: tuple[int, ...]
    train: tuple[float, ...]
    validation: tuple[float, ...]
    validation_std: tuple[float, ...]
    folds: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "metric": self.metric,
            "sizes": list(self.sizes),
            "train": list(self.train),
            "validation": list(self.validation),
            "validation_std": list(self.validation_std),
            "folds": self.folds,
        }


def learning_curve_cost(fit_seconds: float) -> float:
    """Seconds a learning curve is expected to take given one fit on all training rows
    (fits grow about linearly with rows; scoring adds a little)."""
    share = (LEARNING_CURVE_FOLDS - 1) / LEARNING_CURVE_FOLDS
    return 1.2 * fit_seconds * share * sum(LEARNING_CURVE_SIZES) * LEARNING_CURVE_FOLDS


def learning_curve(
    model: Any,
    x: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    metric: str,
    classes: Sequence[str] | None,
    seed: int,
) -> LearningCurve:
    """Fit clones of ``model`` on 20%, 50% and 100% of each of 3 training folds.

    Scores are the primary metric as sklearn orders it (negated when lower is better, turned
    back here); a fold whose model fails to fit (a class missing from a small share) is left
    out of the mean.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.model_selection import learning_curve as sk_learning_curve

    splitter = StratifiedKFold if task != "regression" else KFold
    cv = splitter(n_splits=LEARNING_CURVE_FOLDS, shuffle=True, random_state=seed)
    target = y if task == "regression" else y.astype(str)
    sizes, train, test = sk_learning_curve(
        clone(model),
        x,
        target,
        train_sizes=np.asarray(LEARNING_CURVE_SIZES),
        cv=cv,
        scoring=metric_scorer(task, metric, classes),
        error_score=np.nan,
        shuffle=True,
        random_state=seed,
    )
    sign = 1.0 if greater_is_better(metric) else -1.0
    return LearningCurve(
        metric,
        tuple(int(s) for s in sizes),
        tuple(float(v) for v in sign * np.nanmean(train, axis=1)),
        tuple(float(v) for v in sign * np.nanmean(test, axis=1)),
        tuple(float(v) for v in np.nanstd(test, axis=1)),
        LEARNING_CURVE_FOLDS,
    )

"""Performance in production: realised once labels arrive, estimated before they do.

A classifier's probabilities say how often it expects to be right. Confidence-based performance
estimation (CBPE, as NannyML does it) turns them into expected confusion matrices, and so into
expected accuracy, precision, recall, F1 and ROC AUC, for traffic that has no labels yet. The
estimate is only as good as the probabilities are calibrated, so :func:`fit_calibration` first
checks calibration on the holdout (the package's reference predictions, which have targets):
when isotonic calibration, fitted on four folds and judged on the fifth, lowers the expected
calibration error, the estimator applies it, fitted on the whole holdout.

Estimation assumes that what changed is the inputs, not the relation between inputs and labels
(covariate shift, not concept drift): under concept drift the estimate stays put while the
realised metric falls. That is why both are shown side by side once labels come.

Regression models get realised metrics only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sklearn.isotonic import IsotonicRegression

# scikit-learn (and the evaluate package, which imports it) load where they are used: a drift
# check of a process that never estimates performance does not pay for them.

__all__ = [
    "Calibration",
    "MetricComparison",
    "PerformanceReport",
    "compare_performance",
    "estimate_performance",
    "fit_calibration",
]

ESTIMATED: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "multiclass": ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"),
    "regression": (),
}
"""The metrics CBPE estimates for each task."""

_BINS = 10
_FOLDS = 5


@dataclass(frozen=True)
class Calibration:
    """How a classifier's probabilities are corrected before estimating from them.

    Attributes:
        classes: the classes, in the probability columns' order.
        ece: the holdout's expected calibration error as the model gives them (class-wise,
            10 equal-width bins).
        ece_calibrated: the same after isotonic calibration, judged out of fold (``None``
            when it could not be fitted: a class absent from the holdout, too few rows).
        calibrators: one isotonic map per class, applied when it lowered the error.
    """

    classes: tuple[str, ...]
    ece: float
    ece_calibrated: float | None
    calibrators: tuple[IsotonicRegression, ...] | None

    @property
    def applied(self) -> bool:
        """Whether the estimator corrects the probabilities."""
        return self.calibrators is not None

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """The probabilities corrected (rows renormalised to sum to one), or as given."""
        if self.calibrators is None:
            return proba
        return _calibrate(self.calibrators, proba)


def fit_calibration(
    y_true: Sequence[Any] | np.ndarray, proba: np.ndarray, classes: Sequence[str], *, seed: int = 0
) -> Calibration:
    """Check a classifier's calibration on labelled data and fit a correction if it helps.

    Args:
        y_true: the true labels (as text).
        proba: ``(n, n_classes)`` probabilities in ``classes`` order.
        classes: the class labels.
        seed: the seed of the folds.
    """
    y = _one_hot(y_true, classes)
    proba = np.asarray(proba, dtype=np.float64)
    raw = _ece(y, proba)
    if len(y) < 2 * _FOLDS or (y.sum(axis=0) == 0).any():
        return Calibration(tuple(classes), raw, None, None)
    from sklearn.model_selection import KFold

    folds = KFold(_FOLDS, shuffle=True, random_state=seed)
    calibrated = np.empty_like(proba)
    for train, test in folds.split(proba):
        calibrated[test] = _calibrate(_fit(y[train], proba[train]), proba[test])
    out_of_fold = _ece(y, calibrated)
    calibrators = _fit(y, proba) if out_of_fold < raw else None
    return Calibration(tuple(classes), raw, out_of_fold, calibrators)


def estimate_performance(
    task: str, proba: np.ndarray, y_pred: Sequence[Any] | np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Expected metrics from (calibrated) probabilities, with no labels (CBPE).

    Args:
        task: ``binary`` or ``multiclass``.
        proba: ``(n, n_classes)`` probabilities in ``classes`` order.
        y_pred: the predicted labels (as text).
        classes: the class labels; for binary tasks the last is the positive class.

    Returns:
        The metrics of :data:`ESTIMATED` for the task (empty for no rows or regression).
    """
    proba = np.asarray(proba, dtype=np.float64)
    if task not in ("binary", "multiclass") or len(proba) == 0:
        return {}
    predicted = np.asarray([str(v) for v in y_pred], dtype=object)
    labels = list(classes)
    hits = predicted[:, None] == np.asarray(labels, dtype=object)[None, :]
    # Expected confusion counts per class: a row predicted c is right with probability p_c.
    tp = (proba * hits).sum(axis=0)
    fp = ((1.0 - proba) * hits).sum(axis=0)
    fn = (proba * ~hits).sum(axis=0)
    out = {"accuracy": float(tp.sum() / len(proba))}
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    if task == "binary":
        out.update(precision=precision[-1], recall=recall[-1], f1=f1[-1])
        out["roc_auc"] = _expected_auc(proba[:, -1])
    else:
        out.update(
            precision_macro=float(np.mean(precision)),
            recall_macro=float(np.mean(recall)),
            f1_macro=float(np.mean(f1)),
            roc_auc=float(np.mean([_expected_auc(proba[:, j]) for j in range(len(labels))])),
        )
    return {k: float(v) for k, v in out.items()}


@dataclass(frozen=True)
class MetricComparison:
    """One metric at registration and in the window.

    Attributes:
        metric: the metric's name.
        reference: its value on the holdout at registration.
        estimated: its CBPE estimate over the window (``None``: not estimable).
        realised: its value over the window's labelled predictions (``None``: no labels).
        n_labelled: the labelled predictions it was computed on.
    """

    metric: str
    reference: float | None
    estimated: float | None
    realised: float | None
    n_labelled: int

    @property
    def drop(self) -> float | None:
        """How much worse the window is than the holdout (realised, else estimated), in the
        metric's units; positive is worse."""
        from shipyard.evaluate import greater_is_better

        current = self.realised if self.realised is not None else self.estimated
        if current is None or self.reference is None:
            return None
        return (self.reference - current) * (1 if greater_is_better(self.metric) else -1)


@dataclass(frozen=True)
class PerformanceReport:
    """The window's performance against the holdout's.

    Attributes:
        metrics: one comparison per metric.
        n_predictions: predictions in the window.
        n_labelled: those with a label.
        calibration: the calibration check behind the estimates (classifiers).
    """

    metrics: tuple[MetricComparison, ...]
    n_predictions: int
    n_labelled: int
    calibration: Calibration | None

    def metric(self, name: str) -> MetricComparison:
        """One metric's comparison.

        Raises:
            KeyError: the report has no such metric.
        """
        for comparison in self.metrics:
            if comparison.metric == name:
                return comparison
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        calibration = None
        if self.calibration is not None:
            calibration = {
                "ece": self.calibration.ece,
                "ece_calibrated": self.calibration.ece_calibrated,
                "applied": self.calibration.applied,
            }
        return {
            "n_predictions": self.n_predictions,
            "n_labelled": self.n_labelled,
            "calibration": calibration,
            "metrics": [
                {
                    "metric": m.metric,
                    "reference": m.reference,
                    "estimated": m.estimated,
                    "realised": m.realised,
                    "n_labelled": m.n_labelled,
                    "drop": m.drop,
                }
                for m in self.metrics
            ],
        }


def compare_performance(
    task: str,
    reference_metrics: Mapping[str, float],
    *,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    y_true: Sequence[Any] | np.ndarray | None = None,
    labelled: np.ndarray | None = None,
    calibration: Calibration | None = None,
) -> PerformanceReport:
    """The window's estimated and realised metrics beside the holdout's.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        reference_metrics: the holdout metrics recorded at registration.
        y_pred: every prediction in the window.
        proba: their probabilities (classifiers), in ``classes`` order.
        classes: the class labels.
        y_true: the labels of the labelled predictions, in the order of ``labelled``.
        labelled: a mask over the window's predictions: which ones ``y_true`` labels.
        calibration: the holdout's calibration check (see :func:`fit_calibration`).
    """
    n = len(y_pred)
    estimated: dict[str, float] = {}
    if proba is not None and classes is not None and task != "regression":
        corrected = calibration.apply(proba) if calibration is not None else proba
        estimated = estimate_performance(task, corrected, y_pred, classes)
    realised: dict[str, float] = {}
    n_labelled = 0
    if y_true is not None and labelled is not None and labelled.any():
        from shipyard.evaluate import evaluate_predictions

        n_labelled = int(labelled.sum())
        predicted = np.asarray(y_pred, dtype=object)[labelled]
        probabilities = None if proba is None else np.asarray(proba)[labelled]
        realised = evaluate_predictions(task, y_true, predicted, probabilities, classes).metrics
    names = ESTIMATED.get(task) or ()
    names = (*names, *(m for m in _realised_names(task) if m not in names))
    comparisons = tuple(
        MetricComparison(
            metric=name,
            reference=_number(reference_metrics.get(name)),
            estimated=_number(estimated.get(name)),
            realised=_number(realised.get(name)) if n_labelled else None,
            n_labelled=n_labelled,
        )
        for name in names
        if name in reference_metrics or name in estimated or name in realised
    )
    return PerformanceReport(comparisons, n, n_labelled, calibration)


def _realised_names(task: str) -> tuple[str, ...]:
    if task == "regression":
        return ("mae", "rmse", "r2", "mape")
    return ("balanced_accuracy", "pr_auc", "log_loss")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if np.isnan(number) else number


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _expected_auc(p: np.ndarray) -> float:
    """The ROC AUC expected when each row is positive with probability ``p``.

    Rows sorted by ``p`` descending sweep the threshold; each contributes ``p`` expected true
    positives and ``1 - p`` expected false positives (ties share one step).
    """
    positives, negatives = p.sum(), (1.0 - p).sum()
    if positives <= 0 or negatives <= 0:
        return float("nan")
    order = np.argsort(-p, kind="stable")
    ranked = p[order]
    ends = np.append(np.flatnonzero(np.diff(ranked)), ranked.size - 1)
    tpr = np.concatenate([[0.0], np.cumsum(ranked)[ends] / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1.0 - ranked)[ends] / negatives])
    return float(np.trapezoid(tpr, fpr))


def _one_hot(y_true: Sequence[Any] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    labels = np.asarray([str(v) for v in y_true], dtype=object)
    return (labels[:, None] == np.asarray(list(classes), dtype=object)[None, :]).astype(float)


def _ece(y: np.ndarray, proba: np.ndarray) -> float:
    """Class-wise expected calibration error: per class, the row-weighted gap between mean
    probability and frequency in 10 equal-width bins, averaged over classes."""
    errors = []
    for j in range(proba.shape[1]):
        bins = np.minimum((proba[:, j] * _BINS).astype(int), _BINS - 1)
        sum_p = np.bincount(bins, weights=proba[:, j], minlength=_BINS)
        sum_y = np.bincount(bins, weights=y[:, j], minlength=_BINS)
        errors.append(np.abs(sum_p - sum_y).sum() / max(len(proba), 1))
    return float(np.mean(errors))


def _fit(y: np.ndarray, proba: np.ndarray) -> tuple[IsotonicRegression, ...]:
    from sklearn.isotonic import IsotonicRegression

    return tuple(
        IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(proba[:, j], y[:, j])
        for j in range(proba.shape[1])
    )


def _calibrate(calibrators: Sequence[IsotonicRegression], proba: np.ndarray) -> np.ndarray:
    out = np.column_stack([c.predict(proba[:, j]) for j, c in enumerate(calibrators)])
    if out.shape[1] == 2:  # binary: keep the pair complementary, led by the positive class
        out[:, 0] = 1.0 - out[:, 1]
        return out
    totals = out.sum(axis=1, keepdims=True)
    return np.divide(out, totals, out=np.full_like(out, 1.0 / out.shape[1]), where=totals > 0)

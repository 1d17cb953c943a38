"""The holdout's ROC and precision-recall curves as points (a run's ``curves.json``).

The report draws these curves as images; the points let the web UI draw them itself and
overlay several runs. A curve keeps at most :data:`MAX_CURVE_POINTS` points, picked evenly
along its length (so steep and flat parts keep their shape), and a multiclass model keeps its
:data:`MAX_CURVE_CLASSES` most frequent classes (one-vs-rest), so the file stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = ["MAX_CURVE_CLASSES", "MAX_CURVE_POINTS", "Curve", "CurvePoints", "curve_points"]

MAX_CURVE_POINTS = 200
"""The most points a stored curve keeps."""
MAX_CURVE_CLASSES = 10
"""The most classes of a multiclass model whose curves are stored (the most frequent)."""
CURVES_FORMAT = 1
_DIGITS = 5


@dataclass(frozen=True)
class Curve:
    """One ROC or precision-recall curve of one class against the rest.

    Attributes:
        kind: ``roc`` (x: false positive rate, y: true positive rate) or ``pr`` (x: recall,
            y: precision).
        label: the class (binary tasks: the positive class).
        x, y: the points, in the order sklearn returns them (thinned).
        area: the ROC AUC, or the average precision, computed on every holdout row.
        n_positive: holdout rows of the class.
    """

    kind: str
    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    area: float
    n_positive: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the axes named (``fpr``/``tpr``/``auc`` or
        ``recall``/``precision``/``average_precision``)."""
        x_name, y_name, area = (
            ("fpr", "tpr", "auc")
            if self.kind == "roc"
            else ("recall", "precision", "average_precision")
        )
        return {
            "label": self.label,
            "n_positive": self.n_positive,
            area: round(self.area, _DIGITS),
            x_name: list(self.x),
            y_name: list(self.y),
        }


@dataclass(frozen=True)
class CurvePoints:
    """A model's holdout curves.

    Attributes:
        task: ``binary`` or ``multiclass``.
        n_rows: holdout rows scored.
        n_classes: the model's classes (more than the curves when some were left out).
        roc, pr: the curves, in the classes' order.
    """

    task: str
    n_rows: int
    n_classes: int
    roc: tuple[Curve, ...]
    pr: tuple[Curve, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``curves.json`` artifact)."""
        return {
            "format": CURVES_FORMAT,
            "task": self.task,
            "n_rows": self.n_rows,
            "n_classes": self.n_classes,
            "roc": [c.to_dict() for c in self.roc],
            "pr": [c.to_dict() for c in self.pr],
        }


def curve_points(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[str] | None,
    *,
    max_points: int = MAX_CURVE_POINTS,
    max_classes: int = MAX_CURVE_CLASSES,
) -> CurvePoints | None:
    """The ROC and precision-recall curves of a classifier's holdout predictions.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: the true labels.
        proba: ``(n, n_classes)`` probabilities in ``classes`` order.
        classes: the class labels; for binary tasks the last one is the positive class.
        max_points: the most points a curve keeps (at least 2).
        max_classes: the most classes with curves (multiclass: the most frequent).

    Returns:
        The curves; ``None`` for a regression, without probabilities, or when no class
        has both outcomes among the rows.

    Example:
        >>> points = curve_points("binary", ["a", "b", "b"], proba, ["a", "b"])  # doctest: +SKIP
        >>> points.roc[0].area  # doctest: +SKIP
        1.0
    """
    if task == "regression" or proba is None or not classes:
        return None
    scores = np.asarray(proba, dtype=float)
    labels = [str(c) for c in classes]
    y = np.asarray([str(v) for v in y_true], dtype=object)
    if scores.ndim != 2 or scores.shape != (len(y), len(labels)):
        return None
    picked = _picked_classes(task, y, labels, max_classes)
    roc, pr = [], []
    for j in picked:
        hits, score = _finite(y == labels[j], scores[:, j])
        if 0 < hits.sum() < len(hits):
            roc.append(_roc(labels[j], hits, score, max_points))
            pr.append(_pr(labels[j], hits, score, max_points))
    if not roc:
        return None
    return CurvePoints(task, len(y), len(labels), tuple(roc), tuple(pr))


def _picked_classes(task: str, y: np.ndarray, labels: list[str], max_classes: int) -> list[int]:
    """The classes' columns to draw, in the labels' order: the positive class (binary), or
    the most frequent ``max_classes`` classes."""
    if task == "binary":
        return [len(labels) - 1]
    counts = [int((y == label).sum()) for label in labels]
    frequent = sorted(range(len(labels)), key=lambda j: (-counts[j], j))[: max(max_classes, 1)]
    return sorted(frequent)


def _finite(hits: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(score)
    return hits[keep].astype(int), score[keep]


def _roc(label: str, hits: np.ndarray, score: np.ndarray, max_points: int) -> Curve:
    fpr, tpr, _ = skm.roc_curve(hits, score)
    x, y = _thin(fpr, tpr, max_points)
    return Curve("roc", label, x, y, float(skm.auc(fpr, tpr)), int(hits.sum()))


def _pr(label: str, hits: np.ndarray, score: np.ndarray, max_points: int) -> Curve:
    precision, recall, _ = skm.precision_recall_curve(hits, score)
    x, y = _thin(recall, precision, max_points)
    area = float(-np.sum(np.diff(recall) * precision[:-1]))  # average_precision_score's sum
    return Curve("pr", label, x, y, area, int(hits.sum()))


def _thin(
    x: np.ndarray, y: np.ndarray, max_points: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """At most ``max_points`` of the curve's points, evenly spaced along its length (the
    first and the last always kept), rounded to 5 decimals."""
    n = len(x)
    if n > max_points:
        along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        targets = np.linspace(0.0, along[-1], max(max_points, 2) - 1)
        keep = np.unique(np.append(np.searchsorted(along, targets).clip(0, n - 1), n - 1))
        x, y = x[keep], y[keep]
    return _rounded(x), _rounded(y)


def _rounded(values: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(np.asarray(values, dtype=float), _DIGITS).tolist())

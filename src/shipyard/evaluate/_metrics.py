"""Classification and regression metrics, and CV scorers for the primary metric."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

__all__ = [
    "KEY_METRICS",
    "LOWER_IS_BETTER",
    "Evaluation",
    "aligned_proba",
    "default_metric",
    "evaluate_predictions",
    "greater_is_better",
    "score_predictions",
]

LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape"})

KEY_METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "log_loss",
    ),
    "multiclass": (
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "roc_auc",
        "pr_auc",
        "log_loss",
    ),
    "regression": ("mae", "rmse", "r2", "mape"),
}
"""The metrics worth a column for each task, in display order (every metric is recorded)."""


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better."""
    return metric not in LOWER_IS_BETTER


def default_metric(task: str) -> str:
    """The primary metric used when the project names none."""
    return "rmse" if task == "regression" else "f1_macro"


@dataclass(frozen=True)
class Evaluation:
    """Holdout metrics of one model.

    Attributes:
        metrics: every scalar metric for the task, by name.
        confusion_matrix: rows are true classes, columns predicted (classifiers only).
        labels: class labels in the confusion matrix's order.
        y_true, y_pred, proba: the evaluated rows (for plots; not part of ``to_dict``).
    """

    metrics: dict[str, float]
    confusion_matrix: list[list[int]] | None = None
    labels: list[str] | None = field(default=None)
    y_true: np.ndarray | None = field(default=None, repr=False, compare=False)
    y_pred: np.ndarray | None = field(default=None, repr=False, compare=False)
    proba: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "metrics": self.metrics,
            "confusion_matrix": self.confusion_matrix,
            "labels": self.labels,
        }


def evaluate_predictions(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> Evaluation:
    """Compute every metric for the task.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: true labels (strings for classifiers) or values.
        y_pred: predicted labels or values.
        proba: ``(n, n_classes)`` probabilities in ``classes`` order (classifiers).
        classes: the class labels; for binary tasks the last one is the positive class.
    """
    if task == "regression":
        actual, predicted = np.asarray(y_true, float), np.asarray(y_pred, float)
        return Evaluation(metrics=_regression(actual, predicted), y_true=actual, y_pred=predicted)
    labels = list(classes) if classes is not None else sorted({str(v) for v in y_true})
    yt = np.asarray([str(v) for v in y_true], dtype=object)
    yp = np.asarray([str(v) for v in y_pred], dtype=object)
    out = _classification(task, yt, yp, labels)
    probabilities = None if proba is None else np.asarray(proba, float)
    if probabilities is not None:
        out.update(_probabilistic(task, yt, probabilities, labels))
    cm = skm.confusion_matrix(yt, yp, labels=labels).tolist()
    return Evaluation(
        metrics=out,
        confusion_matrix=cm,
        labels=labels,
        y_true=yt,
        y_pred=yp,
        proba=probabilities,
    )


def score_predictions(
    task: str,
    metric: str,
    y_true: np.ndarray,
    output: np.ndarray,
    classes: Sequence[str] | None = None,
) -> float:
    """One metric of predictions, computing only its family of metrics (for the many scores
    an ensemble selection needs).

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: the metric's name (see :data:`KEY_METRICS`).
        y_true: true labels (text) or values.
        output: probabilities in ``classes`` order (classifiers) or predicted values.
        classes: the class labels (classifiers).
    """
    if task == "regression":
        return _regression(np.asarray(y_true, float), np.asarray(output, float))[metric]
    labels = list(classes or ())
    proba = np.asarray(output, float)
    if metric in ("roc_auc", "pr_auc", "log_loss"):
        yt = np.asarray(y_true, dtype=object)
        return _probabilistic(task, yt, proba, labels, only=metric)[metric]
    predicted = np.asarray(labels, dtype=object)[proba.argmax(axis=1)]
    return _classification(task, np.asarray(y_true, dtype=object), predicted, labels)[metric]


def aligned_proba(estimator: Any, x: Any, labels: Sequence[str]) -> np.ndarray:
    """``predict_proba`` in ``labels`` order; classes a model never saw get zeros.

    A CV fold may miss a rare class; its model's columns then differ from the full label set.
    """
    raw = np.asarray(estimator.predict_proba(x), float)
    fitted = [str(c) for c in estimator.classes_]
    if fitted == list(labels):
        return raw
    out = np.zeros((raw.shape[0], len(labels)))
    for j, cls in enumerate(fitted):
        out[:, list(labels).index(cls)] = raw[:, j]
    return out


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "mae": float(skm.mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "r2": float(skm.r2_score(y, p)) if len(y) > 1 else float("nan"),
        "mape": float(skm.mean_absolute_percentage_error(y, p)),
    }


def _classification(
    task: str, yt: np.ndarray, yp: np.ndarray, labels: list[str]
) -> dict[str, float]:
    out = {
        "accuracy": float(skm.accuracy_score(yt, yp)),
        "balanced_accuracy": _quiet(skm.balanced_accuracy_score, yt, yp),
    }
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            yt, yp, labels=labels, average=avg, zero_division=0
        )
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    if task == "binary":
        p, r, f, _ = skm.precision_recall_fscore_support(
            yt, yp, labels=labels, pos_label=labels[-1], average="binary", zero_division=0
        )
        out.update({"precision": float(p), "recall": float(r), "f1": float(f)})
        # the other metrics a decision threshold can be tuned for (imbalance.threshold)
        f2 = skm.fbeta_score(
            yt, yp, beta=2.0, labels=labels, pos_label=labels[-1], average="binary", zero_division=0
        )
        out.update({"f2": float(f2), "mcc": _quiet(skm.matthews_corrcoef, yt, yp)})
    else:
        out.update(
            {
                "precision": out["precision_macro"],
                "recall": out["recall_macro"],
                "f1": out["f1_macro"],
            }
        )
    return out


def _probabilistic(
    task: str, yt: np.ndarray, proba: np.ndarray, labels: list[str], only: str | None = None
) -> dict[str, float]:
    """``log_loss``, ``roc_auc`` and ``pr_auc`` (or ``only`` the one named)."""
    want = {"log_loss", "roc_auc", "pr_auc"} if only is None else {only}
    present = set(yt)
    out: dict[str, float] = {}
    if "log_loss" in want:
        out["log_loss"] = float(skm.log_loss(yt, np.clip(proba, 1e-15, 1.0), labels=labels))
    if len(present) < 2:
        out.update({k: float("nan") for k in ("roc_auc", "pr_auc") if k in want})
        return out
    if task == "binary":
        pos = (yt == labels[-1]).astype(int)
        if "roc_auc" in want:
            out["roc_auc"] = float(skm.roc_auc_score(pos, proba[:, -1]))
        if "pr_auc" in want:
            out["pr_auc"] = float(skm.average_precision_score(pos, proba[:, -1]))
        return out
    onehot = label_binarize(yt, classes=labels)
    keep = [j for j, c in enumerate(labels) if c in present]
    if "roc_auc" in want:
        out["roc_auc"] = float(skm.roc_auc_score(onehot[:, keep], proba[:, keep], average="macro"))
    if "pr_auc" in want:
        out["pr_auc"] = float(
            skm.average_precision_score(onehot[:, keep], proba[:, keep], average="macro")
        )
    return out


def _quiet(fn: Callable[..., Any], *args: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(*args))

"""Per-slice metrics for sensitive columns, and fairness measures (fairlearn's).

Binary classifiers get ``demographic_parity_difference`` (the largest gap in selection rate
between groups) and ``equalized_odds_difference`` (the larger of the largest gaps in true and
false positive rates). Both are defined for a positive class only, so multiclass and
regression models get the gap of their per-slice metric instead, and a sentence saying so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

__all__ = ["FAIRNESS_MEASURES", "SliceReport", "slice_metrics"]

FAIRNESS_MEASURES = ("demographic_parity_difference", "equalized_odds_difference")
"""The measures a gate may bound (``gate.fairness``), for binary classifiers."""

_MAX_NUMERIC_GROUPS = 10
"""A numeric sensitive column with more distinct values is cut into quartiles."""
_FEW_ROWS = 30
_MISSING = "(missing)"


@dataclass(frozen=True)
class SliceReport:
    """One sensitive column's slices.

    Attributes:
        column: the sensitive column.
        metric_names: the per-slice metrics, in display order.
        groups: one dict per group: ``group``, ``count``, then each metric.
        overall: each metric on every holdout row.
        measures: fairness measures by name (``FAIRNESS_MEASURES`` for binary classifiers,
            ``<metric>_difference`` otherwise).
        not_applicable: measures that do not apply, with the reason.
        notes: caveats (binned values, small or single-class groups).
    """

    column: str
    metric_names: tuple[str, ...]
    groups: tuple[dict[str, Any], ...]
    overall: dict[str, float]
    measures: dict[str, float]
    not_applicable: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "column": self.column,
            "groups": list(self.groups),
            "overall": self.overall,
            "measures": self.measures,
            "not_applicable": self.not_applicable,
            "notes": list(self.notes),
        }


def slice_metrics(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    sensitive: pd.DataFrame,
    classes: Sequence[str] | None,
) -> list[SliceReport]:
    """Metrics per group of each sensitive column, and the fairness measures.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true, y_pred: the holdout's labels (or values) and the model's predictions.
        sensitive: the holdout rows' sensitive columns, aligned with ``y_true`` by position.
        classes: the class labels; for binary tasks the last one is the positive class.

    Returns:
        One report per column of ``sensitive``.

    Example:
        >>> s = pd.DataFrame({"g": ["a", "a", "b", "b"]})
        >>> [r] = slice_metrics("binary", ["y", "n", "y", "n"], ["y", "y", "n", "n"], s,
        ...                     ["n", "y"])
        >>> r.measures["demographic_parity_difference"]
        1.0
    """
    if len(sensitive) != len(y_true):
        msg = f"sensitive has {len(sensitive)} rows, the holdout {len(y_true)}; align them"
        raise ValueError(msg)
    frame = sensitive.reset_index(drop=True)
    return [_one(task, y_true, y_pred, frame[c], str(c), classes) for c in frame.columns]


def _groups(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    notes = []
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > _MAX_NUMERIC_GROUPS:
        values = pd.qcut(values, 4, duplicates="drop").astype(object)
        notes.append(f"{values.name} is numeric: cut into quartiles")
    labels = values.astype(object).where(values.notna(), _MISSING)
    return np.asarray([str(v) for v in labels], dtype=object), notes


def _one(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    values: pd.Series,
    column: str,
    classes: Sequence[str] | None,
) -> SliceReport:
    groups, notes = _groups(values.rename(column))
    if task == "binary":
        positive = str(classes[-1]) if classes else sorted({str(v) for v in y_true})[-1]
        yt = np.asarray([str(v) == positive for v in y_true], dtype=int)
        yp = np.asarray([str(v) == positive for v in y_pred], dtype=int)
        return _binary(yt, yp, groups, column, positive, notes)
    if task == "regression":
        yt, yp = np.asarray(y_true, float), np.asarray(y_pred, float)
        metrics = _REGRESSION
    else:
        yt = np.asarray([str(v) for v in y_true], dtype=object)
        yp = np.asarray([str(v) for v in y_pred], dtype=object)
        metrics = _MULTICLASS
    return _gaps(task, yt, yp, groups, column, metrics, notes)


def _binary(
    yt: np.ndarray, yp: np.ndarray, groups: np.ndarray, column: str, positive: str, notes: list
) -> SliceReport:
    from fairlearn import metrics as fm  # heavy: imported when a card has sensitive columns

    metrics: dict[str, Callable[..., float]] = {
        "accuracy": skm.accuracy_score,
        "selection_rate": fm.selection_rate,
        "true_positive_rate": fm.true_positive_rate,
        "false_positive_rate": fm.false_positive_rate,
    }
    table, overall = _frame(metrics, yt, yp, groups)
    for row in table:
        if row["positives"] in (0, row["count"]):
            outcome = "no positive" if row["positives"] == 0 else "only positive"
            notes.append(
                f"group {row['group']} has {outcome} rows ({positive!r} is positive): "
                "fairlearn counts its undefined rate as 0 in equalized odds"
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measures = {
            "demographic_parity_difference": float(
                fm.demographic_parity_difference(yt, yp, sensitive_features=groups)
            ),
            "equalized_odds_difference": float(
                fm.equalized_odds_difference(yt, yp, sensitive_features=groups)
            ),
        }
    return SliceReport(
        column, tuple(metrics), tuple(table), overall, measures, notes=_small(table, notes)
    )


def _gaps(
    task: str,
    yt: np.ndarray,
    yp: np.ndarray,
    groups: np.ndarray,
    column: str,
    metrics: dict[str, Callable[..., float]],
    notes: list[str],
) -> SliceReport:
    table, overall = _frame(metrics, yt, yp, groups)
    measures = {}
    for name in metrics:
        values = [row[name] for row in table if np.isfinite(row[name])]
        measures[f"{name}_difference"] = float(max(values) - min(values)) if values else np.nan
    reason = f"defined for binary classification, not {task}; the metric gaps stand in"
    return SliceReport(
        column,
        tuple(metrics),
        tuple(table),
        overall,
        measures,
        dict.fromkeys(FAIRNESS_MEASURES, reason),
        _small(table, notes),
    )


def _frame(
    metrics: dict[str, Callable[..., float]], yt: np.ndarray, yp: np.ndarray, groups: np.ndarray
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    from fairlearn.metrics import MetricFrame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty rate in a group is nan, said in the notes
        mf = MetricFrame(metrics=metrics, y_true=yt, y_pred=yp, sensitive_features=groups)
    table = []
    for group, row in mf.by_group.iterrows():
        mask = groups == group
        entry: dict[str, Any] = {"group": str(group), "count": int(mask.sum())}
        if yt.dtype.kind in "iu":
            entry["positives"] = int(yt[mask].sum())
        entry.update({name: float(row[name]) for name in metrics})
        table.append(entry)
    return table, {name: float(v) for name, v in mf.overall.items()}


def _small(table: list[dict[str, Any]], notes: list[str]) -> tuple[str, ...]:
    few = [row["group"] for row in table if row["count"] < _FEW_ROWS]
    if few:
        notes.append(f"fewer than {_FEW_ROWS} rows (noisy numbers): {', '.join(few)}")
    return tuple(notes)


def _f1_macro(yt: np.ndarray, yp: np.ndarray) -> float:
    return float(skm.f1_score(yt, yp, average="macro", zero_division=0))


def _rmse(yt: np.ndarray, yp: np.ndarray) -> float:
    return float(np.sqrt(skm.mean_squared_error(yt, yp)))


def _mean_prediction(yt: np.ndarray, yp: np.ndarray) -> float:
    return float(np.mean(yp))


_MULTICLASS: dict[str, Callable[..., float]] = {
    "accuracy": skm.accuracy_score,
    "f1_macro": _f1_macro,
}
_REGRESSION: dict[str, Callable[..., float]] = {
    "mae": skm.mean_absolute_error,
    "rmse": _rmse,
    "mean_prediction": _mean_prediction,
}

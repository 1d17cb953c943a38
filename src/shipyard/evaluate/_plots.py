"""Evaluation plots as PNG bytes (confusion matrix, ROC and PR curves, residuals, CV scores,
calibration, learning curve, importances, SHAP) and inline SVG sparklines.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot global state),
so plotting is safe in threads and never opens a window.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "calibration_png",
    "confusion_matrix_png",
    "cv_scores_png",
    "histogram_svg",
    "importance_png",
    "learning_curve_png",
    "pr_curves_png",
    "regression_png",
    "roc_curves_png",
    "shap_png",
]

_SIZE = (5.2, 4.0)


def _figure(size: tuple[float, float] = _SIZE, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # heavy: imported when a report is drawn

    fig = Figure(figsize=(size[0] * ncols, size[1]), dpi=100, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def confusion_matrix_png(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> bytes:
    """A heatmap of counts; rows are true classes, columns predicted ones."""
    counts = np.asarray(matrix, dtype=float)
    fig, ax = _figure()
    ax.imshow(counts, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(list(ticks), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(list(ticks), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        colour = "white" if value > threshold else "black"
        ax.text(j, i, f"{int(value)}", ha="center", va="center", color=colour)
    ax.set_title("Confusion matrix (holdout)")
    return _png(fig)


def _one_vs_rest(
    task: str, y_true: Sequence[str] | np.ndarray, proba: np.ndarray, classes: Sequence[str]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, is-that-class, score) per curve: the positive class for binary tasks."""
    y = np.asarray(y_true, dtype=object)
    picks = [len(classes) - 1] if task == "binary" else range(len(classes))
    out = []
    for j in picks:
        hits = (y == classes[j]).astype(int)
        if 0 < hits.sum() < len(hits):
            out.append((str(classes[j]), hits, proba[:, j]))
    return out


def roc_curves_png(
    task: str, y_true: Sequence[str] | np.ndarray, proba: np.ndarray, classes: Sequence[str]
) -> bytes | None:
    """ROC curves (one-vs-rest for multiclass); ``None`` when no class has both outcomes."""
    curves = _one_vs_rest(task, y_true, proba, classes)
    if not curves:
        return None
    fig, ax = _figure()
    for label, hits, score in curves:
        fpr, tpr, _ = skm.roc_curve(hits, score)
        ax.plot(fpr, tpr, label=f"{label} (AUC {skm.auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    return _finish(fig, ax, "false positive rate", "true positive rate", "ROC", "lower right")


def pr_curves_png(
    task: str, y_true: Sequence[str] | np.ndarray, proba: np.ndarray, classes: Sequence[str]
) -> bytes | None:
    """Precision-recall curves; ``None`` when no class has both outcomes."""
    curves = _one_vs_rest(task, y_true, proba, classes)
    if not curves:
        return None
    fig, ax = _figure()
    for label, hits, score in curves:
        precision, recall, _ = skm.precision_recall_curve(hits, score)
        ap = skm.average_precision_score(hits, score)
        ax.plot(recall, precision, label=f"{label} (AP {ap:.3f})")
    ax.set_ylim(0, 1.02)
    return _finish(fig, ax, "recall", "precision", "Precision-recall", "lower left")


def _finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str, legend: str) -> bytes:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (holdout)")
    ax.legend(loc=legend, fontsize="small")
    return _png(fig)


def regression_png(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> bytes:
    """Predicted against actual values, and the residuals' distribution."""
    actual = np.asarray(y_true, dtype=float)
    predicted = np.asarray(y_pred, dtype=float)
    fig, (left, right) = _figure(ncols=2)
    left.scatter(actual, predicted, s=10, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    left.set_title("Predicted vs actual (holdout)")
    right.hist(predicted - actual, bins=30)
    right.set_xlabel("residual (predicted - actual)")
    right.set_ylabel("rows")
    right.set_title("Residuals (holdout)")
    return _png(fig)


def cv_scores_png(labels: Sequence[str], folds: Sequence[Sequence[float]], metric: str) -> bytes:
    """Each candidate's fold scores on the primary metric, as a box plot with the points."""
    fig, ax = _figure()
    data = [np.asarray(f, dtype=float) for f in folds]
    ax.boxplot(data, tick_labels=list(labels), showmeans=True)
    for i, values in enumerate(data, start=1):
        ax.scatter(np.full(len(values), i), values, s=12, alpha=0.7)
    ax.set_ylabel(metric)
    ax.set_title(f"Cross-validation: {metric} per fold")
    ax.tick_params(axis="x", labelrotation=20)
    return _png(fig)


def calibration_png(
    predicted: Sequence[float], observed: Sequence[float], counts: Sequence[int], target: str
) -> bytes:
    """A reliability diagram over the share of rows in each probability bin."""
    fig, (top, bottom) = _figure(size=(4.6, 3.6), ncols=2)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    top.plot(predicted, observed, marker="o", label="model")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_xlabel(f"mean predicted {target}")
    top.set_ylabel("observed frequency")
    top.set_title("Calibration (holdout)")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(predicted, counts, width=0.08, color="#457b9d")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("predicted probability (bin)")
    bottom.set_ylabel("rows")
    bottom.set_title("Rows per bin")
    return _png(fig)


def learning_curve_png(
    sizes: Sequence[int],
    train: Sequence[float],
    validation: Sequence[float],
    validation_std: Sequence[float],
    metric: str,
) -> bytes:
    """Training and validation scores against training rows, with the folds' spread."""
    fig, ax = _figure()
    mean, spread = np.asarray(validation, float), np.asarray(validation_std, float)
    ax.plot(sizes, train, marker="o", label="training rows")
    ax.plot(sizes, mean, marker="o", label="held-out fold")
    ax.fill_between(sizes, mean - spread, mean + spread, alpha=0.2)
    ax.set_xlabel("training rows")
    ax.set_ylabel(metric)
    ax.set_title(f"Learning curve: {metric}")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


def importance_png(
    features: Sequence[str], mean: Sequence[float], std: Sequence[float], metric: str
) -> bytes:
    """Horizontal bars of each column's permutation importance, most important on top."""
    n = min(len(features), 15)
    fig, ax = _figure(size=(5.2, 1.2 + 0.28 * n))
    rows = np.arange(n)[::-1]
    ax.barh(rows, list(mean[:n]), xerr=list(std[:n]), color="#457b9d")
    ax.set_yticks(list(rows), labels=list(features[:n]))
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel(f"drop in {metric} when shuffled")
    ax.set_title("Permutation importance (holdout sample)")
    return _png(fig)


def shap_png(
    features: Sequence[str],
    values: np.ndarray | None,
    feature_values: np.ndarray | None,
    mean_abs: Sequence[float],
    by_class: np.ndarray | None = None,
    classes: Sequence[str] = (),
) -> bytes:
    """A SHAP summary: a beeswarm of values coloured by the feature's value (one output), or
    stacked bars of mean absolute values per class (multiclass)."""
    n = len(features)
    fig, ax = _figure(size=(5.6, 1.2 + 0.3 * n))
    rows = np.arange(n)[::-1]
    if values is not None and feature_values is not None:
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, values.shape)
        for i, row in enumerate(rows):
            points = ax.scatter(
                values[:, i],
                row + jitter[:, i],
                c=feature_values[:, i],
                cmap="coolwarm",
                vmin=0,
                vmax=1,
                s=6,
            )
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_xlabel("SHAP value (impact on the model output)")
        bar = fig.colorbar(points, ax=ax, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value")
    else:
        shares = np.zeros(n) if by_class is None else by_class
        left = np.zeros(n)
        for j, label in enumerate(classes):
            ax.barh(rows, shares[:, j], left=left, label=str(label))
            left = left + shares[:, j]
        if not classes:
            ax.barh(rows, list(mean_abs), color="#457b9d")
        ax.set_xlabel("mean |SHAP value|")
        if classes:
            ax.legend(loc="lower right", fontsize="small", title="class")
    ax.set_yticks(list(rows), labels=list(features))
    ax.set_title("SHAP summary (holdout sample)")
    return _png(fig)


def histogram_svg(bins: Sequence[tuple[str, int]], label: str) -> str:
    """A small inline SVG bar chart of a column's distribution (no image request, no
    matplotlib): accessible through its ``role``, ``aria-label`` and ``title``."""
    counts = [int(c) for _, c in bins]
    width, height, top = 120, 28, max(counts, default=0)
    step = width / max(len(counts), 1)
    bars = []
    for i, count in enumerate(counts):
        h = 0 if top == 0 else max(1.0, height * count / top)
        bars.append(
            f'<rect x="{i * step:.1f}" y="{height - h:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{h:.1f}"/>'
        )
    text = escape(label)
    return (
        f'<svg class="spark" role="img" aria-label="{text}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{text}</title>{"".join(bars)}</svg>'
    )

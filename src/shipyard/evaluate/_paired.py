"""The paired bootstrap: is a challenger better than a champion on the same holdout rows?

Each resample draws the holdout's rows with replacement once and scores both models on those
same rows, so the row-to-row luck that moves both scores together cancels in their difference.
Every metric of :mod:`shipyard.evaluate._metrics` is computed for a block of resamples at once
from counts (confusion matrices, per-row losses, tie groups of scores), not by calling sklearn
once per resample; a test checks each against :func:`score_predictions` on the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shipyard.evaluate._metrics import greater_is_better

__all__ = ["PROBA_METRICS", "PairedBootstrap", "bootstrap_scores", "paired_bootstrap"]

#: Metrics scored from class probabilities; the rest from predicted labels (or values).
PROBA_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss"})
_LABEL_METRICS = frozenset(
    {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "f2", "mcc"}
    | {f"{m}_{avg}" for m in ("precision", "recall", "f1") for avg in ("macro", "weighted")}
)
_REGRESSION_METRICS = frozenset({"mae", "rmse", "r2", "mape"})
_CELLS_PER_BLOCK = 2_000_000  # resamples x rows scored at once: ~16 MB per float array
_EPS = float(np.finfo(np.float64).eps)

Scorer = Callable[[np.ndarray], np.ndarray]  # (n_resamples, n_rows) row indices -> scores


@dataclass(frozen=True)
class PairedBootstrap:
    """The evidence of a paired bootstrap of ``metric`` (challenger minus champion).

    ``difference``, ``ci_low`` and ``ci_high`` are oriented so that a positive value means the
    challenger is better, whichever direction the metric runs (a lower log loss, a higher F1).

    Attributes:
        metric: the metric compared.
        greater_is_better: its direction.
        n_rows: holdout rows both models scored.
        samples: resamples drawn; ``n_valid`` of them gave both models a finite score.
        seed: the random seed of the resampling.
        margin: the improvement asked of the challenger (``registry.min_improvement``).
        confidence: the confidence level of the interval (and the probability the gate asks).
        challenger: the challenger's score on the whole holdout.
        champion: the champion's score on the same rows.
        difference: the challenger's improvement on the whole holdout.
        ci_low: lower end of the percentile interval of the improvement.
        ci_high: upper end of that interval.
        p_better: the share of valid resamples where the challenger is better (improvement
            above 0) by at least ``margin``.
        n_valid: resamples where both scores are finite (an AUC needs both classes).
    """

    metric: str
    greater_is_better: bool
    n_rows: int
    samples: int
    seed: int
    margin: float
    confidence: float
    challenger: float
    champion: float
    difference: float
    ci_low: float
    ci_high: float
    p_better: float
    n_valid: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN stays NaN; the store's JSON accepts it)."""
        return asdict(self)


def paired_bootstrap(
    y_true: Sequence[Any] | np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    task: str,
    metric: str,
    classes: Sequence[str] | None = None,
    samples: int = 1000,
    seed: int = 0,
    margin: float = 0.0,
    confidence: float = 0.95,
) -> PairedBootstrap:
    """Resample the holdout and score both models on the same rows each time.

    Args:
        y_true: true labels (classifiers; compared as text) or values.
        challenger: the challenger's output on those rows: ``(n, n_classes)`` probabilities in
            ``classes`` order, or predicted labels (label metrics only: a tuned decision
            threshold then counts), or predicted values (regression).
        champion: the champion's output on the same rows, in the same form.
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: any metric of :func:`~shipyard.evaluate.evaluate_predictions`.
        classes: the class labels (classifiers); for binary tasks the last is the positive.
        samples: resamples to draw (at least 1).
        seed: the random seed: the same inputs and seed give the same evidence.
        margin: the improvement asked of the challenger, in the metric's units.
        confidence: the interval's level, e.g. ``0.95``.

    Returns:
        The evidence; see :class:`PairedBootstrap`.

    Raises:
        ValueError: an unknown metric, probabilities missing for a probability metric, or
            outputs whose lengths differ from ``y_true``'s.

    Example:
        >>> import numpy as np
        >>> y = np.array(["a", "b"] * 50)
        >>> better, worse = y.copy(), np.where(np.arange(100) < 20, "a", y)
        >>> ev = paired_bootstrap(y, better, worse, task="binary", metric="accuracy",
        ...                       classes=["a", "b"], samples=200)
        >>> ev.p_better, round(ev.difference, 2)
        (1.0, 0.1)
    """
    if samples < 1:
        msg = f"samples must be at least 1, found {samples}"
        raise ValueError(msg)
    a = bootstrap_scores(y_true, challenger, task=task, metric=metric, classes=classes)
    b = bootstrap_scores(y_true, champion, task=task, metric=metric, classes=classes)
    n = len(y_true)
    sign = 1.0 if greater_is_better(metric) else -1.0
    whole = np.arange(n)[None, :]
    point_a, point_b = float(a(whole)[0]), float(b(whole)[0])
    diffs = np.concatenate([sign * (a(idx) - b(idx)) for idx in _resamples(n, samples, seed)])
    valid = diffs[np.isfinite(diffs)]
    tail = (1.0 - confidence) / 2.0
    low, high = (
        (float(np.quantile(valid, tail)), float(np.quantile(valid, 1.0 - tail)))
        if valid.size
        else (float("nan"), float("nan"))
    )
    better = float(np.mean((valid > 0) & (valid >= margin))) if valid.size else 0.0
    return PairedBootstrap(
        metric=metric,
        greater_is_better=sign > 0,
        n_rows=n,
        samples=samples,
        seed=seed,
        margin=margin,
        confidence=confidence,
        challenger=point_a,
        champion=point_b,
        difference=sign * (point_a - point_b),
        ci_low=low,
        ci_high=high,
        p_better=better,
        n_valid=int(valid.size),
    )


def bootstrap_scores(
    y_true: Sequence[Any] | np.ndarray,
    output: np.ndarray,
    *,
    task: str,
    metric: str,
    classes: Sequence[str] | None = None,
) -> Scorer:
    """A vectorised scorer of ``metric``: row indices ``(n_resamples, n_rows)`` -> scores.

    Each row of the index matrix is one resample; its score equals
    ``score_predictions(task, metric, y_true[rows], output[rows], classes)``.

    Raises:
        ValueError: see :func:`paired_bootstrap`.
    """
    out = np.asarray(output)
    if len(out) != len(y_true):
        msg = f"{len(out)} predictions for {len(y_true)} true values; pass one per holdout row"
        raise ValueError(msg)
    if task == "regression":
        if metric not in _REGRESSION_METRICS:
            raise _unknown(metric, task, _REGRESSION_METRICS)
        return _regression_scorer(np.asarray(y_true, float), out.astype(float), metric)
    labels = [str(c) for c in classes] if classes is not None else sorted({str(v) for v in y_true})
    truth = np.asarray([str(v) for v in y_true], dtype=object)
    if metric in PROBA_METRICS:
        if out.ndim != 2 or out.shape[1] != len(labels):
            msg = (
                f"{metric} needs class probabilities of shape (n_rows, {len(labels)}), "
                f"found shape {out.shape}; pass the models' predict_proba output"
            )
            raise ValueError(msg)
        return _proba_scorer(task, truth, out.astype(float), labels, metric)
    if metric not in _LABEL_METRICS:
        raise _unknown(metric, task, _LABEL_METRICS | PROBA_METRICS)
    predicted = (
        np.asarray(labels, dtype=object)[out.argmax(axis=1)]
        if out.ndim == 2
        else np.asarray([str(v) for v in out], dtype=object)
    )
    return _label_scorer(task, truth, predicted, labels, metric)


def _unknown(metric: str, task: str, known: frozenset[str]) -> ValueError:
    return ValueError(
        f"no paired bootstrap for metric {metric!r} on a {task} task; known: "
        f"{', '.join(sorted(known))}"
    )


def _resamples(n: int, samples: int, seed: int) -> list[np.ndarray]:
    """Row-index blocks, one resample per row, a few megabytes each."""
    rng = np.random.default_rng(seed)
    per_block = max(1, _CELLS_PER_BLOCK // max(n, 1))
    sizes = [min(per_block, samples - start) for start in range(0, samples, per_block)]
    return [rng.integers(0, n, size=(size, n)) for size in sizes]


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (sklearn's ``zero_division=0``)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den != 0)


def _codes(values: np.ndarray, labels: list[str], unknown: int) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(labels)}
    return np.fromiter((lookup.get(v, unknown) for v in values), dtype=np.int64, count=len(values))


def _label_scorer(
    task: str, truth: np.ndarray, predicted: np.ndarray, labels: list[str], metric: str
) -> Scorer:
    k = len(labels)
    size = k + 2  # a true value outside ``labels`` is code k, a predicted one k + 1
    cell = _codes(truth, labels, k) * size + _codes(predicted, labels, k + 1)

    def score(idx: np.ndarray) -> np.ndarray:
        n_res, n = idx.shape
        flat = (cell[idx] + (np.arange(n_res) * size * size)[:, None]).ravel()
        cm = np.bincount(flat, minlength=n_res * size * size).reshape(n_res, size, size)
        return _from_confusion(task, cm.astype(float), k, n, metric)

    return score


def _from_confusion(task: str, cm: np.ndarray, k: int, n: int, metric: str) -> np.ndarray:
    """Label metrics of a stack of confusion matrices (rows true, columns predicted)."""
    diag = np.diagonal(cm, axis1=1, axis2=2)
    if metric == "accuracy":
        return diag[:, :k].sum(axis=1) / n
    true_all = cm.sum(axis=2)
    if metric == "mcc":
        return _mcc(cm, diag, true_all)
    if metric == "balanced_accuracy":  # classes absent from the resample's truth are left out
        recall = np.where(true_all > 0, _divide(diag, true_all), np.nan)
        with np.errstate(invalid="ignore"):
            return np.nanmean(recall, axis=1)
    tp, true_sum, pred_sum = diag[:, :k], true_all[:, :k], cm.sum(axis=1)[:, :k]
    kind, _, average = metric.partition("_")
    per_class = {
        "precision": _divide(tp, pred_sum),
        "recall": _divide(tp, true_sum),
        "f1": _divide(2 * tp, true_sum + pred_sum),
        "f2": _divide(5 * tp, 4 * true_sum + pred_sum),
    }[kind]
    if average == "weighted":
        return _divide((per_class * true_sum).sum(axis=1), true_sum.sum(axis=1))
    if average == "macro" or task != "binary":
        return per_class.mean(axis=1)
    return per_class[:, k - 1]  # binary: the positive class is the last label


def _mcc(cm: np.ndarray, diag: np.ndarray, true_all: np.ndarray) -> np.ndarray:
    """Matthews' correlation from confusion matrices, as sklearn's (0 when undefined)."""
    pred_all = cm.sum(axis=1)
    n = cm.sum(axis=(1, 2))
    cov_tp = diag.sum(axis=1) * n - (true_all * pred_all).sum(axis=1)
    cov_pp = n**2 - (pred_all**2).sum(axis=1)
    cov_tt = n**2 - (true_all**2).sum(axis=1)
    return _divide(cov_tp, np.sqrt(cov_tt * cov_pp))


def _proba_scorer(
    task: str, truth: np.ndarray, proba: np.ndarray, labels: list[str], metric: str
) -> Scorer:
    codes = _codes(truth, labels, len(labels))
    if metric == "log_loss":  # as the metrics module: clip at 1e-15, then sklearn's eps clip
        p = np.clip(np.clip(proba, 1e-15, 1.0), _EPS, 1 - _EPS)
        known = codes < len(labels)
        loss = np.zeros(len(codes))
        loss[known] = -np.log(p[known, codes[known]])
        return lambda idx: loss[idx].mean(axis=1)
    columns = [len(labels) - 1] if task == "binary" else list(range(len(labels)))
    ranked = [_RankedScores(proba[:, j], codes == j) for j in columns]
    area = _roc_auc if metric == "roc_auc" else _average_precision

    def score(idx: np.ndarray) -> np.ndarray:
        counts = [r.counts(idx) for r in ranked]
        per_class = np.stack([area(pos, neg) for pos, neg in counts], axis=1)
        n_pos = np.stack([pos.sum(axis=1) for pos, _ in counts], axis=1)
        n_neg = np.stack([neg.sum(axis=1) for _, neg in counts], axis=1)
        if task == "binary":  # both classes must occur, as sklearn's AUC asks
            return np.where((n_pos[:, 0] > 0) & (n_neg[:, 0] > 0), per_class[:, 0], np.nan)
        present = n_pos > 0  # a class absent from the resample is left out of the mean
        with np.errstate(invalid="ignore"):
            means = np.nanmean(np.where(present, per_class, np.nan), axis=1)
        return np.where(present.sum(axis=1) >= 2, means, np.nan)

    return score


class _RankedScores:
    """One class's scores grouped by distinct value (ascending), for weighted rank areas."""

    def __init__(self, scores: np.ndarray, positive: np.ndarray) -> None:
        _, group = np.unique(scores, return_inverse=True)
        self.group = group.astype(np.int64)
        self.n_groups = int(self.group.max()) + 1 if len(scores) else 0
        self.cell = self.group * 2 + positive.astype(np.int64)  # (group, is positive)

    def counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positives and negatives per score group, per resample: two ``(n_res, n_groups)``."""
        n_res = len(idx)
        flat = (self.cell[idx] + (np.arange(n_res) * 2 * self.n_groups)[:, None]).ravel()
        both = np.bincount(flat, minlength=n_res * 2 * self.n_groups)
        both = both.reshape(n_res, self.n_groups, 2).astype(float)
        return both[:, :, 1], both[:, :, 0]


def _roc_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """The area under the ROC curve: P(score of a positive > a negative's), ties count half."""
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _nan_divide(wins, pos.sum(axis=1) * neg.sum(axis=1))


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """sklearn's average precision: the precision at each threshold, weighted by the recall
    it adds (thresholds from the highest score down)."""
    pos, neg = pos[:, ::-1], neg[:, ::-1]
    hits = np.cumsum(pos, axis=1)
    precision = _divide(hits, hits + np.cumsum(neg, axis=1))
    return _nan_divide((pos * precision).sum(axis=1), pos.sum(axis=1))


def _nan_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full_like(num, np.nan, dtype=float), where=den != 0)


def _regression_scorer(y: np.ndarray, p: np.ndarray, metric: str) -> Scorer:
    err = p - y
    if metric == "mae":
        return lambda idx: np.abs(err)[idx].mean(axis=1)
    if metric == "rmse":
        return lambda idx: np.sqrt((err**2)[idx].mean(axis=1))
    if metric == "mape":
        share = np.abs(err) / np.maximum(np.abs(y), _EPS)
        return lambda idx: share[idx].mean(axis=1)

    def r2(idx: np.ndarray) -> np.ndarray:
        if idx.shape[1] < 2:
            return np.full(len(idx), np.nan)
        ys = y[idx]
        residual = (err**2)[idx].sum(axis=1)
        total = ((ys - ys.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        # sklearn's force_finite: a constant truth scores 1 when matched exactly, else 0
        flat = np.where(residual == 0, 1.0, 0.0)
        return np.where(total == 0, flat, 1.0 - _divide(residual, total))

    return r2

"""A scikit-learn scorer for the project's primary metric, greater always better."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shipyard.evaluate._metrics import aligned_proba, greater_is_better, score_predictions

__all__ = ["metric_scorer"]


def metric_scorer(
    task: str, metric: str, classes: Sequence[str] | None
) -> Callable[[Any, Any, Any], float]:
    """``scorer(estimator, x, y)`` computing ``metric`` as the run does (probabilities in
    ``classes`` order for classifiers), negated when lower is better, as sklearn expects."""
    sign = 1.0 if greater_is_better(metric) else -1.0

    def scorer(estimator: Any, x: Any, y: Any) -> float:
        truth = np.asarray(y)
        if task == "regression":
            output = np.asarray(estimator.predict(x), float)
            return sign * score_predictions(task, metric, truth.astype(float), output)
        labels = list(classes) if classes is not None else [str(c) for c in estimator.classes_]
        proba = aligned_proba(estimator, x, labels)
        truth = np.asarray([str(v) for v in truth], dtype=object)
        return sign * score_predictions(task, metric, truth, proba, labels)

    return scorer

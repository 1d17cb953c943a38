"""Evaluation: metrics for classification and regression, CV scorers."""

from shipyard.evaluate._metrics import (
    LOWER_IS_BETTER,
    Evaluation,
    aligned_proba,
    default_metric,
    evaluate_predictions,
    greater_is_better,
)

__all__ = [
    "LOWER_IS_BETTER",
    "Evaluation",
    "aligned_proba",
    "default_metric",
    "evaluate_predictions",
    "greater_is_better",
]

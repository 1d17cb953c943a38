"""Evaluation: metrics for classification and regression, CV scorers."""

from shipyard.evaluate._metrics import (
    LOWER_IS_BETTER,
    Evaluation,
    default_metric,
    evaluate_predictions,
    aligned_proba,
    greater_is_better,
)

__all__ = [
    "LOWER_IS_BETTER",
    "Evaluation",
    "default_metric",
    "evaluate_predictions",
    "aligned_proba",
    "greater_is_better",
]

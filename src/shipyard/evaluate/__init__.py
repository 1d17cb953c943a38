"""Evaluation: metrics, CV scoring helpers, the paired bootstrap, plots and the HTML run
report."""

from shipyard.evaluate._metrics import (
    KEY_METRICS,
    LOWER_IS_BETTER,
    Evaluation,
    aligned_proba,
    default_metric,
    evaluate_predictions,
    greater_is_better,
    score_predictions,
)
from shipyard.evaluate._paired import PROBA_METRICS, PairedBootstrap, paired_bootstrap
from shipyard.evaluate._report import CandidateRow, RunReport, render_run_report

__all__ = [
    "KEY_METRICS",
    "LOWER_IS_BETTER",
    "PROBA_METRICS",
    "CandidateRow",
    "Evaluation",
    "PairedBootstrap",
    "RunReport",
    "aligned_proba",
    "default_metric",
    "evaluate_predictions",
    "greater_is_better",
    "paired_bootstrap",
    "render_run_report",
    "score_predictions",
]

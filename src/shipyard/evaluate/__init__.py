"""Evaluation: metrics, CV scoring helpers, the paired bootstrap, plots, the model card and
the HTML run report."""

from shipyard.evaluate._association import Association, FeatureProfile
from shipyard.evaluate._card import CardSection, ModelCard, build_model_card
from shipyard.evaluate._curve_points import Curve, CurvePoints, curve_points
from shipyard.evaluate._curves import Calibration, LearningCurve
from shipyard.evaluate._explain import Importance, ShapSummary
from shipyard.evaluate._fairness import FAIRNESS_MEASURES, SliceReport, slice_metrics
from shipyard.evaluate._intervals import Interval, bootstrap_intervals, fold_intervals
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
from shipyard.evaluate._report import (
    CandidateRow,
    RunReport,
    render_report_plots,
    render_run_report,
)

__all__ = [
    "FAIRNESS_MEASURES",
    "KEY_METRICS",
    "LOWER_IS_BETTER",
    "PROBA_METRICS",
    "Association",
    "Calibration",
    "CandidateRow",
    "CardSection",
    "Curve",
    "CurvePoints",
    "Evaluation",
    "FeatureProfile",
    "Importance",
    "Interval",
    "LearningCurve",
    "ModelCard",
    "PairedBootstrap",
    "RunReport",
    "ShapSummary",
    "SliceReport",
    "aligned_proba",
    "bootstrap_intervals",
    "build_model_card",
    "curve_points",
    "default_metric",
    "evaluate_predictions",
    "fold_intervals",
    "greater_is_better",
    "paired_bootstrap",
    "render_report_plots",
    "render_run_report",
    "score_predictions",
    "slice_metrics",
]

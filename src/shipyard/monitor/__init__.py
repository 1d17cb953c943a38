"""Monitoring statistics: drift tests over a reference and a current sample, and a model's
performance in production, realised from late labels or estimated from its probabilities, and
the self-contained HTML report of a check (:func:`render_monitor_report`).

Pure: DataFrames and arrays in, result objects out, no store. The service that reads the
prediction log and records results is :mod:`shipyard.pipeline` (``check_model``).
"""

from shipyard.monitor._alerts import RuleOutcome, alert_signals, evaluate_rules, share_change
from shipyard.monitor._columns import ColumnKind, ColumnSamples, ValueCounts
from shipyard.monitor._distribution import QUANTILES, class_share_summary, quantile_summary
from shipyard.monitor._drift import (
    ColumnDrift,
    ColumnTable,
    DriftReport,
    Table,
    column_kinds,
    detect_drift,
)
from shipyard.monitor._methods import DriftMethod, DriftMethods, default_drift_methods
from shipyard.monitor._performance import (
    Calibration,
    MetricComparison,
    PerformanceReport,
    compare_performance,
    estimate_performance,
    fit_calibration,
)
from shipyard.monitor._report import (
    AlertLine,
    HistoryPoint,
    MonitorReport,
    render_monitor_report,
)

__all__ = [
    "QUANTILES",
    "AlertLine",
    "Calibration",
    "ColumnDrift",
    "ColumnKind",
    "ColumnSamples",
    "ColumnTable",
    "DriftMethod",
    "DriftMethods",
    "DriftReport",
    "HistoryPoint",
    "MetricComparison",
    "MonitorReport",
    "PerformanceReport",
    "RuleOutcome",
    "Table",
    "ValueCounts",
    "alert_signals",
    "class_share_summary",
    "column_kinds",
    "compare_performance",
    "default_drift_methods",
    "detect_drift",
    "estimate_performance",
    "evaluate_rules",
    "fit_calibration",
    "quantile_summary",
    "render_monitor_report",
    "share_change",
]

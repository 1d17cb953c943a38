"""Monitoring statistics: drift tests over a reference and a current sample.

Pure: DataFrames and arrays in, result objects out, no store. The service that reads the
prediction log and records results is :mod:`shipyard.pipeline` (``check_model``).
"""

from shipyard.monitor._columns import ColumnKind, ColumnSamples, ValueCounts
from shipyard.monitor._drift import ColumnDrift, DriftReport, column_kinds, detect_drift
from shipyard.monitor._methods import DriftMethod, DriftMethods, default_drift_methods

__all__ = [
    "ColumnDrift",
    "ColumnKind",
    "ColumnSamples",
    "DriftMethod",
    "DriftMethods",
    "DriftReport",
    "ValueCounts",
    "column_kinds",
    "default_drift_methods",
    "detect_drift",
]

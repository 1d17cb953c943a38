"""The pipeline service: runs a project, batch predictions, monitoring checks, late labels,
erasure requests, the quickstart project."""

from shipyard.pipeline._alerts import (
    AlertChannels,
    AlertOutcome,
    DeliveryError,
    Notice,
    apply_alerts,
    default_alert_channels,
)
from shipyard.pipeline._events import Event, EventHandler, ignore_events
from shipyard.pipeline._forget import FORGET_ACTION, ForgetResult, VersionLineage, forget
from shipyard.pipeline._inspect import Inspection, Plan, inspect_data, inspect_project, preflight
from shipyard.pipeline._labels import LabelSources, add_labels, default_label_sources
from shipyard.pipeline._monitor import (
    MonitorResult,
    ParquetTable,
    check_model,
    compare_files,
    drift_report,
    monitor_report,
    parse_window,
    read_pair,
)
from shipyard.pipeline._predict import predict_file, read_table, write_table
from shipyard.pipeline._predict_ray import predict_file_ray
from shipyard.pipeline._quickstart import QUICKSTART_SPEC, create_quickstart_project
from shipyard.pipeline._result import CandidateResult, RunResult
from shipyard.pipeline._run import WorkerResult, run_project, run_search_worker

__all__ = [
    "FORGET_ACTION",
    "QUICKSTART_SPEC",
    "AlertChannels",
    "AlertOutcome",
    "CandidateResult",
    "DeliveryError",
    "Event",
    "EventHandler",
    "ForgetResult",
    "Inspection",
    "LabelSources",
    "MonitorResult",
    "Notice",
    "ParquetTable",
    "Plan",
    "RunResult",
    "VersionLineage",
    "WorkerResult",
    "add_labels",
    "apply_alerts",
    "check_model",
    "compare_files",
    "create_quickstart_project",
    "default_alert_channels",
    "default_label_sources",
    "drift_report",
    "forget",
    "ignore_events",
    "inspect_data",
    "inspect_project",
    "monitor_report",
    "parse_window",
    "predict_file",
    "predict_file_ray",
    "preflight",
    "read_pair",
    "read_table",
    "run_project",
    "run_search_worker",
    "write_table",
]

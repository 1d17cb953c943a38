"""The model registry: versioned model packages, aliases and model URIs; late labels,
monitoring history, the audit log and gate decisions (the gate itself: ``registry.gate``)."""

from shipyard.model import ModelPackage, Predictions
from shipyard.registry._audit import AuditEntry, AuditLog
from shipyard.registry._catalog import AliasMove, ModelRecord, VersionRecord
from shipyard.registry._decisions import GateRecord
from shipyard.registry._labels import LabelIngest, LabelStore
from shipyard.registry._monitoring import (
    CheckRecord,
    ColumnResult,
    Incident,
    MetricResult,
    MonitoredVersion,
    MonitorHistory,
)
from shipyard.registry._registry import Registry
from shipyard.registry._uri import ModelRef, parse_model_uri

__all__ = [
    "AliasMove",
    "AuditEntry",
    "AuditLog",
    "CheckRecord",
    "ColumnResult",
    "GateRecord",
    "Incident",
    "LabelIngest",
    "LabelStore",
    "MetricResult",
    "ModelPackage",
    "ModelRecord",
    "ModelRef",
    "MonitorHistory",
    "MonitoredVersion",
    "Predictions",
    "Registry",
    "VersionRecord",
    "parse_model_uri",
]

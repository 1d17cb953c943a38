"""The project file: ``shipyard.yaml`` as validated pydantic models."""

import hashlib

from shipyard.spec._loader import load_spec, parse_spec
from shipyard.spec._models import (
    ALERT_SIGNALS,
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    AlertRuleSpec,
    AlertsSpec,
    AllowedValues,
    BadNumbers,
    CandidateSpec,
    ColumnDriftSpec,
    CsvSource,
    DataSpec,
    DriftSpec,
    Expectation,
    FeaturesSpec,
    MonitoringSpec,
    NotNull,
    ParamRange,
    ParquetSource,
    ProjectSpec,
    Range,
    Regex,
    RegistrySpec,
    RowCount,
    SearchSpec,
    SourceSpec,
    SplitSpec,
    SqlSource,
    TaskType,
    Unique,
    ValidationSpec,
)
from shipyard.spec._template import starter_spec

__all__ = [
    "ALERT_SIGNALS",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "AlertRuleSpec",
    "AlertsSpec",
    "AllowedValues",
    "BadNumbers",
    "CandidateSpec",
    "ColumnDriftSpec",
    "CsvSource",
    "DataSpec",
    "DriftSpec",
    "Expectation",
    "FeaturesSpec",
    "MonitoringSpec",
    "NotNull",
    "ParamRange",
    "ParquetSource",
    "ProjectSpec",
    "Range",
    "Regex",
    "RegistrySpec",
    "RowCount",
    "SearchSpec",
    "SourceSpec",
    "SplitSpec",
    "SqlSource",
    "TaskType",
    "Unique",
    "ValidationSpec",
    "load_spec",
    "parse_spec",
    "spec_hash",
    "starter_spec",
]


def spec_hash(spec: ProjectSpec) -> str:
    """A sha256 of the spec's canonical JSON: the same settings give the same hash."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()

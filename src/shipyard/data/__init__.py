"""Pure data logic: sources, fingerprints, schema inference (Signature), validation, splits,
leakage guards.

Nothing here knows about the metadata store: DataFrames in, result objects out.
"""

from shipyard.data._build import build_signature
from shipyard.data._chunks import SourceChunks, open_chunks
from shipyard.data._coerce import category_text, coerce_frame, to_numbers, to_text
from shipyard.data._fingerprint import fingerprint
from shipyard.data._leakage import LeakageFinding, LeakageKind, leakage_warnings
from shipyard.data._numbers import read_numbers
from shipyard.data._pii import (
    PII_INDEX_ARTIFACT,
    PII_KEY_ENV,
    PiiKey,
    PiiPolicy,
    PiiSuggestion,
    suggest_pii,
)
from shipyard.data._profile import (
    CategoricalProfile,
    ColumnProfile,
    DatasetProfile,
    DatetimeProfile,
    NumericProfile,
    ReferenceProfile,
    profile_frame,
    profile_values,
)
from shipyard.data._report import CheckResult, ValidationReport
from shipyard.data._schema import infer_schema
from shipyard.data._signature import ColumnKind, ColumnSchema, Signature
from shipyard.data._sources import load_source
from shipyard.data._split import cv_splitter, holdout_split
from shipyard.data._task import infer_task
from shipyard.data._validate import validate

__all__ = [
    "PII_INDEX_ARTIFACT",
    "PII_KEY_ENV",
    "CategoricalProfile",
    "CheckResult",
    "ColumnKind",
    "ColumnProfile",
    "ColumnSchema",
    "DatasetProfile",
    "DatetimeProfile",
    "LeakageFinding",
    "LeakageKind",
    "NumericProfile",
    "PiiKey",
    "PiiPolicy",
    "PiiSuggestion",
    "ReferenceProfile",
    "Signature",
    "SourceChunks",
    "ValidationReport",
    "build_signature",
    "category_text",
    "coerce_frame",
    "cv_splitter",
    "fingerprint",
    "holdout_split",
    "infer_schema",
    "infer_task",
    "leakage_warnings",
    "load_source",
    "open_chunks",
    "profile_frame",
    "profile_values",
    "read_numbers",
    "suggest_pii",
    "to_numbers",
    "to_text",
    "validate",
]

"""The metadata store (SQLAlchemy over SQLite or PostgreSQL, Alembic migrations) and the
artifact store (fsspec, every file recorded with its sha256, encrypted at rest when
``SHIPYARD_ENCRYPTION_KEY`` holds a key), and the prediction log's entries, sinks and reader
(:func:`read_predictions`), and erasure from it (:func:`erase_predictions`).

Example:
    >>> from shipyard.store import Store
    >>> store = Store.open(root=".shipyard")  # doctest: +SKIP
    >>> store = Store.from_env()  # SHIPYARD_STORE_URL / SHIPYARD_HOME / ...  # doctest: +SKIP
    >>> sha = store.artifacts.put("notes/readme.txt", b"hello")  # doctest: +SKIP
"""

from shipyard.store import _tables as tables
from shipyard.store._artifacts import ArtifactRecord, ArtifactStore, check_artifact_path
from shipyard.store._batched import Backoff, BatchedWriter, BatchedWriterStats
from shipyard.store._crypto import ENCRYPTION_KEY_ENV, EncryptionKey, generate_key_text
from shipyard.store._db import (
    HEAD_REVISION,
    Store,
    default_store_url,
    store_location,
)
from shipyard.store._erasure import (
    ErasedPrediction,
    LogErasure,
    Subject,
    erase_predictions,
    logged_values,
)
from shipyard.store._predlog import (
    BASE_COLUMNS,
    ParquetSink,
    PredictionEntry,
    PredictionSink,
    SqlSink,
    open_sink,
    read_predictions,
)
from shipyard.store._tables import dialect_insert, metadata, upsert_latest_metrics
from shipyard.store._urls import redact_root, redact_url

__all__ = [
    "BASE_COLUMNS",
    "ENCRYPTION_KEY_ENV",
    "HEAD_REVISION",
    "ArtifactRecord",
    "ArtifactStore",
    "Backoff",
    "BatchedWriter",
    "BatchedWriterStats",
    "EncryptionKey",
    "ErasedPrediction",
    "LogErasure",
    "ParquetSink",
    "PredictionEntry",
    "PredictionSink",
    "SqlSink",
    "Store",
    "Subject",
    "check_artifact_path",
    "default_store_url",
    "dialect_insert",
    "erase_predictions",
    "generate_key_text",
    "logged_values",
    "metadata",
    "open_sink",
    "read_predictions",
    "redact_root",
    "redact_url",
    "store_location",
    "tables",
    "upsert_latest_metrics",
]

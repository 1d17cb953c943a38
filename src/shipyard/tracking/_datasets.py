"""Dataset snapshots: what data a run read, recorded once per fingerprint."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from shipyard.store import Store, dialect_insert, redact_url, tables

__all__ = ["record_dataset"]


def record_dataset(
    store: Store,
    *,
    fingerprint: str,
    source: Mapping[str, Any],
    n_rows: int,
    n_columns: int,
    schema: Mapping[str, Any],
) -> None:
    """Record a dataset snapshot (a second run on the same data records nothing new).

    Args:
        store: the metadata store.
        fingerprint: the data's content hash.
        source: where it came from (a database URL's password is redacted here).
        n_rows, n_columns: its shape.
        schema: its signature, as JSON.
    """
    source = dict(source)
    if "url" in source:  # never store a database password
        source["url"] = redact_url(str(source["url"]))
    row = {
        "fingerprint": fingerprint,
        "source": json.dumps(source, default=str),
        "n_rows": int(n_rows),
        "n_columns": int(n_columns),
        "schema": dict(schema),
        "created_at": time.time(),
    }
    with store.begin() as conn:
        insert = dialect_insert(conn, tables.datasets).values(**row)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["fingerprint"]))

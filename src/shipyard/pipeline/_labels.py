"""Late labels: read from a source, keyed by prediction id or a request field, stored.

A label source (:class:`LabelSources`) reads a table of labels: a CSV, TSV or Parquet file,
or a database query; more register through :meth:`LabelSources.add`. :func:`add_labels` checks
the key and label columns, normalises both to text as the server logged them (``1.0`` read from
a CSV with gaps is ``1``), and stores them through the registry's
:class:`~shipyard.registry.LabelStore`, reporting what it did not add and why.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard import data as sd
from shipyard.errors import DataError
from shipyard.pipeline._predict import read_table
from shipyard.plugins import PluginRegistry, load_plugins
from shipyard.registry import LabelIngest, LabelStore, Registry
from shipyard.store import Store, read_predictions

__all__ = [
    "LabelReader",
    "LabelSources",
    "add_labels",
    "as_text",
    "default_label_sources",
    "log_column",
]


def log_column(key: str) -> str:
    """The prediction log's column a label key joins on: the ids the server returned
    (``prediction_id``, ``request_id``) or a request field."""
    return key if key in ("prediction_id", "request_id") else f"input.{key}"


def as_text(value: Any) -> str | None:
    """A key or label as text: ``1.0`` read from a CSV with gaps is ``1``, as the server
    wrote it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return as_text(value.item())
    return str(value)


LabelReader = Callable[[str, dict[str, Any]], pd.DataFrame]
"""``reader(source, options) -> DataFrame`` of labels (options: ``query`` for SQL)."""


class LabelSources:
    """Where labels can be read from, by name; built-ins registered like a plugin's.

    Build one per application with :func:`default_label_sources`. The source that reads a
    location is the last registered one that accepts it, so a plugin can take over a kind of
    location from a built-in.
    """

    def __init__(self) -> None:
        self._readers: PluginRegistry[tuple[Callable[[str], bool], LabelReader]] = PluginRegistry(
            "label source"
        )

    def add(self, name: str, accepts: Callable[[str], bool], reader: LabelReader) -> None:
        """Register a source: ``accepts(source)`` says whether ``reader`` reads it.

        Raises:
            ValueError: a source of that name is already registered.
        """
        self._readers.add(name, (accepts, reader))

    def read(self, source: str, options: dict[str, Any] | None = None) -> pd.DataFrame:
        """Read labels from the last registered source that accepts ``source``.

        Raises:
            DataError: no registered source reads it.
        """
        for accepts, reader in reversed(list(self._readers)):
            if accepts(source):
                return reader(source, options or {})
        msg = (
            f"cannot read labels from {source!r}: expected a .csv, .tsv or .parquet file or a "
            f"SQLAlchemy URL with --query (sources: {', '.join(self._readers.names())})"
        )
        raise DataError(msg)


def default_label_sources() -> LabelSources:
    """Label sources for files (CSV, TSV, Parquet), SQL queries, and the installed plugins'
    (each ``register(sources)`` of the ``shipyard.label_sources`` entry-point group)."""
    sources = LabelSources()
    sources.add("sql", lambda s: "://" in s and not s.startswith("file://"), _read_sql_labels)
    sources.add(
        "file",
        lambda s: Path(s).suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq"),
        lambda s, _options: read_table(Path(s)),
    )
    load_plugins("label_sources", sources)
    return sources


def _read_sql_labels(url: str, options: dict[str, Any]) -> pd.DataFrame:
    from shipyard.data import load_source
    from shipyard.spec import SqlSource

    query = options.get("query")
    if not query:
        msg = f"labels from a database need a query: give --query 'SELECT ...' with {url!r}"
        raise DataError(msg)
    return load_source(SqlSource(type="sql", url=url, query=str(query)), Path.cwd())


def add_labels(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    store: Store,
    model: str,
    predictions: str | os.PathLike[str] | None,
    key: str = "prediction_id",
    label_column: str = "label",
    query: str | None = None,
    replace: bool = False,
    sources: LabelSources | None = None,
) -> LabelIngest:
    """Ingest labels that arrived after the predictions.

    Args:
        source: a CSV/Parquet file, a SQLAlchemy URL (with ``query``), or a DataFrame.
        store: the metadata store.
        model: the registered model's name.
        predictions: the prediction log, to report keys no logged prediction has (``None``:
            do not check).
        key: the column joining labels to predictions: ``prediction_id`` (the id of each
            prediction in a response), ``request_id`` (``X-Request-ID``, for requests of one
            record) or a request field (``order_id``; a personal-data field the model hashes
            is hashed here too, with ``SHIPYARD_PII_KEY``, so labels never hold it in clear).
        label_column: the column holding the true label or value.
        query: the SQL query, for a database source.
        replace: a key already labelled gets the new label (else it keeps the old one).
        sources: the label sources (:func:`default_label_sources`).

    Returns:
        What was added, and what was not and why.

    Raises:
        DataError: the source cannot be read or lacks the key or label column.
        ModelNotFoundError: no model of that name is registered.
    """
    latest = Registry(store).resolve(f"models:/{model}")
    where = "the labels" if isinstance(source, pd.DataFrame) else str(source)
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        frame = (sources or default_label_sources()).read(str(source), {"query": query})
    missing = [c for c in (key, label_column) if c not in frame.columns]
    if missing:
        msg = (
            f"{where} has no column {missing[0]!r}; its columns are "
            f"{[str(c) for c in frame.columns]} (choose them with --key and --label-column)"
        )
        raise DataError(msg)
    keys = frame[key].map(as_text)
    pii = sd.PiiPolicy(latest.lineage.get("pii") or {}, sd.PiiKey.from_env())
    if key in pii.actions:  # the log holds this field hashed, or not at all
        if pii.actions[key] == "drop":
            msg = (
                f"--key {key!r} is a personal-data column the model drops (features.pii): the "
                "prediction log never holds it; join labels on prediction_id, or declare the "
                "column 'hash' to keep joins"
            )
            raise DataError(msg)
        keys = keys.map(pii.require_key(f"model {model!r}").hash)
    values = frame[label_column].map(as_text)
    present = keys.notna() & values.notna()
    known = _logged_keys(predictions, model, key) if predictions is not None else None
    ingest = LabelStore(store).add(
        model,
        keys[present].tolist(),
        values[present].tolist(),
        key_column=key,
        source=where,
        known=known,
        replace=replace,
    )
    return dataclasses.replace(ingest, n_rows=len(frame), n_missing=int((~present).sum()))


def _logged_keys(predictions: str | os.PathLike[str], model: str, key: str) -> set[str]:
    try:
        logged = read_predictions(predictions, model=model)
    except DataError:  # no log yet: every key is unknown, and reported so
        return set()
    column = log_column(key)
    if column not in logged.columns:
        return set()
    return {k for k in logged[column].map(as_text) if k is not None}

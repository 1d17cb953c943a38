"""The right to erasure (``shipyard forget``): a subject's predictions and labels removed, the
model versions trained on them named, the request recorded in the audit log.

A subject is a request field and its value (``customer_id`` = ``C-1042``). :func:`forget`

1. removes every logged prediction whose field holds the value, in clear or as its keyed hash
   (:func:`shipyard.store.erase_predictions`: Parquet files rewritten atomically, SQL rows
   deleted in one transaction);
2. removes, in one transaction, the labels of those predictions: keyed by their
   ``prediction_id``, by the field itself (its value or hash), or by another key
   (``request_id``, ``order_id``) whose value only the subject's predictions held;
3. lists every version of the models in scope with what its training data says about the
   subject, from the ``pii_index.parquet`` its run kept (the keyed hashes of the PII columns'
   values): trained on the subject (retrain without them, then retire it), not trained on
   them, or unknown (no index: no ``SHIPYARD_PII_KEY`` at training, or the field was not
   declared PII); training data is never read again;
4. records who asked, when, the field, the value's keyed hash (never the value) and the
   counts in the audit log.

The value is never written or printed: the hashing key ``SHIPYARD_PII_KEY`` is needed so that
the audit log and the output can name the subject by its keyed hash. A dry run does 1-3
without changing anything, and records nothing.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipyard import data as sd
from shipyard.errors import DataError, ShipyardError
from shipyard.pipeline._labels import as_text, log_column
from shipyard.registry import AuditLog, LabelStore, Registry, VersionRecord
from shipyard.store import LogErasure, Store, Subject, erase_predictions, logged_values
from shipyard.tracking import load_run_artifact

__all__ = ["FORGET_ACTION", "ForgetResult", "VersionLineage", "forget"]

logger = logging.getLogger(__name__)

FORGET_ACTION = "forget"
"""The audit log's action for an erasure."""

LineageStatus = Literal["trained", "not_trained", "unknown"]


@dataclass(frozen=True)
class VersionLineage:
    """What a model version's training data says about the subject.

    Attributes:
        model: the model's name.
        version: the version.
        run_id: the run that trained it, if recorded.
        status: ``trained`` (its training data held the subject: retrain without them, then
            retire it), ``not_trained``, or ``unknown`` (``reason`` says why).
        reason: why, in a sentence.
    """

    model: str
    version: int
    run_id: str | None
    status: LineageStatus
    reason: str

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True)
class ForgetResult:
    """What :func:`forget` did (or, in a dry run, would do).

    Attributes:
        column: the request field naming the subject.
        value_hash: the value's keyed hash, how the subject is named everywhere.
        key_id: the hashing key's public id.
        model: the model in scope, ``None`` for every model.
        dry_run: nothing was changed or recorded.
        prediction_log: the log erased from (a folder, or a URL without password), ``None``
            when there was none.
        prediction_ids: the subject's predictions removed.
        labels_removed: labels removed.
        files_rewritten: Parquet log files rewritten without the subject's rows.
        files_removed: Parquet log files removed (every row was the subject's).
        versions: every version of the models in scope, with what its training says.
        audit_id: the audit log entry, ``None`` for a dry run.
        warnings: what may keep the erasure from being complete.
    """

    column: str
    value_hash: str
    key_id: str
    model: str | None
    dry_run: bool
    prediction_log: str | None
    prediction_ids: tuple[str, ...]
    labels_removed: int
    files_rewritten: int
    files_removed: int
    versions: tuple[VersionLineage, ...]
    audit_id: int | None
    warnings: tuple[str, ...] = ()

    @property
    def predictions_removed(self) -> int:
        """How many logged predictions were the subject's."""
        return len(self.prediction_ids)

    @property
    def retrain(self) -> list[VersionLineage]:
        """The versions trained on the subject: retrain without them, then retire these."""
        return [v for v in self.versions if v.status == "trained"]

    @property
    def unknown(self) -> list[VersionLineage]:
        """The versions whose training data cannot be checked (no PII index)."""
        return [v for v in self.versions if v.status == "unknown"]


def forget(
    column: str,
    value: Any,
    *,
    store: Store,
    predictions: str | os.PathLike[str] | None,
    model: str | None = None,
    dry_run: bool = False,
    user: str = "shipyard",
    key: sd.PiiKey | None = None,
) -> ForgetResult:
    """Erase a subject's predictions and labels, and name the versions trained on them.

    Args:
        column: the request field naming the subject (``customer_id``).
        value: its value; a keyed hash (``pii:`` and 32 hex digits) stands for itself.
        store: the metadata store (labels, registry, runs, audit log).
        predictions: the prediction log (a folder or a SQLAlchemy URL); ``None``: none.
        model: only this model; ``None`` for every model.
        dry_run: find and count; change and record nothing.
        user: who asks (recorded in the audit log).
        key: the PII hashing key; ``None`` takes ``SHIPYARD_PII_KEY``.

    Returns:
        What was removed, the versions and what their training says, the audit entry.

    Raises:
        DataError: no key is set, the column or value is empty, or the column is known
            nowhere (no version's input or PII column, no label key, not in the log).
        ModelNotFoundError: ``model`` is not registered.
        StoreError: a log file could not be rewritten, or the database failed; what was
            done before stays done (run it again to finish), and the failure is recorded.
    """
    key = key or sd.PiiKey.from_env()
    if key is None:
        msg = (
            f"shipyard forget needs {sd.PII_KEY_ENV}: the audit log and the output name the "
            "subject by the value's keyed hash, and hashed fields are found by it; set the key "
            "the models were trained with"
        )
        raise DataError(msg)
    subject = Subject(column, value, key)
    value_hash = subject.keyed_hash
    assert value_hash is not None  # a key is set
    registry = Registry(store)
    if model is not None:
        registry.resolve(f"models:/{model}")
    names = [model] if model is not None else [m.name for m in registry.list_models()]
    versions, known, warnings = _lineage(store, registry, names, subject, key)
    labels = LabelStore(store)
    key_columns = labels.key_columns_by_model(model)
    known = known or any(column in columns for columns in key_columns.values())
    keep = sorted({log_column(k) for cs in key_columns.values() for k in cs} - {"prediction_id"})
    audit = {
        "column": column,
        "value_hash": value_hash,
        "key_id": key.key_id,
        "model": model,
        "prediction_log": None,
    }
    try:
        erasure = (
            None
            if predictions is None
            else erase_predictions(
                predictions, subject, model=model, keep_values=keep, dry_run=dry_run
            )
        )
    except Exception as exc:
        _record_failure(store, user, audit, exc, dry_run, model)
        raise
    audit["prediction_log"] = None if erasure is None else erasure.target
    if not known and (erasure is None or not erasure.column_seen):
        msg = (
            f"{column!r} is no input or PII column of {_scope(model)}, no label is keyed by it "
            "and the prediction log holds no such field; check --column (nothing was changed)"
        )
        raise DataError(msg)
    found = erasure.records if erasure is not None else ()
    try:
        wanted = _label_keys(predictions, subject, erasure, key_columns, labels)
        labels_removed = labels.remove(wanted, dry_run=dry_run)
    except Exception as exc:
        _record_failure(
            store, user, {**audit, "predictions_removed": len(found)}, exc, dry_run, model
        )
        raise
    result = ForgetResult(
        column=column,
        value_hash=value_hash,
        key_id=key.key_id,
        model=model,
        dry_run=dry_run,
        prediction_log=None if erasure is None else erasure.target,
        prediction_ids=tuple(r.prediction_id for r in found),
        labels_removed=labels_removed,
        files_rewritten=0 if erasure is None else erasure.files_rewritten,
        files_removed=0 if erasure is None else erasure.files_removed,
        versions=tuple(versions),
        audit_id=None,
        warnings=tuple(warnings),
    )
    if dry_run:
        return result
    entry = AuditLog(store).record(
        FORGET_ACTION, user, {**audit, "status": "done", **_counts(result)}, model=model
    )
    logger.info("forget %s=%s: audit entry %d", column, value_hash, entry.id)
    return dataclasses.replace(result, audit_id=entry.id)


def _scope(model: str | None) -> str:
    return f"model {model!r}" if model is not None else "any registered model"


def _counts(result: ForgetResult) -> dict[str, Any]:
    return {
        "predictions_removed": result.predictions_removed,
        "labels_removed": result.labels_removed,
        "files_rewritten": result.files_rewritten,
        "files_removed": result.files_removed,
        "versions": [
            {"model": v.model, "version": v.version, "status": v.status} for v in result.versions
        ],
        "warnings": list(result.warnings),
    }


def _record_failure(
    store: Store,
    user: str,
    audit: Mapping[str, Any],
    exc: Exception,
    dry_run: bool,
    model: str | None,
) -> None:
    """Record an erasure that failed part-way (what was done before stays done)."""
    if dry_run:
        return
    # only Shipyard's own messages, which never hold the value (a driver's may hold parameters)
    error = f"{type(exc).__name__}: {exc}" if isinstance(exc, ShipyardError) else type(exc).__name__
    try:
        AuditLog(store).record(
            FORGET_ACTION, user, {**audit, "status": "failed", "error": error}, model=model
        )
    except ShipyardError as audit_exc:  # the store itself may be what failed
        exc.add_note(f"the failed erasure could not be recorded in the audit log: {audit_exc}")


def _label_keys(
    predictions: str | os.PathLike[str] | None,
    subject: Subject,
    erasure: LogErasure | None,
    key_columns: Mapping[str, Sequence[str]],
    labels: LabelStore,
) -> dict[tuple[str, str], set[str]]:
    """The labels that belong to the subject, as ``(model, key column) -> keys``: by the
    removed predictions' ids, by the subject's field, or by another key whose values only the
    subject's predictions held."""
    records = erasure.records if erasure is not None else ()
    wanted: dict[tuple[str, str], set[str]] = {}
    for name, columns in key_columns.items():
        mine = [r for r in records if r.model == name]
        for key_column in columns:
            if key_column == subject.column:
                keys = set(labels.keys_where(key_column, subject.matches, model=name).get(name, []))
            elif key_column == "prediction_id":
                keys = {r.prediction_id for r in mine}
            else:
                column = log_column(key_column)
                values = (as_text(r.values.get(column)) for r in mine)
                keys = {v for v in values if v is not None}
                if keys and predictions is not None:  # keep the keys other records still hold
                    keys -= logged_values(
                        predictions,
                        model=name,
                        column=column,
                        wanted=keys,
                        normal=as_text,
                        subject=subject,
                    )
            if keys:
                wanted[(name, key_column)] = keys
    return wanted


def _lineage(
    store: Store, registry: Registry, names: Sequence[str], subject: Subject, key: sd.PiiKey
) -> tuple[list[VersionLineage], bool, list[str]]:
    """Each version's verdict; whether any version knows the column; warnings."""
    versions: list[VersionLineage] = []
    known = False
    warnings: list[str] = []
    for name in names:
        for record in registry.list_versions(name):
            inputs = {c.get("name") for c in record.signature.get("inputs", [])}
            try:
                meta = registry.package_metadata(record)
            except ShipyardError as exc:
                versions.append(_unknown(record, f"its package metadata cannot be read: {exc}"))
                known = known or subject.column in inputs
                continue
            pii = dict(meta.get("pii") or record.lineage.get("pii") or {})
            known = known or subject.column in inputs or subject.column in pii
            trained_key = meta.get("pii_key_id")
            if pii.get(subject.column) == "hash" and trained_key not in (None, key.key_id):
                warnings.append(
                    f"{record.uri} hashed {subject.column!r} with key id {trained_key}, "
                    f"{sd.PII_KEY_ENV} has key id {key.key_id}: its logged hashes cannot be "
                    "matched; run forget again with the key it was trained with"
                )
            versions.append(_verdict(store, record, pii, trained_key, subject, key))
    return versions, known, warnings


def _unknown(record: VersionRecord, reason: str) -> VersionLineage:
    return VersionLineage(record.name, record.version, record.run_id, "unknown", reason)


def _verdict(
    store: Store,
    record: VersionRecord,
    pii: Mapping[str, str],
    trained_key: str | None,
    subject: Subject,
    key: sd.PiiKey,
) -> VersionLineage:
    column = subject.column
    if record.run_id is None:
        return _unknown(record, "no training run is recorded")
    if column not in pii:
        return _unknown(
            record,
            f"{column!r} was not a PII column (features.pii) when it was trained: no index of "
            "its values was kept",
        )
    if trained_key not in (None, key.key_id):
        return _unknown(
            record,
            f"its PII index was made with key id {trained_key}; {sd.PII_KEY_ENV} has key id "
            f"{key.key_id}",
        )
    try:
        data = load_run_artifact(store, record.run_id, sd.PII_INDEX_ARTIFACT)
    except ShipyardError as exc:
        return _unknown(record, f"its PII index cannot be read: {exc}")
    if data is None:
        return _unknown(record, f"no PII index: {sd.PII_KEY_ENV} was not set when it was trained")
    if _indexed(data, column, subject.keyed_hash):
        return VersionLineage(
            record.name,
            record.version,
            record.run_id,
            "trained",
            "its training data held the subject: retrain without them, then retire it",
        )
    return VersionLineage(
        record.name, record.version, record.run_id, "not_trained", "not in its training data"
    )


def _indexed(data: bytes, column: str, value_hash: str | None) -> bool:
    import pyarrow.parquet as pq

    table = pq.read_table(
        io.BytesIO(data), filters=[("column", "=", column), ("hash", "=", value_hash)]
    )
    return bool(table.num_rows)

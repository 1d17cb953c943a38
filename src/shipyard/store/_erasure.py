"""Erasure from the prediction log: one subject's records removed, in place, from either sink.

A :class:`Subject` is a request field (``customer_id``) and a value. A logged value is the
subject's when it is the value itself, written any way (``42``, ``42.0`` and ``"42"`` alike,
text stripped: the normalisation of :meth:`shipyard.data.PiiKey.hash`), or when it is the
value's keyed hash (``pii:...``), which is what the server logs for a hashed PII field. The
subject never holds the value in clear: only its keyed hash, and its hash under a random key
made for this subject alone, to compare logged values with.

:func:`erase_predictions` removes the subject's records from a Parquet log folder or a SQL
``prediction_log`` table:

- Parquet: only the field's column of each file is read first; a file without a match is left
  alone. A file with matches is rewritten without those rows under a hidden temporary name,
  synced, then renamed over the old one (or removed, when nothing is left), so a crash leaves
  the old file or the new one, never part of one; an encrypted file is written encrypted again
  (with ``SHIPYARD_ENCRYPTION_KEY``, as the server writes new files). Erasures of one folder
  take turns (a lock file in the folder), so that two never rewrite a file from the same old
  copy.
- SQL: the candidate rows' inputs are read and checked in Python (portable across SQLite and
  PostgreSQL JSON), and the matches deleted by id, all in one transaction.

:func:`logged_values` says which of some values the log still holds outside the subject's
records, so that labels keyed by another field can be told apart: orphaned by the erasure, or
still joining other predictions.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from shipyard.data import PiiKey
from shipyard.errors import DataError, StoreError
from shipyard.store._crypto import EncryptionKey, resolve_key
from shipyard.store._db import redact_url
from shipyard.store._predlog import (
    _create_engine,
    _file_fragment,
    _file_schema,
    _locate,
    _log_table,
    _segment,
    _unreadable,
    _window_files,
    write_atomically,
)

__all__ = ["ErasedPrediction", "LogErasure", "Subject", "erase_predictions", "logged_values"]

_HASHED = re.compile(r"pii:[0-9a-f]{32}")
_LOCK_FILE = ".forget.lock"
_CHUNK = 5_000  # ids per DELETE ... IN (...), rows per fetch
_IDS = ("prediction_id", "request_id")


class Subject:
    """Whose records to find: a request field and a value, kept only as hashes.

    Args:
        column: the request field (the log's ``input.<column>``).
        value: the subject's value (a number or text); a keyed hash (``pii:`` and 32 hex
            digits) stands for itself: records holding that hash match.
        key: the PII hashing key, so that fields the server logged hashed match too.

    Raises:
        DataError: the column or the value is empty.
    """

    def __init__(self, column: str, value: Any, key: PiiKey | None) -> None:
        if not column.strip():
            msg = "the column is empty; name the request field that identifies the subject"
            raise DataError(msg)
        self._probe = PiiKey(secrets.token_hex(32))  # this subject's own throwaway key
        text_hash = self._probe.hash(value)
        if text_hash is None or text_hash == self._probe.hash(""):
            msg = "the value is empty; give the value that identifies the subject"
            raise DataError(msg)
        self.column = column
        if isinstance(value, str) and _HASHED.fullmatch(value.strip()):
            self.keyed_hash: str | None = value.strip()
            self._clear: str | None = None
        else:
            self.keyed_hash = None if key is None else key.hash(value)
            self._clear = text_hash

    def __repr__(self) -> str:
        return f"Subject(column={self.column!r}, keyed_hash={self.keyed_hash!r})"

    @property
    def log_column(self) -> str:
        """The field's column in a Parquet log (``input.<column>``)."""
        return f"input.{self.column}"

    def matches(self, value: Any) -> bool:
        """Whether a logged value is the subject's (its value, or its keyed hash)."""
        if value is None:
            return False
        if self.keyed_hash is not None and value == self.keyed_hash:
            return True
        return self._clear is not None and self._probe.hash(value) == self._clear

    def mask(self, column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | None:
        """Which rows of a logged column are the subject's; ``None`` when none is.

        Each distinct value is checked once, then the rows holding a matching one are found
        by Arrow.
        """
        import pyarrow.compute as pc

        hits = [v for v in pc.unique(column).to_pylist() if self.matches(v)]
        if not hits:
            return None
        return pc.is_in(column, value_set=pa.array(hits, type=column.type))


@dataclass(frozen=True)
class ErasedPrediction:
    """One logged prediction of the subject's (removed, or found by a dry run).

    Attributes:
        model: the model's name.
        version: its version, as logged (text).
        prediction_id: the id the client got.
        request_id: the request's id.
        values: the values of the log columns asked for (``input.order_id``, ...) that the
            record has.
    """

    model: str
    version: str
    prediction_id: str
    request_id: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogErasure:
    """What erasing a subject from a prediction log did (or, in a dry run, would do).

    Attributes:
        target: the log's folder, or its URL with any password hidden.
        records: the subject's predictions.
        files_scanned: Parquet files looked at (0 for SQL).
        files_rewritten: Parquet files rewritten without the subject's rows.
        files_removed: Parquet files removed because every row was the subject's.
        column_seen: whether any file or row holds the field at all (a mistyped field holds
            nothing).
        dry_run: nothing was changed.
    """

    target: str
    records: tuple[ErasedPrediction, ...] = ()
    files_scanned: int = 0
    files_rewritten: int = 0
    files_removed: int = 0
    column_seen: bool = False
    dry_run: bool = False

    @property
    def prediction_ids(self) -> list[str]:
        """The removed records' prediction ids, in the order they were found."""
        return [r.prediction_id for r in self.records]


def erase_predictions(
    target: str | os.PathLike[str],
    subject: Subject,
    *,
    model: str | None = None,
    keep_values: Sequence[str] = (),
    dry_run: bool = False,
) -> LogErasure:
    """Remove every logged prediction whose request field is the subject's.

    Args:
        target: the log's folder, ``file://`` URL or SQLAlchemy URL (as ``serve
            --prediction-log`` took it).
        subject: whose records.
        model: only this model's predictions; ``None`` for every model in the log.
        keep_values: log columns (``request_id``, ``input.order_id``) whose values to report
            for each removed record (to find the labels keyed by them).
        dry_run: find and count, change nothing.

    Returns:
        The removed records and what was rewritten.

    Raises:
        DataError: the Parquet folder does not exist, or a file cannot be read.
        EncryptionError: a file is encrypted and ``SHIPYARD_ENCRYPTION_KEY`` is unset or holds
            another key.
        StoreError: a file could not be rewritten (it is left as it was), or the database
            failed (nothing was deleted).
        ShipyardError: ``target`` is not a folder or a usable URL.
    """
    where = _locate(target)
    if isinstance(where, Path):
        return _erase_parquet(where, subject, model, keep_values, dry_run)
    return _erase_sql(where, subject, model, keep_values, dry_run)


def logged_values(
    target: str | os.PathLike[str],
    *,
    model: str,
    column: str,
    wanted: Collection[str],
    normal: Callable[[Any], str | None],
    subject: Subject,
) -> set[str]:
    """Which of ``wanted`` a model's log still holds in ``column`` outside the subject's records.

    Args:
        target: the log (as for :func:`erase_predictions`).
        model: the model's name.
        column: a log column: ``prediction_id``, ``request_id`` or ``input.<field>``.
        wanted: the values looked for, as text.
        normal: turns a logged value into text as ``wanted`` holds it.
        subject: records of the subject's are left out (they are being erased).

    Raises:
        DataError: the Parquet folder does not exist, or a file cannot be read.
    """
    if not wanted:
        return set()
    where = _locate(target)
    values = (
        _parquet_values(where, model, column, subject)
        if isinstance(where, Path)
        else _sql_values(where, model, column, subject)
    )
    found: set[str] = set()
    for value in values:
        text = normal(value)
        if text is not None and text in wanted:
            found.add(text)
    return found


# -- Parquet ---------------------------------------------------------------------------------


def _model_dirs(root: Path, model: str | None) -> list[Path]:
    if not root.is_dir():
        msg = f"no prediction log at {root}: the folder does not exist; check --predictions"
        raise DataError(msg)
    if model is not None:
        return [root / f"model={_segment(model)}"]
    return sorted(p for p in root.glob("model=*") if p.is_dir())


def _log_files(root: Path, model: str | None) -> Iterator[Path]:
    for model_dir in _model_dirs(root, model):
        yield from _window_files(model_dir, None, None, None)


def _erase_parquet(
    root: Path, subject: Subject, model: str | None, keep: Sequence[str], dry_run: bool
) -> LogErasure:
    import pyarrow.dataset as ds

    parquet, key = ds.ParquetFileFormat(), resolve_key(None)
    records: list[ErasedPrediction] = []
    scanned = rewritten = removed = 0
    seen = False
    with _turn(root, dry_run):
        for path in _log_files(root, model):
            scanned += 1
            fragment = _file_fragment(parquet, path, key)
            if subject.log_column not in _file_schema(fragment, path).names:
                continue
            seen = True
            if subject.mask(_read(fragment, path, [subject.log_column]).column(0)) is None:
                continue
            table = _read(fragment, path, None)
            mask = subject.mask(table.column(subject.log_column))
            assert mask is not None  # the same file, read whole this time
            records += _records(table.filter(mask), keep)
            if dry_run:
                continue
            kept = table.filter(_invert(mask))
            if kept.num_rows == 0:
                _remove(path)
                removed += 1
            else:
                _rewrite(path, kept, _compression(fragment), key)
                rewritten += 1
    return LogErasure(str(root), tuple(records), scanned, rewritten, removed, seen, dry_run)


def _read(fragment: Any, path: Path, columns: list[str] | None) -> pa.Table:
    try:
        table: pa.Table = fragment.to_table(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc
    return table


def _invert(mask: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    return pc.invert(mask)


def _records(table: pa.Table, keep: Sequence[str]) -> list[ErasedPrediction]:
    rows = table.select(
        [c for c in (*_IDS, "model_name", "model_version") if c in table.column_names]
    )
    kept = {c: table.column(c).to_pylist() for c in keep if c in table.column_names}
    out = []
    for i, row in enumerate(rows.to_pylist()):
        values = {c: v[i] for c, v in kept.items() if v[i] is not None}
        out.append(
            ErasedPrediction(
                str(row["model_name"]),
                str(row["model_version"]),
                str(row["prediction_id"]),
                str(row["request_id"]),
                values,
            )
        )
    return out


def _compression(fragment: Any) -> str:
    """The codec the file was written with (the server's default, zstd, for an empty file)."""
    meta = fragment.metadata
    if meta.num_row_groups and meta.num_columns:
        return str(meta.row_group(0).column(0).compression).lower()
    return "zstd"  # pragma: no cover - the server never writes a file without rows


def _rewrite(path: Path, table: pa.Table, compression: str, key: EncryptionKey | None) -> None:
    import pyarrow.parquet as pq

    stream = pa.BufferOutputStream()
    pq.write_table(table, stream, compression=compression)
    buffer = stream.getvalue()
    data = buffer if key is None else key.seal(buffer.to_pybytes())
    try:
        write_atomically(path, data, tmp_suffix=f".forget-{os.getpid()}")
        _sync_folder(path.parent)
    except OSError as exc:
        raise _not_rewritten(path, exc) from exc


def _remove(path: Path) -> None:
    try:
        path.unlink()
        _sync_folder(path.parent)
    except OSError as exc:
        raise _not_rewritten(path, exc) from exc


def _not_rewritten(path: Path, exc: OSError) -> StoreError:
    msg = (
        f"cannot rewrite the prediction log file {path}: {exc.strerror or exc}; the file is "
        "as it was (the files before it are done); fix the folder's space or permissions and "
        "run the erasure again"
    )
    return StoreError(msg)


def _sync_folder(folder: Path) -> None:
    """Make a rename or removal in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _turn(root: Path, dry_run: bool) -> Iterator[None]:
    """Hold the folder's erasure lock (not for a dry run, which only reads)."""
    if dry_run or not root.is_dir():
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        yield
        return
    with (root / _LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _parquet_values(root: Path, model: str, column: str, subject: Subject) -> Iterator[Any]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    parquet, key = ds.ParquetFileFormat(), resolve_key(None)
    for path in _log_files(root, model):
        fragment = _file_fragment(parquet, path, key)
        names = _file_schema(fragment, path).names
        if column not in names:
            continue
        wanted = [column] + ([subject.log_column] if subject.log_column in names else [])
        table = _read(fragment, path, list(dict.fromkeys(wanted)))
        if subject.log_column in names:
            mask = subject.mask(table.column(subject.log_column))
            if mask is not None:
                table = table.filter(_invert(mask))
        yield from pc.unique(table.column(column)).to_pylist()


# -- SQL -------------------------------------------------------------------------------------


def _erase_sql(
    url: str, subject: Subject, model: str | None, keep: Sequence[str], dry_run: bool
) -> LogErasure:
    import sqlalchemy as sa

    engine = _create_engine(url)
    records: list[ErasedPrediction] = []
    seen = False
    try:
        table = _log_table(sa.MetaData())
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table(table.name):
                return LogErasure(redact_url(url), dry_run=dry_run)
            ids: list[int] = []
            for row in _sql_rows(conn, table, model):
                inputs = row.inputs if isinstance(row.inputs, dict) else {}
                if subject.column not in inputs:
                    continue
                seen = True
                if subject.matches(inputs[subject.column]):
                    ids.append(row.id)
                    records.append(_sql_record(row, inputs, keep))
            if not dry_run:
                for chunk in _chunks(ids):
                    conn.execute(sa.delete(table).where(table.c.id.in_(chunk)))
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip()
        msg = (
            f"cannot erase from the prediction log table at {redact_url(url)}: {detail}; "
            "nothing was deleted; check that the database is reachable and writable, then run "
            "the erasure again"
        )
        raise StoreError(msg) from exc
    finally:
        engine.dispose()
    return LogErasure(redact_url(url), tuple(records), column_seen=seen, dry_run=dry_run)


def _sql_rows(conn: Any, table: Any, model: str | None) -> Iterator[Any]:
    import sqlalchemy as sa

    c = table.c
    query = sa.select(
        c.id, c.prediction_id, c.request_id, c.model_name, c.model_version, c.inputs
    ).order_by(c.id)
    if model is not None:
        query = query.where(c.model_name == model)
    yield from conn.execute(query.execution_options(yield_per=_CHUNK))


def _sql_value(row: Any, inputs: Mapping[str, Any], column: str) -> Any:
    if column in _IDS:
        return getattr(row, column)
    return inputs.get(column.removeprefix("input.")) if column.startswith("input.") else None


def _sql_record(row: Any, inputs: Mapping[str, Any], keep: Sequence[str]) -> ErasedPrediction:
    values = {c: _sql_value(row, inputs, c) for c in keep}
    return ErasedPrediction(
        str(row.model_name),
        str(row.model_version),
        str(row.prediction_id),
        str(row.request_id),
        {c: v for c, v in values.items() if v is not None},
    )


def _sql_values(url: str, model: str, column: str, subject: Subject) -> Iterator[Any]:
    import sqlalchemy as sa

    engine = _create_engine(url)
    try:
        table = _log_table(sa.MetaData())
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table.name):
                return
            for row in _sql_rows(conn, table, model):
                inputs = row.inputs if isinstance(row.inputs, dict) else {}
                if not subject.matches(inputs.get(subject.column)):
                    yield _sql_value(row, inputs, column)
    finally:
        engine.dispose()


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

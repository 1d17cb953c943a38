"""The prediction log's persistence: what the server logs, where it goes, how to read it back.

A :class:`PredictionEntry` is one request's predictions. A *sink* (:class:`PredictionSink`)
encodes entries and writes them: :class:`ParquetSink` (Parquet files partitioned by model,
version and day, Hive style) or :class:`SqlSink` (a ``prediction_log`` table over SQLAlchemy
Core, PostgreSQL or SQLite); :func:`open_sink` picks one from a path or URL.
:func:`read_predictions` reads one model's predictions in a time window from either, opening
only that window's files or rows, as one DataFrame of the same shape whichever sink wrote it.

The buffering, the background writer and its retries are the server's
(``shipyard.serve._predlog.PredictionLog``); this module does no buffering, so that readers
(monitoring, notebooks) depend on the store layer alone.

Example:
    >>> sink = open_sink("predictions")  # doctest: +SKIP
    >>> sink.write(sink.encode([PredictionEntry("r1", time.time(), "penguins", "3",
    ...     [{"island": "Biscoe"}], [{"prediction": "Adelie"}], 4.2)]))  # doctest: +SKIP
    >>> read_predictions("predictions", model="penguins", since="2024-05-01")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar
from urllib.parse import quote, unquote, urlparse

import orjson
import pandas as pd
import pyarrow as pa

from shipyard.errors import DataError, ShipyardError
from shipyard.store._crypto import MAGIC, EncryptionKey, is_sealed, open_envelope, resolve_key
from shipyard.store._db import redact_url
from shipyard.store._tables import dialect_insert

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "BASE_COLUMNS",
    "ParquetSink",
    "PredictionEntry",
    "PredictionSink",
    "SqlSink",
    "open_sink",
    "read_predictions",
]

BASE_COLUMNS = ("prediction_id", "request_id", "ts", "model_name", "model_version", "latency_ms")
"""The columns every logged prediction has, before its ``input.<name>``, ``prediction`` and
``proba.<class>`` columns."""

logger = logging.getLogger(__name__)

_OFF = ("", "off")
_TABLE = "prediction_log"
_ONCE_COLUMNS = ("prediction_id", "ts")  # a row's identity: a retried write adds nothing
_FILE_SEQ = itertools.count()  # per process; with the pid, file names never collide
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_TS_TYPE = pa.timestamp("us", tz="UTC")
_US = 1_000_000
_DAY_S = 86_400

PayloadT = TypeVar("PayloadT")
TimeLike = datetime | date | str


class PredictionEntry(NamedTuple):
    """One request's predictions, as the server's prediction log receives and writes them.

    The log keeps references to ``inputs`` and ``outputs`` until they are written: do not
    change them after submitting.

    Attributes:
        request_id: the request's id (``X-Request-ID``).
        ts: when the request arrived, in seconds since the epoch (``time.time()``).
        model_name: the model's registered name.
        model_version: the model's version, as text.
        inputs: the request's records, keyed by input column name.
        outputs: one result per record: ``prediction``, for classifiers
            ``probabilities`` (class -> probability), and the ``prediction_id`` the client
            was given; without one, record ``i`` is logged as ``<request_id>-<i>``.
        latency_ms: how long the server took to answer the request, in milliseconds.
        flags: per record, why its inputs lie outside what the model was trained on (for
            example ``"age: above the training range"``), ``None`` for a record that does not;
            ``None`` for the whole entry when nothing was checked or flagged. Logged as the
            ``ood`` column.
    """

    request_id: str
    ts: float
    model_name: str
    model_version: str
    inputs: Sequence[Mapping[str, Any]]
    outputs: Sequence[Mapping[str, Any]]
    latency_ms: float
    flags: Sequence[str | None] | None = None


class PredictionSink(Protocol[PayloadT]):
    """Where the server's prediction log writes; all three methods run on its writer thread.

    ``encode`` turns entries into what ``write`` stores; it must not do I/O, so that an
    error there means the entries themselves cannot be stored (they are dropped) while an
    error in ``write`` is taken as the sink failing (the payload is kept and retried).
    """

    def encode(self, entries: Sequence[PredictionEntry]) -> PayloadT:
        """Turn entries into a payload for :meth:`write`, without I/O.

        Raises:
            Exception: an entry holds a value this sink cannot store.
        """
        ...

    def write(self, payload: PayloadT) -> None:
        """Store a payload, all of it or, after a failure, nothing more than a retry will.

        Raises:
            Exception: the write failed; it is retried with the same payload.
        """
        ...

    def close(self) -> None:
        """Release connections; a later :meth:`write` may open them again."""
        ...


# -- Parquet ---------------------------------------------------------------------------------


@dataclass
class _ParquetPart:
    """One partition's rows of a flush, as a Parquet file's bytes, and where they go."""

    folder: Path
    data: pa.Buffer


class ParquetSink:
    """Parquet files partitioned by model, version and day, one file per partition a flush.

    Layout (Hive style, so ``pyarrow.dataset.dataset(root, partitioning="hive")`` filters on
    ``model``, ``version`` and ``date``; values are percent-encoded)::

        root/model=NAME/version=V/date=YYYY-MM-DD/part-<UTC time>-<pid>-<seq>.parquet

    ``date`` is the request's UTC day. Each file is written under a hidden temporary name,
    synced, then renamed, so readers never see a partial file, and several processes can
    write to one root. Columns: :data:`BASE_COLUMNS` (``ts`` as UTC timestamps), one
    ``input.<name>`` column per input field, ``prediction`` and, for classifiers, one
    ``proba.<class>`` column per class. Types follow the values: numbers as ``double``,
    integers as ``int64``, booleans, text, datetimes as ``timestamp[us]`` in UTC
    (time-zone-aware values converted, naive ones kept); ``None`` is null and NaN stays NaN.
    With an encryption key, each file is sealed whole (AES-256-GCM) before it is written, and
    :func:`read_predictions` decrypts it.

    Args:
        root: the log's folder, created when first written.
        compression: Parquet compression codec.
        encryption_key: encrypt every file with this key (an :class:`EncryptionKey` or its
            urlsafe base64 text); ``None`` takes ``SHIPYARD_ENCRYPTION_KEY``, and without it
            files are written in clear.

    Raises:
        EncryptionError: the key is invalid, or the cryptography library is missing.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        compression: str = "zstd",
        encryption_key: EncryptionKey | str | None = None,
    ) -> None:
        self.root = Path(root)
        self.compression = compression
        self._key = resolve_key(encryption_key)

    def __repr__(self) -> str:
        return f"ParquetSink({str(self.root)!r})"

    def encode(self, entries: Sequence[PredictionEntry]) -> list[_ParquetPart]:
        """One Parquet file's bytes per partition (model, version, UTC day) of the entries.

        Raises:
            pyarrow.ArrowException: a value Parquet cannot hold (text that is not UTF-8, say).
        """
        import pyarrow.parquet as pq

        groups: dict[tuple[str, str, int], list[PredictionEntry]] = {}
        for entry in entries:
            key = (str(entry.model_name), str(entry.model_version), int(entry.ts // _DAY_S))
            groups.setdefault(key, []).append(entry)
        parts = []
        for (model, version, day), group in groups.items():
            stream = pa.BufferOutputStream()
            pq.write_table(_arrow_table(group), stream, compression=self.compression)
            folder = self.root / _partition(model, version, day)
            parts.append(_ParquetPart(folder, stream.getvalue()))
        return parts

    def write(self, payload: list[_ParquetPart]) -> None:
        """Write each part as one new file; parts written are removed from ``payload``.

        Raises:
            OSError: a file cannot be written (no space, no permission); the parts not yet
                written stay in ``payload`` for the retry, and no partial file is left.
        """
        while payload:
            self._write_part(payload[0])
            payload.pop(0)

    def close(self) -> None:
        """Nothing to release: every write opens and closes its own file."""

    def _write_part(self, part: _ParquetPart) -> None:
        part.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"part-{stamp}-{os.getpid()}-{next(_FILE_SEQ):06d}.parquet"
        data = part.data if self._key is None else self._key.seal(part.data.to_pybytes())
        write_atomically(part.folder / name, data)


def write_atomically(target: Path, data: bytes | pa.Buffer, *, tmp_suffix: str = "") -> None:
    """Write ``target`` whole or not at all: the bytes go to a hidden temporary name beside it
    (``.<name><tmp_suffix>.tmp``: pyarrow.dataset skips dot files), are synced, then renamed
    over it, so a reader or a crash sees the old file or the new one, never part of one.

    Raises:
        OSError: the file cannot be written; no temporary file is left.
    """
    tmp = target.with_name(f".{target.name}{tmp_suffix}.tmp")
    try:
        with tmp.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _partition(model: str, version: str, day: int) -> str:
    """The partition folder of a model version's day (days since the epoch, UTC)."""
    date_text = time.strftime("%Y-%m-%d", time.gmtime(day * _DAY_S))
    return f"model={_segment(model)}/version={_segment(version)}/date={date_text}"


def _segment(value: str) -> str:
    """A partition value as a path segment (percent-encoded, as pyarrow decodes it)."""
    return quote(value, safe="")


def _arrow_table(entries: Sequence[PredictionEntry]) -> pa.Table:
    """One row per record of the entries, which share a model and version."""
    inputs = [r for e in entries for r in e.inputs]
    outputs = [o for e in entries for o in e.outputs]
    n = len(inputs)
    per_request = pa.table(
        {
            "request_id": pa.array([str(e.request_id) for e in entries], pa.string()),
            "ts": pa.array([round(e.ts * _US) for e in entries], _TS_TYPE),
            "latency_ms": pa.array([float(e.latency_ms) for e in entries], pa.float64()),
        }
    )
    if n != len(entries):  # some requests hold several records: repeat their values
        counts = [len(e.inputs) for e in entries]
        per_request = per_request.take([i for i, c in enumerate(counts) for _ in range(c)])
    columns: dict[str, pa.Array] = {
        "prediction_id": pa.array(_prediction_ids(entries), pa.string()),
        "request_id": per_request["request_id"],
        "ts": per_request["ts"],
        "model_name": pa.array([str(entries[0].model_name)] * n, pa.string()),
        "model_version": pa.array([str(entries[0].model_version)] * n, pa.string()),
        "latency_ms": per_request["latency_ms"],
    }
    for key in _keys(inputs):
        columns[f"input.{key}"] = _column([r.get(key) for r in inputs])
    columns["prediction"] = _column([o.get("prediction") for o in outputs])
    probabilities = [o.get("probabilities") or {} for o in outputs]
    for cls in _keys(probabilities):
        columns[f"proba.{cls}"] = _column([p.get(cls) for p in probabilities])
    if any(e.flags is not None for e in entries):
        flags = [f for e in entries for f in (e.flags or [None] * len(e.inputs))]
        columns["ood"] = pa.array(flags, pa.string())
    return pa.table(columns)


def _prediction_ids(entries: Sequence[PredictionEntry]) -> list[str]:
    """Each record's ``prediction_id`` as the client got it, else ``<request_id>-<i>``."""
    return [
        str(output.get("prediction_id") or f"{e.request_id}-{i}")
        for e in entries
        for i, output in enumerate(e.outputs)
    ]


def _keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key of the rows, in order of first appearance."""
    return [str(k) for k in dict.fromkeys(itertools.chain.from_iterable(rows))]


def _column(values: list[Any]) -> pa.Array:
    """An Arrow array typed by its values; text when they mix kinds Arrow cannot unify."""
    try:
        array = pa.array(values, from_pandas=False)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        array = pa.array([None if v is None else str(v) for v in values], pa.string())
    if pa.types.is_timestamp(array.type) and array.type != pa.timestamp("us"):
        # aware values become UTC wall time, as the model reads them
        array = array.cast(pa.timestamp("us"), safe=False)
    return array


# -- SQL -------------------------------------------------------------------------------------


class SqlSink:
    """A ``prediction_log`` table in PostgreSQL or SQLite, through SQLAlchemy Core.

    The table (and an index on ``(model_name, ts)``) is created on the first write if
    missing, so a database that is down when the server starts only delays the log. Each
    write inserts its rows in one transaction. Columns: an ``id``, :data:`BASE_COLUMNS`
    (``ts`` with time zone, in UTC), and ``inputs`` and ``outputs`` as JSON (``json`` in
    PostgreSQL; NaN and infinities are stored as ``null``, datetimes as ISO 8601 text).

    Args:
        url: a SQLAlchemy URL (``postgresql+psycopg://user@host/db``, ``sqlite:///log.db``).

    Raises:
        ShipyardError: the URL does not parse or its driver is not installed.
    """

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        self.table = _log_table(sa.MetaData())
        self.engine = _create_engine(url, json_serializer=_already_json, **_pool_settings(url))
        self._once = False  # set by _ensure_table
        self._table_ready = False

    def __repr__(self) -> str:
        return f"SqlSink({redact_url(self.url)!r})"

    def encode(self, entries: Sequence[PredictionEntry]) -> list[dict[str, Any]]:
        """One row per record, with its inputs and outputs encoded as JSON text.

        Raises:
            ValueError: a text field holds a NUL character (PostgreSQL refuses it).
            TypeError: a value cannot be encoded as JSON.
        """
        rows = []
        prediction_ids = iter(_prediction_ids(entries))
        for entry in entries:
            common = {
                "request_id": _sql_text(entry.request_id),
                "ts": datetime.fromtimestamp(entry.ts, UTC),
                "model_name": _sql_text(entry.model_name),
                "model_version": _sql_text(entry.model_version),
                "latency_ms": float(entry.latency_ms),
            }
            flags = entry.flags if entry.flags is not None else [None] * len(entry.inputs)
            for record, output, flag in zip(entry.inputs, entry.outputs, flags, strict=True):
                if "prediction_id" in output:  # it has a column of its own
                    output = {k: v for k, v in output.items() if k != "prediction_id"}
                if flag is not None:
                    output = {**output, "ood": flag}
                rows.append(
                    {
                        "prediction_id": _sql_text(next(prediction_ids)),
                        **common,
                        "inputs": _json(record),
                        "outputs": _json(output),
                    }
                )
        return rows

    def write(self, payload: list[dict[str, Any]]) -> None:
        """Insert the rows in one transaction (creating the table first if needed).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database refused or could not be reached;
                nothing of this payload was written.
        """
        import sqlalchemy as sa

        self._ensure_table()
        with self.engine.begin() as conn:
            if self._once and conn.dialect.name in ("sqlite", "postgresql"):
                # a retry of a batch whose COMMIT landed but whose answer was lost adds nothing
                insert = dialect_insert(conn, self.table).on_conflict_do_nothing(
                    index_elements=list(_ONCE_COLUMNS)
                )
            else:
                insert = sa.insert(self.table)
            conn.execute(insert, payload)

    def close(self) -> None:
        """Close the pooled connections (a later write opens new ones)."""
        self.engine.dispose()

    def _ensure_table(self) -> None:
        import sqlalchemy as sa

        if self._table_ready:
            return
        try:
            with self.engine.begin() as conn:
                self.table.metadata.create_all(conn, checkfirst=True)
        except sa.exc.DBAPIError:
            # another process may have created it between the check and the CREATE
            if not sa.inspect(self.engine).has_table(self.table.name):
                raise
        self._once = self._ensure_once_index()
        self._table_ready = True

    def _ensure_once_index(self) -> bool:
        """Whether the table has the unique ``(prediction_id, ts)`` index that makes a
        retried write add nothing; a table an older Shipyard created gets it now, unless it
        already holds duplicates (then retries may duplicate rows, as before, and a warning
        says so)."""
        import sqlalchemy as sa

        index = next(i for i in self.table.indexes if i.unique)
        try:
            with self.engine.begin() as conn:
                index.create(conn, checkfirst=True)
        except sa.exc.IntegrityError:
            logger.warning(
                "the prediction log table in %s holds duplicate predictions, so it cannot get "
                "its unique index %s: a write retried after a lost COMMIT answer may store a "
                "batch twice; remove the duplicates to fix it",
                redact_url(self.url),
                index.name,
            )
            return False
        except sa.exc.DBAPIError:
            # another process may have created it between the check and the CREATE
            if index.name not in {i["name"] for i in sa.inspect(self.engine).get_indexes(_TABLE)}:
                raise
        return True


def _log_table(metadata: sa.MetaData) -> sa.Table:
    import sqlalchemy as sa

    return sa.Table(
        _TABLE,
        metadata,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("prediction_id", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Index(f"ix_{_TABLE}_model_name_ts", "model_name", "ts"),
        sa.Index(f"ux_{_TABLE}_prediction_id_ts", *_ONCE_COLUMNS, unique=True),
    )


def _pool_settings(url: str) -> dict[str, Any]:
    """PostgreSQL: test pooled connections before use, and give up connecting after 10 s, so
    a database that stops answering fails a write (retried) instead of hanging the writer."""
    if not url.startswith(("postgresql", "postgres")) or "connect_timeout" in url:
        return {}
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}


def _create_engine(url: str, **kwargs: Any) -> sa.Engine:
    import sqlalchemy as sa

    try:
        return sa.create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        msg = (
            f"cannot use the prediction log database {redact_url(url)}: its driver is not "
            f"installed ({exc.name}); for PostgreSQL install shipyard[postgres]"
        )
        raise ShipyardError(msg) from exc
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        msg = (
            f"cannot use {redact_url(url)!r} as a prediction log: {exc}; expected a SQLAlchemy "
            "URL such as postgresql+psycopg://user@host/db or sqlite:///predictions.db"
        )
        raise ShipyardError(msg) from exc


def _already_json(value: str) -> str:
    """The engine's JSON serialiser: :meth:`SqlSink.encode` has already encoded the value."""
    return value


def _json(value: Any) -> str:
    # orjson writes NaN and infinities as null: PostgreSQL's json refuses the bare tokens
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(value, option=option, default=str).decode()


def _sql_text(value: Any) -> str:
    text = str(value)
    if "\x00" in text:
        msg = f"{text!r} holds a NUL character, which PostgreSQL text cannot store"
        raise ValueError(msg)
    return text


# -- choosing a sink -------------------------------------------------------------------------


def open_sink(target: str | os.PathLike[str] | None) -> ParquetSink | SqlSink | None:
    """The sink a ``--prediction-log`` setting names.

    Args:
        target: a folder or ``file://`` URL (Parquet files), a SQLAlchemy URL
            (``postgresql+psycopg://...``, ``sqlite:///...``: a table), or ``None``, ``""``
            or ``"off"`` (no log).

    Returns:
        A :class:`ParquetSink`, a :class:`SqlSink`, or ``None`` for no log. Nothing is
        written or connected to yet.

    Raises:
        ShipyardError: a URL that is neither ``file://`` nor a usable SQLAlchemy URL.

    Example:
        >>> open_sink("off") is None
        True
        >>> open_sink("/var/log/shipyard/predictions")
        ParquetSink('/var/log/shipyard/predictions')
    """
    if target is None or os.fspath(target).strip().lower() in _OFF:
        return None
    where = _locate(target)
    return ParquetSink(where) if isinstance(where, Path) else SqlSink(where)


def _locate(target: str | os.PathLike[str]) -> Path | str:
    """A Parquet root as a Path, or a SQLAlchemy URL as text."""
    text = os.fspath(target).strip()
    match = _SCHEME.match(text)
    if match is None:
        return Path(text).expanduser()
    if match.group(1).lower() == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            msg = f"{text!r}: a file:// URL must name a local folder (file:///path/to/log)"
            raise ShipyardError(msg)
        return Path(unquote(parsed.path))
    _create_engine(text).dispose()  # checks the dialect and its driver, without connecting
    return text


# -- reading ---------------------------------------------------------------------------------


def read_predictions(
    target: str | os.PathLike[str],
    *,
    model: str,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    version: str | int | None = None,
) -> pd.DataFrame:
    """Read one model's logged predictions in a time window, from either sink.

    Only the window is read: from Parquet, the files of its days' partitions (and of
    ``version``'s, when given), rows filtered by time; from SQL, a ``WHERE`` on
    ``model_name`` and ``ts`` that the ``(model_name, ts)`` index serves.

    Args:
        target: the log's folder, ``file://`` URL or SQLAlchemy URL (as for :func:`open_sink`).
        model: the model's name.
        since: the window's start, included; ``None`` for the first prediction. A naive
            time or date is UTC; text is ISO 8601 (``2024-05-01``, ``2024-05-01T12:00Z``).
        until: the window's end, excluded; ``None`` for the last prediction.
        version: only this version's predictions; ``None`` for every version.

    Returns:
        One row per prediction, oldest first: :data:`BASE_COLUMNS` (``ts`` as UTC
        ``datetime64``), ``input.<name>`` per input field, ``prediction`` and
        ``proba.<class>`` per class (classifiers), and ``ood`` (why a record's inputs lay
        outside the training data, else None) once any record was flagged. Missing values
        are NaN/None. From SQL, inputs come back as JSON types (a datetime input as ISO
        text). An empty window gives an empty frame with the base columns.

    Raises:
        ValueError: ``since`` or ``until`` is not a time, or ``since`` is after ``until``.
        DataError: the Parquet folder does not exist, or a file in the window cannot be read.
        EncryptionError: a file is encrypted and ``SHIPYARD_ENCRYPTION_KEY`` is unset or holds
            another key.
        ShipyardError: ``target`` is not a folder or a usable URL.

    Example:
        >>> frame = read_predictions(".shipyard/predictions", model="penguins",
        ...                          since="2024-05-01", until="2024-05-08")  # doctest: +SKIP
        >>> frame["proba.Adelie"].describe()  # doctest: +SKIP
    """
    start, end = _utc(since, "since"), _utc(until, "until")
    if start is not None and end is not None and start > end:
        msg = f"since ({start.isoformat()}) is after until ({end.isoformat()})"
        raise ValueError(msg)
    where = _locate(target)
    version_text = None if version is None else str(version)
    if isinstance(where, Path):
        return _read_parquet(where, model, start, end, version_text)
    return _read_sql(where, model, start, end, version_text)


def _utc(value: TimeLike | None, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        msg = (
            f"{name}: cannot read {value!r} as a time; expected a datetime, a date or ISO "
            "8601 text such as 2024-05-01 or 2024-05-01T12:00:00Z"
        )
        raise ValueError(msg) from exc
    if pd.isna(stamp):
        msg = f"{name}: {value!r} is not a time"
        raise ValueError(msg)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _read_parquet(
    root: Path,
    model: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    version: str | None,
) -> pd.DataFrame:
    import pyarrow.dataset as ds

    if not root.is_dir():
        msg = f"no prediction log at {root}: the folder does not exist; check the path"
        raise DataError(msg)
    files = list(_window_files(root / f"model={_segment(model)}", start, end, version))
    if not files:
        return _empty_frame()
    parquet, key = ds.ParquetFileFormat(), resolve_key(None)
    fragments = [_file_fragment(parquet, path, key) for path in files]
    schemas = [
        _file_schema(fragment, path) for fragment, path in zip(fragments, files, strict=True)
    ]
    condition = _time_filter(start, end)
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column changed kind between versions
        frames = [fragment.to_table(filter=condition) for fragment in fragments]
        frame = pd.concat([f.to_pandas() for f in frames], ignore_index=True)
    else:
        dataset = ds.FileSystemDataset(fragments, schema=schema, format=parquet)
        frame = dataset.to_table(filter=condition).to_pandas()
    return _tidy(frame)


def _window_files(
    model_dir: Path, start: pd.Timestamp | None, end: pd.Timestamp | None, version: str | None
) -> Iterator[Path]:
    """The data files of the window's partitions, found from folder names alone."""
    if not model_dir.is_dir():
        return
    first = None if start is None else start.strftime("%Y-%m-%d")
    last = None if end is None else (end - timedelta(microseconds=1)).strftime("%Y-%m-%d")
    if version is None:
        versions = sorted(p for p in model_dir.glob("version=*") if p.is_dir())
    else:
        versions = [model_dir / f"version={_segment(version)}"]
    for version_dir in versions:
        for day_dir in sorted(version_dir.glob("date=*")):
            day = day_dir.name.removeprefix("date=")
            if (first is None or day >= first) and (last is None or day <= last):
                yield from sorted(day_dir.glob("part-*.parquet"))


def _file_fragment(parquet: Any, path: Path, key: EncryptionKey | None) -> Any:
    """A window file as a pyarrow fragment: the file itself, or its decrypted bytes.

    Raises:
        DataError: the file cannot be read.
        EncryptionError: it is encrypted and no key, or another key, is set.
        ArtifactIntegrityError: it is encrypted and fails authentication.
    """
    import pyarrow.fs as pafs

    try:
        with path.open("rb") as file:
            head = file.read(len(MAGIC))
            if not is_sealed(head):
                return parquet.make_fragment(str(path), filesystem=pafs.LocalFileSystem())
            sealed = head + file.read()
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    plain = open_envelope(sealed, key, what=f"the prediction log file {path}")
    return parquet.make_fragment(pa.BufferReader(plain))


def _file_schema(fragment: Any, path: Path) -> pa.Schema:
    try:
        return fragment.physical_schema
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: Exception) -> DataError:
    msg = (
        f"cannot read the prediction log file {path}: {exc}; move the file out of the "
        "log folder to read the rest of this window"
    )
    return DataError(msg)


def _time_filter(start: pd.Timestamp | None, end: pd.Timestamp | None) -> Any:
    import pyarrow.compute as pc

    conditions = []
    if start is not None:
        conditions.append(pc.field("ts") >= pa.scalar(start.to_pydatetime(), _TS_TYPE))
    if end is not None:
        conditions.append(pc.field("ts") < pa.scalar(end.to_pydatetime(), _TS_TYPE))
    return functools.reduce(operator.and_, conditions) if conditions else None


def _read_sql(
    url: str,
    model: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    version: str | None,
) -> pd.DataFrame:
    import sqlalchemy as sa

    engine = _create_engine(url)
    try:
        table = _log_table(sa.MetaData())
        if not sa.inspect(engine).has_table(table.name):
            return _empty_frame()
        query = sa.select(table).where(table.c.model_name == model)
        if version is not None:
            query = query.where(table.c.model_version == version)
        if start is not None:
            query = query.where(table.c.ts >= start.to_pydatetime())
        if end is not None:
            query = query.where(table.c.ts < end.to_pydatetime())
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.ts, table.c.id)).mappings().all()
    finally:
        engine.dispose()
    return _sql_frame(rows) if rows else _empty_frame()


def _sql_frame(rows: Sequence[Mapping[Any, Any]]) -> pd.DataFrame:
    n = len(rows)
    columns: dict[str, Any] = {name: [row[name] for row in rows] for name in BASE_COLUMNS}
    columns["ts"] = pd.to_datetime(pd.Series(columns["ts"]), utc=True)
    inputs = [row["inputs"] for row in rows]
    for key in _keys(inputs):
        columns[f"input.{key}"] = [r.get(key) for r in inputs]
    outputs = [row["outputs"] for row in rows]
    columns["prediction"] = [o.get("prediction") for o in outputs]
    probabilities = [o.get("probabilities") or {} for o in outputs]
    for cls in _keys(probabilities):
        columns[f"proba.{cls}"] = pd.to_numeric(pd.Series([p.get(cls) for p in probabilities]))
    if any("ood" in o for o in outputs):
        columns["ood"] = [o.get("ood") for o in outputs]
    return _tidy(pd.DataFrame(columns, index=range(n)))


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype="str") for name in BASE_COLUMNS})
    frame["ts"] = pd.Series(dtype="datetime64[us, UTC]")
    frame["latency_ms"] = pd.Series(dtype="float64")
    return frame


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Base columns first, then inputs, prediction, probabilities; oldest first."""
    names = [str(c) for c in frame.columns]
    inputs = [c for c in names if c.startswith("input.")]
    probas = [c for c in names if c.startswith("proba.")]
    known = {*BASE_COLUMNS, *inputs, "prediction", *probas}
    order = [*BASE_COLUMNS, *inputs, "prediction", *probas, *(c for c in names if c not in known)]
    frame = frame[[c for c in order if c in frame.columns]]
    frame = frame.astype({"ts": "datetime64[us, UTC]"})
    return frame.sort_values("ts", kind="stable", ignore_index=True)

"""Reading runs back: one run by (prefix of) id, searches, metric histories.

Searches select the runs in one query (filters on latest metrics become joins), then load the
params, latest metrics and tags of every selected run in one query each, never one per run.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

import sqlalchemy as sa

from shipyard.errors import TrackingError
from shipyard.store import tables

__all__ = [
    "MIN_PREFIX",
    "MetricPoint",
    "RunRecord",
    "check_status",
    "load_run",
    "metric_history",
    "resolve_run_id",
    "search_runs",
]

#: Shortest accepted prefix of a run id (like git's abbreviated hashes).
MIN_PREFIX = 6
_RUN_ID_LENGTH = 32
_IN_CHUNK = 500  # ids per IN (...) list: far below every backend's bound-parameter limit

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}
_RUN_COLUMNS = ("start_time", "end_time", "name", "status", "project")


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric."""

    step: int
    value: float
    timestamp: float


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: its row plus params, latest metrics and tags.

    Attributes:
        status: ``running``, ``finished``, ``failed``, ``killed``, or ``crashed`` (its
            process died without ending it; ``error`` says how that was detected).
        duration: ``end_time - start_time`` in seconds, ``None`` while the run is running.
            A crashed run's end time is its last heartbeat (``None`` if it never sent one).
        metrics: the latest value (highest step) of each metric.
        host: the host name of the process that ran it (``None`` for runs recorded before
            Shipyard tracked owners).
        pid: that process's id.
        heartbeat_at: the process's last sign of life (epoch seconds, the database's clock).
    """

    id: str
    name: str
    project: str | None
    parent_id: str | None
    status: str
    start_time: float
    end_time: float | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    spec_hash: str | None = None
    dataset_fingerprint: str | None = None
    git_commit: str | None = None
    package_versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    host: str | None = None
    pid: int | None = None
    heartbeat_at: float | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, ``None`` while running."""
        return None if self.end_time is None else self.end_time - self.start_time


def check_status(status: str | None) -> None:
    """Refuse a status that no run can have.

    Raises:
        TrackingError: ``status`` is not ``None`` nor one of ``RUN_STATUSES``.
    """
    if status is not None and status not in tables.RUN_STATUSES:
        msg = f"unknown run status {status!r}; use one of {', '.join(tables.RUN_STATUSES)}"
        raise TrackingError(msg)


def resolve_run_id(conn: sa.Connection, run_id: str) -> str:
    """The full id of the one run whose id is ``run_id`` or starts with it.

    Raises:
        TrackingError: when the prefix is too short, matches no run, or matches several.
    """
    if len(run_id) < MIN_PREFIX:
        msg = (
            f"run id {run_id!r} is too short: give the full 32-character id or a unique "
            f"prefix of at least {MIN_PREFIX} characters"
        )
        raise TrackingError(msg)
    runs = tables.runs
    where = runs.c.id == run_id if len(run_id) >= _RUN_ID_LENGTH else runs.c.id.startswith(run_id)
    found = list(conn.execute(sa.select(runs.c.id).where(where).limit(3)).scalars())
    if len(found) == 1:
        return str(found[0])
    if not found:
        msg = f"no run with id {run_id!r} in the store; list runs with `shipyard runs list`"
        raise TrackingError(msg)
    msg = (
        f"run id prefix {run_id!r} matches several runs ({', '.join(found)}, ...); "
        "give more characters"
    )
    raise TrackingError(msg)


def load_run(conn: sa.Connection, run_id: str) -> RunRecord:
    """Load one run by full id or unique prefix.

    Raises:
        TrackingError: when no single run matches.
    """
    full_id = resolve_run_id(conn, run_id)
    row = conn.execute(sa.select(tables.runs).where(tables.runs.c.id == full_id)).one()
    return _records(conn, [row])[0]


def search_runs(
    conn: sa.Connection,
    *,
    project: str | None = None,
    status: str | None = None,
    parent_id: str | EllipsisType | None = ...,
    filter: dict[str, tuple[str, float]] | None = None,
    order_by: str | None = None,
    limit: int = 1000,
) -> list[RunRecord]:
    """Runs matching every condition, with their params, latest metrics and tags.

    Args:
        conn: an open connection.
        project: only runs of this project.
        status: only runs in this status (``running``, ``finished``, ``failed``, ``killed``,
            ``crashed``). A run whose process died is ``running`` here until a
            :class:`~shipyard.tracking.Tracker` read marks it ``crashed``.
        parent_id: ``...`` (default) for any run, ``None`` for top-level runs only, an id
            for the children of that run.
        filter: conditions on latest metrics, e.g. ``{"accuracy": (">", 0.9)}``; the key
            may also be written ``metric.accuracy``. A run without the metric never matches.
        order_by: ``"metric.<key> [ASC|DESC]"`` or a run column (``start_time``,
            ``end_time``, ``name``, ``status``, ``project``) with an optional direction;
            runs lacking the metric sort last. Defaults to ``start_time DESC``.
        limit: at most this many runs.

    Raises:
        TrackingError: on an unknown status, operator, order column or direction.
    """
    check_status(status)
    runs = tables.runs
    query = sa.select(runs)
    if project is not None:
        query = query.where(runs.c.project == project)
    if status is not None:
        query = query.where(runs.c.status == status)
    if parent_id is None:
        query = query.where(runs.c.parent_id.is_(None))
    elif not isinstance(parent_id, EllipsisType):
        query = query.where(runs.c.parent_id == parent_id)
    for i, (key, condition) in enumerate((filter or {}).items()):
        query = _filter_metric(query, i, key, condition)
    query = _order(query, order_by).limit(limit)
    return _records(conn, list(conn.execute(query)))


def metric_history(conn: sa.Connection, run_id: str, key: str) -> list[MetricPoint]:
    """Every logged value of ``key`` in a run, by step then time.

    Raises:
        TrackingError: when no single run matches ``run_id``.
    """
    full_id = resolve_run_id(conn, run_id)
    m = tables.metrics
    query = (
        sa.select(m.c.step, m.c.value, m.c.timestamp)
        .where(m.c.run_id == full_id, m.c.key == key)
        .order_by(m.c.step, m.c.timestamp, m.c.id)
    )
    return [MetricPoint(int(s), float(v), float(t)) for s, v, t in conn.execute(query)]


def _filter_metric(
    query: sa.Select[Any], index: int, key: str, condition: tuple[str, float]
) -> sa.Select[Any]:
    op_text, value = condition
    compare = _OPERATORS.get(op_text)
    if compare is None:
        msg = (
            f"unknown operator {op_text!r} in the filter on {key!r}; "
            f"use one of {', '.join(_OPERATORS)}"
        )
        raise TrackingError(msg)
    metric = key.removeprefix("metric.")
    lm = tables.latest_metrics.alias(f"filter_{index}")
    on = sa.and_(lm.c.run_id == tables.runs.c.id, lm.c.key == metric)
    return query.join(lm, on).where(compare(lm.c.value, float(value)))


def _order(query: sa.Select[Any], order_by: str | None) -> sa.Select[Any]:
    runs = tables.runs
    tie_break = (runs.c.start_time.desc(), runs.c.id)
    if not order_by:
        return query.order_by(*tie_break)
    parts = order_by.split()
    direction = parts[1].upper() if len(parts) == 2 else "ASC"
    if len(parts) not in (1, 2) or direction not in ("ASC", "DESC"):
        msg = f"cannot order by {order_by!r}; expected e.g. 'metric.accuracy DESC' or 'start_time'"
        raise TrackingError(msg)
    column: Any
    if parts[0].startswith("metric."):
        lm = tables.latest_metrics.alias("order_metric")
        on = sa.and_(lm.c.run_id == runs.c.id, lm.c.key == parts[0].removeprefix("metric."))
        query = query.outerjoin(lm, on)
        column = lm.c.value
    elif parts[0] in _RUN_COLUMNS:
        column = runs.c[parts[0]]
    else:
        msg = (
            f"cannot order by {parts[0]!r}; use 'metric.<key>' or one of {', '.join(_RUN_COLUMNS)}"
        )
        raise TrackingError(msg)
    ordered = column.desc() if direction == "DESC" else column.asc()
    return query.order_by(ordered.nulls_last(), *tie_break)


def _records(conn: sa.Connection, rows: list[sa.Row[Any]]) -> list[RunRecord]:
    """Attach params, latest metrics and tags to run rows, in one query per table."""
    ids = [row.id for row in rows]
    params = _key_values(conn, tables.params, ids)
    metrics = _key_values(conn, tables.latest_metrics, ids)
    tags = _key_values(conn, tables.tags, ids)
    return [
        RunRecord(
            id=row.id,
            name=row.name,
            project=row.project,
            parent_id=row.parent_id,
            status=row.status,
            start_time=row.start_time,
            end_time=row.end_time,
            params=params.get(row.id, {}),
            metrics=metrics.get(row.id, {}),
            tags=tags.get(row.id, {}),
            spec_hash=row.spec_hash,
            dataset_fingerprint=row.dataset_fingerprint,
            git_commit=row.git_commit,
            package_versions=dict(row.package_versions or {}),
            error=row.error,
            host=row.host,
            pid=row.pid,
            heartbeat_at=row.heartbeat_at,
        )
        for row in rows
    ]


def _key_values(conn: sa.Connection, table: sa.Table, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{run_id: {key: value}}`` for the given runs."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids, _IN_CHUNK):
        query = sa.select(table.c.run_id, table.c.key, table.c.value).where(
            table.c.run_id.in_(chunk)
        )
        for run_id, key, value in conn.execute(query):
            out.setdefault(run_id, {})[key] = value
    return out


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

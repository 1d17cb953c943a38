"""Reading runs a page at a time, for a browser: filters, any sort, a total count.

:func:`page_runs` selects one page of runs in one query and counts every match in another
(one ``COUNT``), then loads the page's params, latest metrics and tags in one query each
(:func:`~shipyard.tracking._query._records`). Conditions on params and tags are equality
joins on the ``(key, value)`` indexes, conditions on metrics joins on ``latest_metrics``, so a
page stays fast at 100,000 runs (``benchmarks/ui.py`` measures it).

Everything here only reads: a ``running`` run whose process is gone is *shown* ``crashed``
(as :class:`~shipyard.tracking.Tracker` would record it) without writing to the store, so a
read-only viewer (the web UI) needs no writer thread and no write permission.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

import sqlalchemy as sa

from shipyard.errors import TrackingError
from shipyard.store import tables
from shipyard.tracking import _liveness
from shipyard.tracking._query import (
    _OPERATORS,
    MetricPoint,
    RunRecord,
    _filter_metric,
    _order,
    _records,
    check_status,
    load_run,
    resolve_run_id,
)
from shipyard.tracking._run import _with_crashes

__all__ = [
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "RUN_STATUSES",
    "RunPage",
    "metric_histories",
    "page_runs",
    "run_projects",
    "view_run",
]

#: Runs on one page unless asked otherwise.
PAGE_SIZE = 50
#: The most runs one page may hold.
MAX_PAGE_SIZE = 500
#: Every status a run can have (for a filter's choices).
RUN_STATUSES = tables.RUN_STATUSES
#: Sort keys besides ``metric.<key>`` and the run columns.
DURATION = "duration"


@dataclass(frozen=True)
class RunPage:
    """One page of runs and where it sits among all the matches.

    Attributes:
        runs: the page's runs, in order, with params, latest metrics and tags.
        total: how many runs match the conditions (on every page).
        offset: how many matching runs come before this page.
        limit: the page size asked for.
    """

    runs: list[RunRecord]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, ``None`` on the last page."""
        following = self.offset + self.limit
        return following if following < self.total else None

    @property
    def prev_offset(self) -> int | None:
        """The offset of the previous page, ``None`` on the first page."""
        return None if self.offset <= 0 else max(0, self.offset - self.limit)

    @property
    def last_offset(self) -> int:
        """The offset of the last page."""
        return max(0, (self.total - 1) // self.limit * self.limit)


def page_runs(
    conn: sa.Connection,
    *,
    project: str | None = None,
    status: str | None = None,
    parent_id: str | EllipsisType | None = None,
    started_after: float | None = None,
    started_before: float | None = None,
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    metrics: Sequence[tuple[str, str, float]] = (),
    order_by: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> RunPage:
    """One page of the runs matching every condition, and how many match in all.

    Args:
        conn: an open connection (only read).
        project: only runs of this project.
        status: only runs in this status (``running``, ``finished``, ``failed``, ``killed``,
            ``crashed``); a crash that no tracker has recorded yet still counts as running.
        parent_id: ``None`` (default) for top-level runs, ``...`` for every run, an id for
            the children (trials) of that run.
        started_after: only runs started at or after this time (epoch seconds).
        started_before: only runs started before this time (epoch seconds).
        params: params that must have exactly these values (``{"model": "lightgbm"}``).
        tags: tags that must have exactly these values.
        metrics: conditions on latest metrics, ``(key, operator, value)`` with an operator
            among ``>``, ``>=``, ``<``, ``<=``, ``=``, ``==``, ``!=``; a run without the metric
            never matches. Several conditions on one key all apply.
        order_by: ``"metric.<key> [ASC|DESC]"``, ``"duration [ASC|DESC]"`` or a run column
            (``start_time``, ``end_time``, ``name``, ``status``, ``project``) with an optional
            direction; runs lacking the metric (or an end) sort last. Defaults to
            ``start_time DESC``; ties are broken by start time (newest first), then id.
        offset: how many matching runs to skip (0 or more).
        limit: the page size, 1 to :data:`MAX_PAGE_SIZE`.

    Returns:
        The page; ``total`` counts every match.

    Raises:
        TrackingError: on an unknown status, operator, order key or direction, or an offset
            or limit out of range.

    Example:
        >>> with store.connect() as conn:  # doctest: +SKIP
        ...     page = page_runs(conn, metrics=[("accuracy", ">", 0.9)],
        ...                      order_by="metric.accuracy DESC")
        >>> page.total, [r.name for r in page.runs][:3]  # doctest: +SKIP
    """
    check_status(status)
    _check_window(offset, limit)
    runs = tables.runs
    where = _where(project, status, parent_id, started_after, started_before)
    counted = sa.select(sa.func.count()).select_from(runs).where(*where)
    count_query = _joined(counted, params, tags, metrics)
    total = int(conn.execute(count_query).scalar_one())
    rows_query = sa.select(runs).where(*where)
    if (params or tags or metrics) and _walk_in_order(conn, counted, total, offset + limit):
        rows_query = _semi_joined(rows_query, params, tags, metrics)
    else:
        rows_query = _joined(rows_query, params, tags, metrics)
    rows = _page_rows(conn, rows_query, count_query, order_by, offset, limit)
    records = _records(conn, rows)
    return RunPage(_shown_crashed(conn, records), total, offset, limit)


def view_run(conn: sa.Connection, run_id: str) -> RunRecord:
    """One run by full id or unique prefix (at least 6 characters), only read: a run whose
    process is gone is shown ``crashed`` without recording it.

    Raises:
        TrackingError: when no single run matches.
    """
    return _shown_crashed(conn, [load_run(conn, run_id)])[0]


def metric_histories(
    conn: sa.Connection, run_id: str, keys: Sequence[str] | None = None
) -> dict[str, list[MetricPoint]]:
    """Every logged value of a run's metrics (all, or ``keys``), by key, each by step, in one
    query.

    Raises:
        TrackingError: when no single run matches ``run_id``.
    """
    full_id = resolve_run_id(conn, run_id)
    m = tables.metrics
    query = sa.select(m.c.key, m.c.step, m.c.value, m.c.timestamp).where(m.c.run_id == full_id)
    if keys is not None:
        query = query.where(m.c.key.in_(list(keys)))
    query = query.order_by(m.c.key, m.c.step, m.c.timestamp, m.c.id)
    out: dict[str, list[MetricPoint]] = {}
    for key, step, value, timestamp in conn.execute(query):
        out.setdefault(key, []).append(MetricPoint(int(step), float(value), float(timestamp)))
    return out


def run_projects(conn: sa.Connection) -> list[str]:
    """The projects that have runs, sorted (for a filter's choices)."""
    column = tables.runs.c.project
    query = sa.select(column).where(column.is_not(None)).distinct().order_by(column)
    return [str(p) for p in conn.execute(query).scalars()]


def _check_window(offset: int, limit: int) -> None:
    if offset < 0:
        msg = f"offset {offset} is negative; expected 0 or more"
        raise TrackingError(msg)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        msg = f"page size {limit} is out of range; expected 1 to {MAX_PAGE_SIZE}"
        raise TrackingError(msg)


def _where(
    project: str | None,
    status: str | None,
    parent_id: str | EllipsisType | None,
    started_after: float | None,
    started_before: float | None,
) -> list[sa.ColumnElement[bool]]:
    runs = tables.runs
    where: list[sa.ColumnElement[bool]] = []
    if project is not None:
        where.append(runs.c.project == project)
    if status is not None:
        where.append(runs.c.status == status)
    if parent_id is None:
        where.append(runs.c.parent_id.is_(None))
    elif not isinstance(parent_id, EllipsisType):
        where.append(runs.c.parent_id == parent_id)
    if started_after is not None:
        where.append(runs.c.start_time >= float(started_after))
    if started_before is not None:
        where.append(runs.c.start_time < float(started_before))
    return where


def _joined(
    query: sa.Select[Any],
    params: Mapping[str, str] | None,
    tags: Mapping[str, str] | None,
    metrics: Sequence[tuple[str, str, float]],
) -> sa.Select[Any]:
    """``query`` joined with one row per condition: ``(run_id, key)`` is each table's key, so
    no join multiplies runs."""
    runs = tables.runs
    for kind, table, wanted in (("param", tables.params, params), ("tag", tables.tags, tags)):
        for i, (key, value) in enumerate((wanted or {}).items()):
            kv = table.alias(f"{kind}_{i}")
            on = sa.and_(kv.c.run_id == runs.c.id, kv.c.key == key, kv.c.value == str(value))
            query = query.join(kv, on)
    for i, (metric, op, number) in enumerate(metrics):
        query = _filter_metric(query, i, metric, (op, number))
    return query


def _walk_in_order(conn: sa.Connection, counted: sa.Select[Any], total: int, needed: int) -> bool:
    """Whether to find a filtered page by walking the runs in the page's order, testing each
    (``EXISTS``), rather than by collecting every match and sorting them (joins).

    Walking reads about ``needed * n_runs / total`` runs, collecting ``total``: walk when
    that is fewer. Both give the same rows; SQLite's planner cannot tell which is cheaper
    (it does not know how many runs a value matches), so the count decides.
    """
    if total == 0:
        return False
    n_runs = int(conn.execute(counted).scalar_one())
    return needed * n_runs < total * total


def _semi_joined(
    query: sa.Select[Any],
    params: Mapping[str, str] | None,
    tags: Mapping[str, str] | None,
    metrics: Sequence[tuple[str, str, float]],
) -> sa.Select[Any]:
    """``query`` with one ``EXISTS`` per condition (as :func:`_joined` filters)."""
    runs = tables.runs
    for table, wanted in ((tables.params, params), (tables.tags, tags)):
        for key, value in (wanted or {}).items():
            found = sa.exists().where(
                table.c.run_id == runs.c.id, table.c.key == key, table.c.value == str(value)
            )
            query = query.where(found)
    lm = tables.latest_metrics
    for metric, op, number in metrics:
        compare = _OPERATORS.get(op)
        if compare is None:  # _filter_metric names the operators
            return _filter_metric(query, 0, metric, (op, number))
        found = sa.exists().where(
            lm.c.run_id == runs.c.id,
            lm.c.key == metric.removeprefix("metric."),
            compare(lm.c.value, float(number)),
        )
        query = query.where(found)
    return query


def _page_rows(
    conn: sa.Connection,
    query: sa.Select[Any],
    count_query: sa.Select[Any],
    order_by: str | None,
    offset: int,
    limit: int,
) -> list[sa.Row[Any]]:
    """The page's rows of ``query`` in ``order_by``'s order.

    Sorting by a metric reads the runs that have it in the order of the ``(key, value)``
    index, stopping at the page's end, then (only past them) the runs without it: never a
    sort of every run, which a left join on the metric would need.
    """
    parts = (order_by or "").split()
    if not parts or not parts[0].startswith("metric.") or len(parts) > 2:
        return list(conn.execute(_page_order(query, order_by).offset(offset).limit(limit)))
    direction = parts[1].upper() if len(parts) == 2 else "ASC"
    if direction not in ("ASC", "DESC"):
        _order(query, order_by)  # raises, naming the direction
    runs = tables.runs
    lm = tables.latest_metrics.alias("order_metric")
    on = sa.and_(lm.c.run_id == runs.c.id, lm.c.key == parts[0].removeprefix("metric."))
    value = lm.c.value.desc() if direction == "DESC" else lm.c.value.asc()
    tie_break = (runs.c.start_time.desc(), runs.c.id)
    having = query.join(lm, on).order_by(value, *tie_break).offset(offset).limit(limit)
    rows = list(conn.execute(having))
    if len(rows) == limit:
        return rows
    if rows:  # the runs having the metric ended on this page
        n_having = offset + len(rows)
    else:
        n_having = int(conn.execute(count_query.join(lm, on)).scalar_one())
    lacking = (
        query.where(~sa.exists().where(on))
        .order_by(*tie_break)
        .offset(max(0, offset - n_having))
        .limit(limit - len(rows))
    )
    return rows + list(conn.execute(lacking))


def _page_order(query: sa.Select[Any], order_by: str | None) -> sa.Select[Any]:
    """:func:`~shipyard.tracking._query._order`, plus ``duration``."""
    parts = (order_by or "").split()
    if not parts or parts[0] != DURATION:
        return _order(query, order_by)
    direction = parts[1].upper() if len(parts) == 2 else "ASC"
    if len(parts) > 2 or direction not in ("ASC", "DESC"):
        msg = f"cannot order by {order_by!r}; expected e.g. 'duration DESC'"
        raise TrackingError(msg)
    runs = tables.runs
    took = runs.c.end_time - runs.c.start_time
    ordered = took.desc() if direction == "DESC" else took.asc()
    return query.order_by(ordered.nulls_last(), runs.c.start_time.desc(), runs.c.id)


def _shown_crashed(conn: sa.Connection, records: list[RunRecord]) -> list[RunRecord]:
    """The records, those whose owner process is gone shown ``crashed`` (nothing written)."""
    running = [r.id for r in records if r.status == "running"]
    if not running:
        return records
    crashes = {c.run_id: c for c in _liveness.find_crashed(conn, run_ids=running)}
    return [_with_crashes(r, crashes) for r in records]

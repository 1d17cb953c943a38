"""Monitoring history: each check of a model version, kept as a time series in the store.

A check (:class:`CheckRecord`) is one drift test of one model version over one window of its
prediction log: when, which window, how many rows, the dataset's verdict, and each column's
test, statistic and verdict (:class:`ColumnResult`). :class:`MonitorHistory` records a check
in one transaction and reads the series back, so that services and the UI never touch the
tables.

Example:
    >>> history = MonitorHistory(store)  # doctest: +SKIP
    >>> history.record("penguins", 3, inputs=report, window=(start, end))  # doctest: +SKIP
    >>> [c.share_drifted for c in history.checks("penguins", version=3)]  # doctest: +SKIP
    [0.0, 0.25, 0.5]
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from shipyard.errors import ModelNotFoundError
from shipyard.store import Store, tables

__all__ = [
    "CheckRecord",
    "ColumnResult",
    "DriftSummary",
    "Incident",
    "MetricResult",
    "MonitorHistory",
    "MonitoredVersion",
    "PerformanceSummary",
]

SECTIONS = ("inputs", "predictions")


class _ColumnVerdict(Protocol):
    """What is kept of one column's test (:class:`shipyard.monitor.ColumnDrift` has it)."""

    @property
    def column(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def method(self) -> str | None: ...
    @property
    def statistic(self) -> str | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def drifted(self) -> bool | None: ...
    @property
    def n_current(self) -> int: ...
    @property
    def missing_current(self) -> float: ...


class _MetricVerdict(Protocol):
    """What is kept of one metric (:class:`shipyard.monitor.MetricComparison` has it)."""

    @property
    def metric(self) -> str: ...
    @property
    def reference(self) -> float | None: ...
    @property
    def estimated(self) -> float | None: ...
    @property
    def realised(self) -> float | None: ...
    @property
    def n_labelled(self) -> int: ...


class PerformanceSummary(Protocol):
    """What is kept of a performance report (:class:`shipyard.monitor.PerformanceReport`)."""

    @property
    def metrics(self) -> Sequence[_MetricVerdict]: ...


class DriftSummary(Protocol):
    """What is kept of a drift report (:class:`shipyard.monitor.DriftSummary` has it; the
    registry does not import the statistics, so that the server need not load scipy)."""

    @property
    def columns(self) -> Sequence[_ColumnVerdict]: ...
    @property
    def n_reference(self) -> int: ...
    @property
    def n_current(self) -> int: ...
    @property
    def n_drifted(self) -> int: ...
    @property
    def share_drifted(self) -> float: ...
    @property
    def drifted(self) -> bool: ...


@dataclass(frozen=True)
class ColumnResult:
    """One column's test in a recorded check.

    Attributes:
        section: ``inputs`` (a model input) or ``predictions`` (its output).
        column: the column.
        kind: ``numeric`` or ``categorical``.
        method: the test (``None`` when the column had no values to test).
        statistic: ``p_value`` or ``distance``.
        value: the statistic.
        threshold: the threshold it was compared with.
        drifted: the verdict (``None`` when not tested).
        n_current: the window's values in this column.
        missing_current: the window's share of missing values in this column.
    """

    section: str
    column: str
    kind: str
    method: str | None
    statistic: str | None
    value: float | None
    threshold: float | None
    drifted: bool | None
    n_current: int
    missing_current: float


@dataclass(frozen=True)
class MetricResult:
    """One metric in a recorded check.

    Attributes:
        metric: the metric's name.
        reference: its holdout value at registration.
        estimated: its estimate over the window (``None``: not estimable).
        realised: its value over the window's labelled predictions (``None``: no labels).
        n_labelled: the labelled predictions behind ``realised``.
    """

    metric: str
    reference: float | None
    estimated: float | None
    realised: float | None
    n_labelled: int


@dataclass(frozen=True)
class CheckRecord:
    """One recorded check of a model version.

    Attributes:
        id: the check's id.
        model_name: the registered model.
        model_version: its version.
        kind: what was checked (``drift``).
        window_start: the window's start, epoch seconds (``None``: the log's first row).
        window_end: the window's end, epoch seconds (``None``: the log's last row).
        created_at: when the check ran, epoch seconds.
        n_reference: reference rows.
        n_current: rows in the window.
        n_tested: input columns tested.
        n_drifted: input columns that drifted.
        share_drifted: their share.
        drifted: the inputs' dataset-level verdict.
        summary: what else the check reported (prediction drift, settings), JSON-ready.
        results: each column's result (filled by :meth:`MonitorHistory.get`).
        performance: each metric's result (filled by :meth:`MonitorHistory.get`).
    """

    id: str
    model_name: str
    model_version: int
    kind: str
    window_start: float | None
    window_end: float | None
    created_at: float
    n_reference: int
    n_current: int
    n_tested: int
    n_drifted: int
    share_drifted: float
    drifted: bool
    summary: dict[str, Any]
    results: tuple[ColumnResult, ...] = field(default=())
    performance: tuple[MetricResult, ...] = field(default=())


@dataclass(frozen=True)
class MonitoredVersion:
    """A model version with recorded checks (see :meth:`MonitorHistory.monitored`).

    Attributes:
        model_name: the registered model.
        model_version: its version.
        n_checks: its recorded checks.
        n_drifted: those whose inputs drifted.
        first_checked_at: its first check, epoch seconds.
        last_checked_at: its latest check, epoch seconds.
    """

    model_name: str
    model_version: int
    n_checks: int
    n_drifted: int
    first_checked_at: float
    last_checked_at: float


@dataclass(frozen=True)
class Incident:
    """An alert rule that fired: open until a check finds it no longer fires.

    Attributes:
        id: the incident's id.
        model_name: the registered model.
        rule: the rule's label (its name, or its condition).
        signal: the signal the rule watches.
        threshold: the rule's bound.
        opened_at: when a check first found the rule firing, epoch seconds.
        opened_check_id: that check.
        resolved_at: when a check found it no longer firing (``None``: still open).
        resolved_check_id: that check.
        value: the signal's latest value while open (at resolution: the resolving value).
        open_notified: whether the opening was delivered to every channel.
        resolve_notified: whether the resolution was delivered to every channel.
    """

    id: str
    model_name: str
    rule: str
    signal: str
    threshold: float
    opened_at: float
    opened_check_id: str | None
    resolved_at: float | None
    resolved_check_id: str | None
    value: float | None
    open_notified: bool
    resolve_notified: bool

    @property
    def is_open(self) -> bool:
        """Whether the incident is still open."""
        return self.resolved_at is None


class MonitorHistory:
    """Record monitoring checks and read them back, over a :class:`~shipyard.store.Store`.

    Args:
        store: the metadata store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        name: str,
        version: int,
        *,
        inputs: DriftSummary,
        predictions: DriftSummary | None = None,
        performance: PerformanceSummary | None = None,
        window: tuple[float | None, float | None] = (None, None),
        summary: dict[str, Any] | None = None,
    ) -> CheckRecord:
        """Record one drift check of a model version, in one transaction.

        Args:
            name: the registered model.
            version: its version.
            inputs: the drift report of its input columns (the check's verdict).
            predictions: the drift report of its predictions, if tested.
            performance: the window's estimated and realised metrics, if computed.
            window: the window's start and end, epoch seconds.
            summary: anything else to keep with the check (JSON-ready).

        Returns:
            The recorded check, with its results.

        Raises:
            ModelNotFoundError: no such model version is registered.
        """
        summary = dict(summary or {})
        if predictions is not None:
            summary["predictions"] = {
                "drifted": predictions.drifted,
                "share_drifted": predictions.share_drifted,
                "n_drifted": predictions.n_drifted,
            }
        record = CheckRecord(
            id=uuid.uuid4().hex,
            model_name=name,
            model_version=version,
            kind="drift",
            window_start=window[0],
            window_end=window[1],
            created_at=time.time(),
            n_reference=inputs.n_reference,
            n_current=inputs.n_current,
            n_tested=sum(1 for c in inputs.columns if c.drifted is not None),
            n_drifted=inputs.n_drifted,
            share_drifted=inputs.share_drifted,
            drifted=inputs.drifted,
            summary=summary,
            results=(
                *_results("inputs", inputs),
                *(_results("predictions", predictions) if predictions is not None else ()),
            ),
            performance=tuple(
                MetricResult(m.metric, m.reference, m.estimated, m.realised, m.n_labelled)
                for m in (performance.metrics if performance is not None else ())
            ),
        )
        row = {k: v for k, v in record.__dict__.items() if k not in ("results", "performance")}
        with self._store.begin() as conn:
            exists = conn.execute(
                sa.select(tables.model_versions.c.version).where(
                    tables.model_versions.c.name == name,
                    tables.model_versions.c.version == version,
                )
            ).first()
            if exists is None:
                msg = f"model version {name}/{version} is not registered"
                raise ModelNotFoundError(msg)
            conn.execute(sa.insert(tables.monitor_checks).values(row))
            if record.results:
                conn.execute(
                    sa.insert(tables.monitor_results),
                    [{"check_id": record.id, **r.__dict__} for r in record.results],
                )
            if record.performance:
                conn.execute(
                    sa.insert(tables.monitor_performance),
                    [{"check_id": record.id, **m.__dict__} for m in record.performance],
                )
        return record

    def checks(
        self,
        name: str,
        *,
        version: int | None = None,
        since: float | None = None,
        limit: int = 1_000,
    ) -> list[CheckRecord]:
        """A model's checks, oldest first (without their per-column results).

        Args:
            name: the registered model.
            version: only this version's checks; ``None`` for every version.
            since: only checks run at or after this time (epoch seconds).
            limit: the most checks returned (the newest ones).
        """
        t = tables.monitor_checks
        query = sa.select(t).where(t.c.model_name == name)
        if version is not None:
            query = query.where(t.c.model_version == version)
        if since is not None:
            query = query.where(t.c.created_at >= since)
        query = query.order_by(t.c.created_at.desc(), t.c.id).limit(limit)
        with self._store.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_check(row) for row in reversed(rows)]

    def series(self, name: str, version: int, *, limit: int = 365) -> list[CheckRecord]:
        """A version's latest checks, oldest first, each with its metrics (two queries).

        Args:
            name: the registered model.
            version: its version.
            limit: the most checks returned (the newest ones).
        """
        checks = self.checks(name, version=version, limit=limit)
        if not checks:
            return []
        perf = tables.monitor_performance
        by_check: dict[str, list[MetricResult]] = {}
        with self._store.connect() as conn:
            ids = [c.id for c in checks]
            for start in range(0, len(ids), 500):
                rows = conn.execute(
                    sa.select(perf).where(perf.c.check_id.in_(ids[start : start + 500]))
                ).mappings()
                for row in rows:
                    fields = {k: v for k, v in row.items() if k != "check_id"}
                    by_check.setdefault(row["check_id"], []).append(MetricResult(**fields))
        return [dataclasses.replace(c, performance=tuple(by_check.get(c.id, ()))) for c in checks]

    def detailed_series(self, name: str, version: int, *, limit: int = 365) -> list[CheckRecord]:
        """A version's latest checks, oldest first, each with its per-column results and its
        metrics (three queries, whatever the number of checks: the UI's heatmap reads this).

        Args:
            name: the registered model.
            version: its version.
            limit: the most checks returned (the newest ones).
        """
        checks = self.series(name, version, limit=limit)
        if not checks:
            return []
        results = tables.monitor_results
        by_check: dict[str, list[ColumnResult]] = {}
        ids = [c.id for c in checks]
        with self._store.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(
                    sa.select(results).where(results.c.check_id.in_(ids[start : start + 500]))
                ).mappings()
                for row in rows:
                    fields = {k: v for k, v in row.items() if k != "check_id"}
                    by_check.setdefault(row["check_id"], []).append(ColumnResult(**fields))
        order = {section: i for i, section in enumerate(SECTIONS)}

        def key(r: ColumnResult) -> tuple[int, str]:
            return order.get(r.section, len(order)), r.column

        return [
            dataclasses.replace(c, results=tuple(sorted(by_check.get(c.id, ()), key=key)))
            for c in checks
        ]

    def monitored(self, name: str | None = None) -> list[MonitoredVersion]:
        """Every model version with recorded checks, by model and version (one query).

        Args:
            name: only this model's versions; ``None`` for every model.
        """
        t = tables.monitor_checks
        query = sa.select(
            t.c.model_name,
            t.c.model_version,
            sa.func.count().label("n_checks"),
            sa.func.sum(sa.case((t.c.drifted, 1), else_=0)).label("n_drifted"),
            sa.func.min(t.c.created_at).label("first_checked_at"),
            sa.func.max(t.c.created_at).label("last_checked_at"),
        ).group_by(t.c.model_name, t.c.model_version)
        if name is not None:
            query = query.where(t.c.model_name == name)
        query = query.order_by(t.c.model_name, t.c.model_version)
        with self._store.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            MonitoredVersion(
                model_name=row["model_name"],
                model_version=int(row["model_version"]),
                n_checks=int(row["n_checks"]),
                n_drifted=int(row["n_drifted"] or 0),
                first_checked_at=float(row["first_checked_at"]),
                last_checked_at=float(row["last_checked_at"]),
            )
            for row in rows
        ]

    def get(self, check_id: str) -> CheckRecord:
        """One check with its per-column results.

        Raises:
            ModelNotFoundError: no check has that id.
        """
        checks, results = tables.monitor_checks, tables.monitor_results
        with self._store.connect() as conn:
            row = conn.execute(sa.select(checks).where(checks.c.id == check_id)).mappings().first()
            if row is None:
                msg = f"no monitoring check has the id {check_id!r}"
                raise ModelNotFoundError(msg)
            columns = (
                conn.execute(sa.select(results).where(results.c.check_id == check_id))
                .mappings()
                .all()
            )
            perf = tables.monitor_performance
            metrics = (
                conn.execute(
                    sa.select(perf).where(perf.c.check_id == check_id).order_by(perf.c.metric)
                )
                .mappings()
                .all()
            )
        order = {section: i for i, section in enumerate(SECTIONS)}
        parsed = sorted(
            (ColumnResult(**{k: v for k, v in r.items() if k != "check_id"}) for r in columns),
            key=lambda r: (order.get(r.section, len(order)), r.column),
        )
        performance = tuple(
            MetricResult(**{k: v for k, v in m.items() if k != "check_id"}) for m in metrics
        )
        return _check(row, tuple(parsed), performance)

    # -- incidents -------------------------------------------------------------------------

    def incidents(
        self, name: str, *, open_only: bool = False, limit: int = 1_000
    ) -> list[Incident]:
        """A model's incidents, newest first.

        Args:
            name: the registered model.
            open_only: only those not yet resolved.
            limit: the most returned.
        """
        t = tables.monitor_incidents
        query = sa.select(t).where(t.c.model_name == name)
        if open_only:
            query = query.where(t.c.resolved_at.is_(None))
        query = query.order_by(t.c.opened_at.desc(), t.c.id).limit(limit)
        with self._store.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_incident(row) for row in rows]

    def open_incident(
        self,
        name: str,
        *,
        rule: str,
        signal: str,
        threshold: float,
        value: float,
        check_id: str | None,
    ) -> Incident:
        """Open an incident for a rule that started firing."""
        incident = Incident(
            id=uuid.uuid4().hex,
            model_name=name,
            rule=rule,
            signal=signal,
            threshold=threshold,
            opened_at=time.time(),
            opened_check_id=check_id,
            resolved_at=None,
            resolved_check_id=None,
            value=value,
            open_notified=False,
            resolve_notified=False,
        )
        with self._store.begin() as conn:
            conn.execute(sa.insert(tables.monitor_incidents).values(incident.__dict__))
        return incident

    def update_incident(
        self,
        incident_id: str,
        *,
        value: float | None = None,
        resolved_check_id: str | None = None,
        resolve: bool = False,
        open_notified: bool | None = None,
        resolve_notified: bool | None = None,
    ) -> Incident:
        """Record a new value, the resolution or a delivered notice on an incident.

        Raises:
            ModelNotFoundError: no incident has that id.
        """
        t = tables.monitor_incidents
        changes: dict[str, Any] = {}
        if value is not None:
            changes["value"] = value
        if resolve:
            changes["resolved_at"] = time.time()
            changes["resolved_check_id"] = resolved_check_id
        if open_notified is not None:
            changes["open_notified"] = open_notified
        if resolve_notified is not None:
            changes["resolve_notified"] = resolve_notified
        with self._store.begin() as conn:
            if changes:
                conn.execute(sa.update(t).where(t.c.id == incident_id).values(changes))
            row = conn.execute(sa.select(t).where(t.c.id == incident_id)).mappings().first()
        if row is None:
            msg = f"no incident has the id {incident_id!r}"
            raise ModelNotFoundError(msg)
        return _incident(row)

    def undelivered(self, name: str) -> list[Incident]:
        """A model's incidents with a notice not yet delivered (retried at the next check)."""
        t = tables.monitor_incidents
        query = (
            sa.select(t)
            .where(
                t.c.model_name == name,
                sa.or_(
                    t.c.open_notified.is_(False),
                    sa.and_(t.c.resolved_at.is_not(None), t.c.resolve_notified.is_(False)),
                ),
            )
            .order_by(t.c.opened_at)
        )
        with self._store.connect() as conn:
            return [_incident(row) for row in conn.execute(query).mappings().all()]


def _results(section: str, report: DriftSummary) -> list[ColumnResult]:
    return [
        ColumnResult(
            section=section,
            column=c.column,
            kind=c.kind,
            method=c.method,
            statistic=c.statistic,
            value=c.value,
            threshold=c.threshold,
            drifted=c.drifted,
            n_current=c.n_current,
            missing_current=c.missing_current,
        )
        for c in report.columns
    ]


def _check(
    row: Any, results: tuple[ColumnResult, ...] = (), performance: tuple[MetricResult, ...] = ()
) -> CheckRecord:
    fields = dict(row)
    fields["drifted"] = bool(fields["drifted"])
    return CheckRecord(**fields, results=results, performance=performance)


def _incident(row: Any) -> Incident:
    fields = dict(row)
    fields["open_notified"] = bool(fields["open_notified"])
    fields["resolve_notified"] = bool(fields["resolve_notified"])
    return Incident(**fields)

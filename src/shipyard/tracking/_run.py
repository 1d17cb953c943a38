"""Runs: the :class:`Tracker` that starts and reads them, and the :class:`Run` that logs.

A run's row is written when it starts (so it can be found at once); its params, tags and
metrics go through the tracker's :class:`~shipyard.tracking._writer.BufferedWriter` and are
durable when the run ends. Runs still running when the interpreter exits are flushed and
marked ``killed`` by an ``atexit`` hook; a run that raises inside ``with`` is marked
``failed`` with the error text. A process that dies without running its ``atexit`` hooks
(``kill -9``, out of memory, power loss) cannot mark anything: each run records its owner
process and a heartbeat, and reads mark a run whose owner is dead ``crashed``
(see :mod:`shipyard.tracking._liveness`).

A store that cannot be reached when a run ends (the database restarting, the network down)
does not lose the end: recording it is retried with backoff for up to ``end_retry_s``
seconds per tracker (the first failure starts the window; once it has passed, later ends
try once). A run whose end still could not be recorded stays ``running`` in the store until
a read finds its process gone and marks it ``crashed``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from types import EllipsisType, TracebackType
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shipyard.errors import StoreError, TrackingError
from shipyard.store import redact_url, tables
from shipyard.tracking import _liveness, _query
from shipyard.tracking._lineage import Lineage
from shipyard.tracking._query import MetricPoint, RunRecord
from shipyard.tracking._writer import BufferedWriter

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = [
    "END_STATUSES",
    "Run",
    "Tracker",
]

logger = logging.getLogger(__name__)

#: Statuses a run can end with.
END_STATUSES = ("finished", "failed", "killed")
_MAX_KEY = 250  # the width of the key columns
#: Seconds a tracker keeps trying to record a run's end while the store cannot be reached.
END_RETRY_S = 15.0
_END_RETRY_FIRST_S = 0.25  # the first wait; it doubles up to _END_RETRY_MAX_S
_END_RETRY_MAX_S = 4.0

# Runs still running in this process, ended as 'killed' by the atexit hook.
_RUNNING: dict[str, Run] = {}
_RUNNING_LOCK = threading.Lock()
_ATEXIT_REGISTERED = False


class Run:
    """A running run: logs params, metrics, tags and artifacts. Use it as a context manager.

    Runs are created by :meth:`Tracker.start_run` (or :func:`shipyard.start_run`), never
    directly.

    Example:
        >>> with tracker.start_run("baseline") as run:  # doctest: +SKIP
        ...     run.log_params({"C": 1.0})
        ...     run.log_metric("accuracy", 0.93)
    """

    def __init__(self, tracker: Tracker, run_id: str, name: str) -> None:
        self.id = run_id
        self.name = name
        self._tracker = tracker
        self._writer = tracker._writer
        self._lock = threading.Lock()
        self._params: dict[str, str] = {}
        self._next_step: dict[str, int] = {}
        self._ended = False
        self._on_end: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        state = "ended" if self._ended else "running"
        return f"Run(id={self.id!r}, name={self.name!r}, {state})"

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` has been called."""
        return self._ended

    # -- logging ---------------------------------------------------------------------------

    def log_param(self, key: str, value: object) -> None:
        """Record a parameter (stored as ``str(value)``).

        Raises:
            TrackingError: when the run has ended, or ``key`` was logged with another value.
        """
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record several parameters; all or none are accepted.

        Raises:
            TrackingError: when the run has ended, or a key was logged with another value.
        """
        self._check_open()
        with self._lock:
            new = self._new_params(params)
            self._params.update(new)
        if new:
            self._writer.add_params([(self.id, k, v) for k, v in new.items()])

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Record one value of a metric.

        Args:
            key: the metric's name.
            value: a number.
            step: the step (epoch, iteration); ``None`` takes the next step for this key.

        Raises:
            TrackingError: when the run has ended or the value is not a number.
            StoreError: when an earlier background write failed.
        """
        if self._ended:
            self._check_open()
        number = _as_float(_check_key(key, "metric", self.id), value, self.id)
        with self._lock:
            step = self._take_step(key, step)
        self._writer.add_metric((self.id, key, number, step, time.time()))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record one value for each of several metrics, at the same ``step``."""
        self._check_open()
        numbers = {
            _check_key(key, "metric", self.id): _as_float(key, value, self.id)
            for key, value in metrics.items()
        }
        now = time.time()
        with self._lock:
            rows = [(self.id, k, v, self._take_step(k, step), now) for k, v in numbers.items()]
        self._writer.add_metrics(rows)

    def set_tag(self, key: str, value: object) -> None:
        """Set a tag (stored as ``str(value)``); setting it again replaces the value."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set several tags."""
        self._check_open()
        rows = [(self.id, _check_key(k, "tag", self.id), str(v)) for k, v in tags.items()]
        self._writer.add_tags(rows)

    def log_artifact(self, name: str, data: bytes) -> str:
        """Store ``data`` as the run's artifact ``name``; returns its sha256.

        Raises:
            TrackingError: when the run has ended or ``name`` is not a relative path.
            StoreError: when the artifact store fails.
        """
        self._check_open()
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith("/") or ".." in parts or "" in parts:
            msg = (
                f"artifact name {name!r} of run {self.id} is not a plain relative path; "
                "use e.g. 'plots/roc.png'"
            )
            raise TrackingError(msg)
        return self._tracker.store.artifacts.put(f"runs/{self.id}/{name}", data, run_id=self.id)

    # -- ending ----------------------------------------------------------------------------

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Flush everything logged and record the end status; calling it again does nothing.

        Args:
            status: ``finished``, ``failed`` or ``killed``.
            error: the error text of a failed run.

        Raises:
            TrackingError: on an unknown status.
            StoreError: when buffered values could not be written (the end is still
                recorded, with the write error in ``error``; a run ending ``finished`` is
                recorded ``failed``, as what it logged is incomplete).
        """
        if status not in END_STATUSES:
            msg = f"cannot end run {self.id} with status {status!r}; use one of {END_STATUSES}"
            raise TrackingError(msg)
        with self._lock:
            if self._ended:
                return
            self._ended = True
        write_error: StoreError | None = None
        try:
            self._writer.flush()
        except StoreError as exc:  # values were lost: the record is not a finished run's
            write_error = exc
            error = f"{error}\n{exc}" if error else str(exc)
            status = "failed" if status == "finished" else status
        try:
            self._tracker._finish(self.id, status, error)
        finally:
            _forget(self)
            self._run_end_callbacks()
        if write_error is not None:
            raise write_error

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("finished")
            return
        status = "failed" if isinstance(exc, Exception) else "killed"
        try:
            self.end(status, error=f"{type(exc).__name__}: {exc}")
        except StoreError as store_exc:  # the run's own exception matters more; keep both
            logger.error("run %s: could not record its end: %s", self.id, store_exc)
            exc.add_note(f"shipyard could not record the end of run {self.id}: {store_exc}")

    # -- internals -------------------------------------------------------------------------

    def _add_end_callback(self, callback: Callable[[], None]) -> None:
        self._on_end.append(callback)

    def _run_end_callbacks(self) -> None:
        for callback in self._on_end:
            try:
                callback()
            except Exception:
                logger.exception("run %s: end callback failed", self.id)

    def _check_open(self) -> None:
        if self._ended:
            msg = f"run {self.id} ({self.name}) has ended; start a new run to log more"
            raise TrackingError(msg)

    def _new_params(self, params: Mapping[str, object]) -> dict[str, str]:
        new: dict[str, str] = {}
        for key, value in params.items():
            text = str(value)
            old = self._params.get(_check_key(key, "param", self.id), new.get(key))
            if old is not None and old != text:
                msg = (
                    f"param {key!r} of run {self.id} was logged as {old!r}, now {text!r}; "
                    "params are immutable: log a new param or start a new run"
                )
                raise TrackingError(msg)
            if old is None:
                new[key] = text
        return new

    def _take_step(self, key: str, step: int | None) -> int:
        """The step for this value; must be called under ``self._lock``."""
        if step is None:
            step = self._next_step.get(key, 0)
        elif not isinstance(step, int) or isinstance(step, bool):
            msg = f"step of metric {key!r} in run {self.id} is {step!r}; expected an int or None"
            raise TrackingError(msg)
        if step + 1 > self._next_step.get(key, 0):
            self._next_step[key] = step + 1
        return step


class Tracker:
    """Starts runs in a store and reads them back.

    Create one per store in an entry point (never at import time); it owns a background
    writer thread, stopped by :meth:`close`.

    Reads (:meth:`get_run`, :meth:`search_runs`) first mark ``crashed`` the running runs
    whose owner process is gone (see :mod:`shipyard.tracking._liveness`).

    Args:
        store: the metadata store.
        flush_interval: seconds between background flushes of logged values.
        max_buffer: buffered rows that trigger an early flush.
        heartbeat_interval: seconds between heartbeats of this tracker's running runs.
        stale_after: seconds without a heartbeat after which a run owned by a process on
            another machine counts as crashed (on the owner's machine the process decides).
        end_retry_s: seconds to keep trying to record runs' ends while the store cannot be
            reached (a database restart); counted from the first failure, for the tracker
            as a whole, so a store that stays down delays the first end only.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.5,
        max_buffer: int = 10_000,
        heartbeat_interval: float = _liveness.HEARTBEAT_INTERVAL,
        stale_after: float = _liveness.STALE_AFTER,
        end_retry_s: float = END_RETRY_S,
    ):
        if stale_after <= heartbeat_interval:
            msg = (
                f"stale_after={stale_after!r} must exceed heartbeat_interval="
                f"{heartbeat_interval!r}, or live runs would be taken for crashed"
            )
            raise ValueError(msg)
        self.store = store
        self._stale_after = stale_after
        self._end_retry_s = end_retry_s
        self._unreachable_until: float | None = None  # the end of the retry window, once open
        self._writer = BufferedWriter(
            store,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            heartbeat=self._beat,
            heartbeat_interval=heartbeat_interval,
        )
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:  # the exception in flight says what went wrong first: keep it
            self.close()
        except StoreError as close_exc:
            logger.error("closing the tracker failed too: %s", close_exc)
            exc.add_note(f"shipyard could not write the runs' last values: {close_exc}")

    def start_run(
        self,
        name: str | None = None,
        *,
        project: str | None = None,
        parent_id: str | None = None,
        tags: Mapping[str, object] | None = None,
        lineage: Lineage | None = None,
    ) -> Run:
        """Start a run; its row is written at once.

        Args:
            name: a display name; defaults to ``run-<first 8 id characters>``.
            project: the project the run belongs to.
            parent_id: id (or unique prefix) of the parent run, for nested runs.
            tags: initial tags.
            lineage: where the run came from (see :func:`collect_lineage`).

        Raises:
            TrackingError: when ``parent_id`` matches no single run.
            StoreError: when the store cannot be written.
        """
        run_id = uuid.uuid4().hex
        name = name or f"run-{run_id[:8]}"
        lineage = lineage or Lineage()
        row = {
            "id": run_id,
            "project": project,
            "name": name,
            "status": "running",
            "start_time": time.time(),
            "spec_hash": lineage.spec_hash,
            "dataset_fingerprint": lineage.dataset_fingerprint,
            "git_commit": lineage.git_commit,
            "package_versions": dict(lineage.package_versions),
            **_liveness.owner_columns(),
        }
        with _write(self.store, "start run", run_id) as conn:
            if parent_id is not None:
                parent_id = _query.resolve_run_id(conn, parent_id)
            heartbeat = tables.db_epoch(conn.dialect.name)
            conn.execute(
                sa.insert(tables.runs).values(**row, parent_id=parent_id, heartbeat_at=heartbeat)
            )
        run = Run(self, run_id, name)
        self._remember(run)
        if tags:
            run.set_tags(tags)
        logger.info("started run %s (%s)", run_id, name)
        return run

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix (at least 6 characters).

        Raises:
            TrackingError: when no single run matches.
        """
        self._flush_pending()
        with self.store.connect() as conn:
            full_id = _query.resolve_run_id(conn, run_id)
        unrecorded = self._mark_crashed([full_id])
        with self.store.connect() as conn:
            return _with_crashes(_query.load_run(conn, full_id), unrecorded)

    def search_runs(
        self,
        *,
        project: str | None = None,
        status: str | None = None,
        parent_id: str | EllipsisType | None = ...,
        filter: dict[str, tuple[str, float]] | None = None,
        order_by: str | None = None,
        limit: int = 1000,
    ) -> list[RunRecord]:
        """Runs matching every condition; see :func:`shipyard.tracking._query.search_runs`.

        Example:
            >>> tracker.search_runs(  # doctest: +SKIP
            ...     filter={"accuracy": (">", 0.9)}, order_by="metric.accuracy DESC", limit=5
            ... )
        """
        _query.check_status(status)
        self._flush_pending()
        unrecorded = self._mark_crashed()
        with self.store.connect() as conn:
            found = _query.search_runs(
                conn,
                project=project,
                status=status,
                parent_id=parent_id,
                filter=filter,
                order_by=order_by,
                limit=limit,
            )
        records = [_with_crashes(record, unrecorded) for record in found]
        return [r for r in records if status is None or r.status == status]

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of metric ``key`` in a run, by step."""
        self._flush_pending()
        with self.store.connect() as conn:
            return _query.metric_history(conn, run_id, key)

    def flush(self) -> None:
        """Write every buffered value now.

        Raises:
            StoreError: when the write (or an earlier background write) failed.
        """
        self._writer.flush()

    def close(self, status: str = "killed") -> None:
        """End the runs still running with ``status``, flush, and stop the writer thread."""
        with self._lock:
            running = list(self._runs.values())
        try:
            first_error = _end_all(running, status, "the tracker was closed while it ran")
        finally:
            self._writer.close()
        if first_error is not None:
            raise first_error

    # -- internals -------------------------------------------------------------------------

    def _remember(self, run: Run) -> None:
        with self._lock:
            self._runs[run.id] = run
        _register(run)
        self._writer.start()

    def _finish(self, run_id: str, status: str, error: str | None) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
        values = {"status": status, "end_time": time.time(), "error": error}
        delay = _END_RETRY_FIRST_S
        while True:
            try:
                with _write(self.store, f"end run as {status}", run_id) as conn:
                    update = sa.update(tables.runs).where(tables.runs.c.id == run_id)
                    conn.execute(update.values(values))
            except StoreError as exc:
                wait = self._end_retry_wait(exc, delay)
                if wait is None:
                    raise
                logger.warning(
                    "run %s: the store is unreachable; retrying to record it as %s in %.2f s (%s)",
                    run_id,
                    status,
                    wait,
                    exc,
                )
                time.sleep(wait)
                delay = min(2 * delay, _END_RETRY_MAX_S)
                continue
            with self._lock:
                self._unreachable_until = None
            logger.info("run %s %s", run_id, status)
            return

    def _end_retry_wait(self, exc: StoreError, delay: float) -> float | None:
        """How long to wait before recording an end again; ``None``: give up (raise)."""
        if not _unreachable(exc):
            return None
        now = time.monotonic()
        with self._lock:
            if self._unreachable_until is None:
                self._unreachable_until = now + self._end_retry_s
            until = self._unreachable_until
        if now >= until:
            return None
        return min(delay, until - now)

    def _beat(self) -> None:
        """Heartbeat of this tracker's running runs (called by the writer thread)."""
        with self._lock:
            ids = list(self._runs)
        if ids:
            with self.store.begin() as conn:
                _liveness.beat(conn, ids)

    def _mark_crashed(self, run_ids: list[str] | None = None) -> dict[str, _liveness.Crash]:
        """Mark ``crashed`` the running runs whose owner is dead (all, or ``run_ids``).

        Returns:
            The crashes that could not be recorded (a read-only store): reads show them
            anyway.
        """
        with self.store.connect() as conn:
            crashes = _liveness.find_crashed(conn, stale_after=self._stale_after, run_ids=run_ids)
        if not crashes:
            return {}
        try:
            with self.store.begin() as conn:
                _liveness.mark_crashed(conn, crashes)
        except (StoreError, sa.exc.SQLAlchemyError) as exc:
            logger.warning(
                "could not record %d crashed run(s) in the store at %s: %s",
                len(crashes),
                redact_url(self.store.url),
                exc,
            )
            return {crash.run_id: crash for crash in crashes}
        return {}

    def _flush_pending(self) -> None:
        """Make this tracker's own buffered values visible to the read that follows."""
        if self._writer.pending():
            self._writer.flush()
        else:
            self._writer.raise_pending_error()


@contextmanager
def _write(store: Store, action: str, run_id: str) -> Iterator[sa.Connection]:
    """A write transaction whose database errors become :class:`StoreError`."""
    try:
        with store.begin() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        msg = (
            f"could not {action} (run {run_id}) in the store at {redact_url(store.url)}: {exc}; "
            "check that the store is reachable and writable"
        )
        raise StoreError(msg) from exc


def _unreachable(exc: StoreError) -> bool:
    """Whether ``exc`` means the store could not be reached (worth retrying), not that it
    refused the write."""
    cause = exc.__cause__
    if isinstance(cause, sa.exc.DBAPIError) and cause.connection_invalidated:
        return True
    return isinstance(cause, (sa.exc.OperationalError, sa.exc.InterfaceError))


def _db_detail(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's message, without the statement and its parameters."""
    return str(getattr(exc, "orig", None) or exc).strip()


def _with_crashes(record: RunRecord, unrecorded: dict[str, _liveness.Crash]) -> RunRecord:
    """``record`` as crashed when it is among the crashes the store could not record."""
    crash = unrecorded.get(record.id)
    if crash is None or record.status != "running":
        return record
    return replace(record, status="crashed", end_time=crash.last_seen, error=crash.reason)


def _as_float(key: str, value: object, run_id: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]  # any value: bad ones raise below
    except (TypeError, ValueError):
        msg = f"metric {key!r} of run {run_id} is {value!r}; expected a number"
        raise TrackingError(msg) from None


def _check_key(key: object, kind: str, run_id: str) -> str:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        msg = (
            f"{kind} key {key!r} of run {run_id} is invalid; expected a non-empty string of "
            f"at most {_MAX_KEY} characters"
        )
        raise TrackingError(msg)
    return key


def _register(run: Run) -> None:
    """Track a running run for the atexit hook (registered on first use)."""
    global _ATEXIT_REGISTERED
    with _RUNNING_LOCK:
        _RUNNING[run.id] = run
        if not _ATEXIT_REGISTERED:
            atexit.register(_end_running_runs)
            _ATEXIT_REGISTERED = True


def _forget(run: Run) -> None:
    with _RUNNING_LOCK:
        _RUNNING.pop(run.id, None)


def _end_running_runs() -> None:
    """atexit: flush and mark 'killed' every run this process left running."""
    with _RUNNING_LOCK:
        running = list(_RUNNING.values())
    _end_all(running, "killed", "the process exited without ending the run")


def _end_all(runs: list[Run], status: str, error: str) -> StoreError | None:
    """End every run (each even when another fails); returns the first write error."""
    first: StoreError | None = None
    for run in runs:
        try:
            run.end(status, error=error)
        except StoreError as exc:
            logger.error("could not end run %s as %s: %s", run.id, status, exc)
            first = first or exc
    return first

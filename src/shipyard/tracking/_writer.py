"""The buffered writer: params, tags and metrics reach the store in batches.

Logging a metric appends a tuple to an in-memory buffer under a lock (about a microsecond); a
daemon thread flushes the buffer every ``flush_interval`` seconds, or sooner when it holds
``max_buffer`` rows, with one ``executemany`` per table inside one transaction plus the
``latest_metrics`` upsert. A crash therefore loses at most the last interval. An error in the
background thread is kept and raised as :class:`~shipyard.errors.StoreError` by the next call.

The same thread calls an optional ``heartbeat`` every ``heartbeat_interval`` seconds (the
tracker refreshes its running runs' ``heartbeat_at``); a failed heartbeat is logged, not
raised, as it loses no data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.errors import StoreError
from shipyard.store import redact_url, tables, upsert_latest_metrics

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["BufferedWriter"]

logger = logging.getLogger(__name__)

#: (run_id, key, value, step, timestamp)
MetricRow = tuple[str, str, float, int, float]
#: (run_id, key, value)
KeyValueRow = tuple[str, str, str]


@dataclass
class _Batch:
    """Rows waiting to be written, in the order they were logged."""

    metrics: list[MetricRow] = field(default_factory=list)
    params: list[KeyValueRow] = field(default_factory=list)
    tags: list[KeyValueRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def run_ids(self) -> set[str]:
        """The runs this batch writes to."""
        rows: list[Any] = [*self.metrics, *self.params, *self.tags]
        return {row[0] for row in rows}


class BufferedWriter:
    """Buffers rows for a store and writes them in batches from a daemon thread.

    Args:
        store: the store to write to.
        flush_interval: seconds between background flushes.
        max_buffer: number of buffered rows that triggers an early flush; at twice this
            number the logging call flushes itself, which bounds memory.
        heartbeat: called from the background thread every ``heartbeat_interval`` seconds.
        heartbeat_interval: seconds between two heartbeats.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.5,
        max_buffer: int = 10_000,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_interval: float = 30.0,
    ):
        if flush_interval <= 0 or max_buffer <= 0 or heartbeat_interval <= 0:
            msg = (
                f"flush_interval={flush_interval!r}, max_buffer={max_buffer!r} and "
                f"heartbeat_interval={heartbeat_interval!r} must all be positive; pass e.g. "
                "flush_interval=0.5, max_buffer=10_000, heartbeat_interval=30"
            )
            raise ValueError(msg)
        self._store = store
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._lock = threading.Lock()  # guards _batch and _error
        self._flush_lock = threading.Lock()  # serialises flushes so batches land in order
        self._wake = threading.Condition(self._lock)
        self._batch = _Batch()
        self._error: StoreError | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- producer side -------------------------------------------------------------------

    def add_metrics(self, rows: list[MetricRow]) -> None:
        """Queue metric rows."""
        self._add(self._batch.metrics, rows)

    def add_metric(self, row: MetricRow) -> None:
        """Queue one metric row (the hot path: no list allocation)."""
        self.raise_pending_error()
        with self._lock:
            self._batch.metrics.append(row)
            n_rows = len(self._batch.metrics)
        if n_rows >= self._max_buffer:
            self._on_full(n_rows)

    def add_params(self, rows: list[KeyValueRow]) -> None:
        """Queue param rows (already checked for conflicts by the run)."""
        self._add(self._batch.params, rows)

    def add_tags(self, rows: list[KeyValueRow]) -> None:
        """Queue tag rows; a later value for the same key replaces an earlier one."""
        self._add(self._batch.tags, rows)

    def pending(self) -> int:
        """Number of rows not yet written."""
        with self._lock:
            return len(self._batch)

    def raise_pending_error(self) -> None:
        """Raise (once) the error of a failed background flush, if there was one."""
        if self._error is None:
            return
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _add(self, target: list[Any], rows: list[Any]) -> None:
        self.raise_pending_error()
        with self._lock:
            target.extend(rows)
            n_rows = len(self._batch)
        if n_rows >= self._max_buffer:
            self._on_full(n_rows)

    def _on_full(self, n_rows: int) -> None:
        if n_rows >= 2 * self._max_buffer or not self._thread_alive():
            self.flush()
            return
        with self._wake:
            self._wake.notify()

    # -- flushing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row now, in the caller's thread.

        Raises:
            StoreError: when the write fails, or when an earlier background flush failed.
        """
        self._flush_once()
        self.raise_pending_error()

    def _flush_once(self) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._batch = self._batch, _Batch()
            if len(batch):
                self._write(batch)

    def _write(self, batch: _Batch) -> None:
        try:
            with self._store.begin() as conn:
                _write_batch(conn, batch)
        except Exception as exc:
            runs = ", ".join(sorted(batch.run_ids()))
            msg = (
                f"could not write {len(batch)} tracking rows ({len(batch.metrics)} metrics, "
                f"{len(batch.params)} params, {len(batch.tags)} tags) for run(s) {runs} "
                f"to the store at {redact_url(self._store.url)}: {exc}; check that the store is "
                "reachable and writable, then log the values again"
            )
            raise StoreError(msg) from exc
        logger.debug("flushed %d tracking rows", len(batch))

    # -- background thread -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        with self._lock:
            if self._thread_alive() or self._closed:
                return
            self._thread = threading.Thread(
                target=self._loop, name="shipyard-tracking-writer", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the background thread and write what is left.

        Raises:
            StoreError: when the last write fails or an earlier background flush failed.
        """
        with self._wake:
            self._closed = True
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        next_beat = time.monotonic() + self._heartbeat_interval  # a new run starts with one
        while True:
            with self._wake:
                if not self._closed and len(self._batch) < self._max_buffer:
                    wait = self._flush_interval
                    if self._heartbeat is not None:
                        wait = min(wait, max(0.0, next_beat - time.monotonic()))
                    self._wake.wait(wait)
                closed = self._closed
            self._flush_in_background()
            if closed:
                return
            if self._heartbeat is not None and time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + self._heartbeat_interval

    def _beat(self) -> None:
        assert self._heartbeat is not None
        try:
            self._heartbeat()
        except Exception as exc:  # a missed heartbeat loses nothing; the next one may work
            logger.warning("tracking heartbeat failed: %s", exc)

    def _flush_in_background(self) -> None:
        try:
            self._flush_once()
        except StoreError as exc:
            logger.error("background tracking flush failed: %s", exc)
            with self._lock:
                self._error = exc


def _write_batch(conn: sa.Connection, batch: _Batch) -> None:
    """Write one batch inside an open transaction."""
    if batch.params:
        conn.execute(
            sa.insert(tables.params),
            [{"run_id": r, "key": k, "value": v} for r, k, v in batch.params],
        )
    if batch.tags:
        _write_tags(conn, batch.tags)
    if batch.metrics:
        rows = [
            {"run_id": r, "key": k, "value": v, "step": s, "timestamp": t}
            for r, k, v, s, t in batch.metrics
        ]
        conn.execute(sa.insert(tables.metrics), rows)
        upsert_latest_metrics(conn, rows)


def _write_tags(conn: sa.Connection, rows: list[KeyValueRow]) -> None:
    """Replace tags: the last value logged for a (run, key) wins."""
    last = {(r, k): v for r, k, v in rows}
    t = tables.tags
    conn.execute(
        sa.delete(t).where(t.c.run_id == sa.bindparam("b_run"), t.c.key == sa.bindparam("b_key")),
        [{"b_run": r, "b_key": k} for r, k in last],
    )
    conn.execute(sa.insert(t), [{"run_id": r, "key": k, "value": v} for (r, k), v in last.items()])

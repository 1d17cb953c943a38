"""The buffered writer: params, tags and metrics reach the store in batches.

Logging a metric appends a row to an in-memory buffer under a lock (about a microsecond); a
daemon thread writes the buffer every ``flush_interval`` seconds, or sooner when it holds
``max_buffer`` rows, with one ``executemany`` per table inside one transaction plus the
``latest_metrics`` upsert. A crash therefore loses at most the last interval. At twice
``max_buffer`` rows the logging call writes the buffer itself, which bounds memory. A failed
write is not retried: its error is kept and raised as :class:`~shipyard.errors.StoreError` by
the next call, whose caller can log the values again.

The same thread calls an optional ``heartbeat`` every ``heartbeat_interval`` seconds (the
tracker refreshes its running runs' ``heartbeat_at``); a failed heartbeat is logged, not
raised, as it loses no data.

The buffer, the thread and the triggers are the store's generic
:class:`~shipyard.store.BatchedWriter` (shared with the server's prediction log); this module
adds the rows' tables and the transaction that writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from shipyard.errors import StoreError
from shipyard.store import BatchedWriter, redact_url, tables, upsert_latest_metrics

if TYPE_CHECKING:
    from shipyard.store import Store

__all__ = ["BufferedWriter"]

logger = logging.getLogger(__name__)

#: (run_id, key, value, step, timestamp)
MetricRow = tuple[str, str, float, int, float]
#: (run_id, key, value)
KeyValueRow = tuple[str, str, str]
#: A buffered row: a metric row as it is (the hot path allocates nothing more), or a param or
#: tag row with the name of its table.
TrackingRow = MetricRow | tuple[Literal["params", "tags"], KeyValueRow]


@dataclass
class _Batch:
    """Rows waiting to be written, in the order they were logged."""

    metrics: list[MetricRow] = field(default_factory=list)
    params: list[KeyValueRow] = field(default_factory=list)
    tags: list[KeyValueRow] = field(default_factory=list)

    @classmethod
    def of(cls, rows: list[TrackingRow]) -> tuple[_Batch, int]:
        """Sort buffered rows into their tables (the writer's ``prepare``).

        Returns:
            The batch and its number of rows.
        """
        batch = cls()
        key_values = {"params": batch.params, "tags": batch.tags}
        for row in rows:
            if len(row) == 2:  # (table, key-value row)
                key_values[row[0]].append(row[1])
            else:
                batch.metrics.append(row)
        return batch, len(rows)

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
        self._heartbeat = heartbeat
        self._closed = False
        self._rows: BatchedWriter[TrackingRow, _Batch] = BatchedWriter(
            self._write,
            prepare=_Batch.of,
            name="shipyard-tracking-writer",
            flush_weight=max_buffer,
            flush_interval=flush_interval,
            max_weight=2 * max_buffer,
            when_full="flush",
            tick=None if heartbeat is None else self._beat,
            tick_interval=heartbeat_interval,
            logger=logger,
            label="tracking",
            unit="rows",
        )
        #: Queue one metric row. The hot path: the generic writer's ``put`` itself, without a
        #: wrapper's call or a list.
        self.add_metric: Callable[[MetricRow], bool] = self._rows.put

    # -- producer side -------------------------------------------------------------------

    def add_metrics(self, rows: list[MetricRow]) -> None:
        """Queue metric rows."""
        self._rows.put_many(rows)

    def add_params(self, rows: list[KeyValueRow]) -> None:
        """Queue param rows (already checked for conflicts by the run)."""
        self._rows.put_many([("params", row) for row in rows])

    def add_tags(self, rows: list[KeyValueRow]) -> None:
        """Queue tag rows; a later value for the same key replaces an earlier one."""
        self._rows.put_many([("tags", row) for row in rows])

    def pending(self) -> int:
        """Number of rows not yet written."""
        return self._rows.pending()

    def raise_pending_error(self) -> None:
        """Raise (once) the error of a failed background flush, if there was one.

        Raises:
            StoreError: that error.
        """
        self._rows.raise_pending_error()

    # -- flushing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row now, in the caller's thread.

        Raises:
            StoreError: when the write fails, or when an earlier background flush failed.
        """
        self._rows.flush()

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

    # -- background thread -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background flusher (idempotent; not again after :meth:`close`)."""
        if not self._closed:
            self._rows.start()

    def close(self) -> None:
        """Stop the background thread and write what is left.

        Raises:
            StoreError: when the last write fails or an earlier background flush failed.
        """
        self._closed = True
        self._rows.close(timeout=None)
        self.flush()

    def _beat(self) -> None:
        assert self._heartbeat is not None
        try:
            self._heartbeat()
        except Exception as exc:  # a missed heartbeat loses nothing; the next one may work
            logger.warning("tracking heartbeat failed: %s", exc)


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

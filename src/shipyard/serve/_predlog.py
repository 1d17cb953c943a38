"""The prediction log: every prediction the server makes, written behind the request path.

The request path only appends: :meth:`PredictionLog.submit` puts one
:class:`PredictionEntry` per request (references to its records and results, no copying, no
serialisation) in a bounded in-memory buffer under a lock, in about a microsecond. A writer
thread encodes and writes the buffer to a *sink* every ``flush_records`` records or
``flush_interval_s`` seconds, whichever comes first.

The server never waits for the sink and never fails because of it:

- when the buffer holds ``max_buffer_records`` records not yet written, new entries are
  dropped and counted (:class:`PredictionLogStats`), never queued without bound;
- a failed write (disk full, database down) is counted, logged and retried with exponential
  backoff, keeping its records; new entries wait in the buffer meanwhile;
- a record the sink cannot encode at all (a value no sink format can hold) is dropped alone,
  counted and logged, so it cannot block the records behind it;
- :meth:`PredictionLog.close` (the server's graceful shutdown) writes everything admitted
  before it returns, retrying a failing sink until its timeout.

Sinks: :class:`ParquetSink` (Parquet files partitioned by model, version and day, Hive style)
and :class:`SqlSink` (a ``prediction_log`` table over SQLAlchemy Core, PostgreSQL or SQLite);
:func:`open_sink` picks one from a path or URL. :func:`read_predictions` reads one model's
predictions in a time window from either, opening only that window's files or rows, as one
DataFrame of the same shape whichever sink wrote it. The entry, the sinks and the reader live in
the store layer (:mod:`shipyard.store`), so that readers need not import the server.

Example:
    >>> log = PredictionLog(ParquetSink("predictions"))  # doctest: +SKIP
    >>> log.open()  # doctest: +SKIP
    >>> log.submit([PredictionEntry("r1", time.time(), "penguins", "3",
    ...                             [{"island": "Biscoe"}], [{"prediction": "Adelie"}], 4.2)])
    ... # doctest: +SKIP
    >>> log.close(timeout=30)  # doctest: +SKIP
    True
    >>> read_predictions("predictions", model="penguins", since="2024-05-01")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shipyard.store import PredictionEntry, PredictionSink

__all__ = [
    "PredictionLog",
    "PredictionLogConfig",
    "PredictionLogStats",
]

logger = logging.getLogger(__name__)

_JOIN_GRACE_S = 1.0  # lets a write in progress at the close deadline report how it ended


class PredictionLogConfig(BaseModel):
    """How the prediction log buffers, flushes and retries.

    Attributes:
        max_buffer_records: the most records admitted and not yet written (buffered or being
            written); an entry beyond it is dropped and counted.
        flush_records: write as soon as this many records are buffered.
        flush_interval_s: write what is buffered at least this often; it bounds what a
            crash (``kill -9``, power loss) can lose. A graceful shutdown loses nothing.
        retry_backoff_s: the wait before retrying a failed write; it doubles on each failure.
        max_backoff_s: the longest wait between two retries.

    Example:
        >>> PredictionLogConfig(flush_records=1_000, flush_interval_s=1).flush_interval_s
        1.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_buffer_records: int = Field(default=100_000, gt=0)
    flush_records: int = Field(default=10_000, gt=0)
    flush_interval_s: float = Field(default=10.0, gt=0)
    retry_backoff_s: float = Field(default=0.5, gt=0)
    max_backoff_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _flush_fits_in_the_buffer(self) -> PredictionLogConfig:
        if self.flush_records > self.max_buffer_records:
            msg = (
                f"flush_records ({self.flush_records}) must be at most max_buffer_records "
                f"({self.max_buffer_records}): the buffer would refuse records before a "
                "flush by size could start"
            )
            raise ValueError(msg)
        return self


@dataclass(frozen=True)
class PredictionLogStats:
    """The prediction log's counters, in records (see :meth:`PredictionLog.stats`).

    Attributes:
        n_written: records the sink confirmed written.
        n_dropped: records submitted but never written: the buffer was full, the log was
            closed, the sink could not encode them, or it still failed at the close timeout.
        n_flush_errors: failed sink writes (each was retried).
        n_pending: records admitted and not yet written.
    """

    n_written: int
    n_dropped: int
    n_flush_errors: int
    n_pending: int


class PredictionLog:
    """A bounded buffer of predictions, written to a sink by a background thread.

    Create it where the app is built and call :meth:`open` in the process that serves
    (after any fork): the writer thread starts there. :meth:`close` writes what is left.

    Args:
        sink: where to write; the log closes it on :meth:`close`.
        config: buffer bound, flush size and interval, retry backoff.

    Example:
        >>> with PredictionLog(ParquetSink(tmp_path)) as log:  # doctest: +SKIP
        ...     log.submit([entry])
        1
    """

    def __init__(self, sink: PredictionSink[Any], config: PredictionLogConfig | None = None):
        self.sink = sink
        self.config = config or PredictionLogConfig()
        self._lock = threading.Lock()  # guards everything below
        self._wake = threading.Condition(self._lock)
        self._buffer: list[PredictionEntry] = []
        self._n_buffered = 0  # records in _buffer
        self._n_pending = 0  # records in _buffer or being written
        self._n_written = 0
        self._n_dropped = 0
        self._n_flush_errors = 0
        self._n_lost = 0  # admitted records dropped unwritten (close deadline, unencodable)
        self._refusing = False  # whether the last submit dropped entries (to log changes)
        self._closing = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._retired = threading.Event()  # set when close gives up on a stuck writer

    # -- the request path ------------------------------------------------------------------

    def submit(self, entries: Sequence[PredictionEntry]) -> int:
        """Admit entries to the buffer, or drop and count those that do not fit.

        Never blocks on the sink and never raises for it: this runs on the event loop.

        Args:
            entries: one entry per request.

        Returns:
            The number of records admitted; the others were dropped (see :meth:`stats`).

        Raises:
            ValueError: an entry has not as many outputs as inputs (nothing was admitted).
        """
        for entry in entries:
            if len(entry.inputs) != len(entry.outputs):
                msg = (
                    f"request {entry.request_id!r}: {len(entry.inputs)} inputs but "
                    f"{len(entry.outputs)} outputs; submit one output per input record"
                )
                raise ValueError(msg)
        admitted = dropped = 0
        with self._lock:
            limit, was_buffered = self.config.max_buffer_records, self._n_buffered
            for entry in entries:
                n = len(entry.inputs)
                if self._closing or self._n_pending + n > limit:
                    dropped += n
                    continue
                self._buffer.append(entry)
                self._n_pending += n
                self._n_buffered += n
                admitted += n
            self._n_dropped += dropped
            if was_buffered < self.config.flush_records <= self._n_buffered:
                self._wake.notify()
            changed = (dropped > 0) != self._refusing
            self._refusing = dropped > 0
            closing, pending = self._closing, self._n_pending
        if changed:
            _log_refusal(dropped, closing, pending)
        return admitted

    def stats(self) -> PredictionLogStats:
        """The counters: records written, dropped and pending, and failed writes."""
        with self._lock:
            return PredictionLogStats(
                n_written=self._n_written,
                n_dropped=self._n_dropped,
                n_flush_errors=self._n_flush_errors,
                n_pending=self._n_pending,
            )

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Start the writer thread (idempotent); after :meth:`close`, accept entries again."""
        with self._wake:
            running = self._thread is not None and self._thread.is_alive()
            if running and not self._closing:
                return
            self._closing, self._deadline = False, None
            self._start_writer()

    def close(self, timeout: float | None = 30.0) -> bool:
        """Refuse new entries, write everything admitted, stop the writer, close the sink.

        A failing sink is retried (with backoff) until ``timeout``; what is still unwritten
        then is dropped, counted and logged.

        Args:
            timeout: seconds to keep writing; ``None`` waits for as long as it takes.

        Returns:
            Whether every record admitted was written: none was left at the timeout or
            dropped as a value the sink cannot store.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            self._closing, self._deadline = True, deadline
            lost_before = self._n_lost
            if self._thread is None or not self._thread.is_alive():
                self._start_writer()  # it drains the buffer and stops
            thread = self._thread
            self._wake.notify_all()
        assert thread is not None
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        thread.join(None if wait is None else wait + _JOIN_GRACE_S)
        if thread.is_alive():
            self._abandon_writer()
        try:
            self.sink.close()
        except Exception:
            logger.exception("prediction log: closing the sink failed")
        with self._lock:
            self._thread = None
            return self._n_lost == lost_before

    def __enter__(self) -> PredictionLog:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start_writer(self) -> None:
        """Start a writer thread; the caller holds the lock."""
        self._retired = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._retired,), name="shipyard-prediction-log", daemon=True
        )
        self._thread.start()

    def _abandon_writer(self) -> None:
        """The writer is stuck in a sink write past the deadline: count its records lost."""
        with self._lock:
            self._retired.set()
            n = self._n_pending
            self._buffer, self._n_buffered = [], 0
            self._lose(n)
        logger.error(
            "prediction log: the sink did not finish a write within the close timeout; "
            "%d records may be lost",
            n,
        )

    # -- the writer thread -----------------------------------------------------------------

    def _run(self, retired: threading.Event) -> None:
        interval = self.config.flush_interval_s
        next_flush = time.monotonic() + interval
        while True:
            with self._wake:
                while not self._due(next_flush):
                    self._wake.wait(next_flush - time.monotonic())
                if retired.is_set():
                    return
                entries, n = self._buffer, self._n_buffered
                self._buffer, self._n_buffered = [], 0
                if self._closing and not entries:
                    return
                if self._closing and self._past_deadline():
                    self._lose(n)
                    logger.error("prediction log: closed with %d records unwritten", n)
                    return
            next_flush = time.monotonic() + interval
            if entries:
                self._write(entries, n, retired)

    def _due(self, next_flush: float) -> bool:
        return (
            self._closing
            or self._n_buffered >= self.config.flush_records
            or time.monotonic() >= next_flush
        )

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _lose(self, n: int) -> None:
        """Count admitted records as dropped, unwritten; the caller holds the lock."""
        self._n_pending -= n
        self._n_dropped += n
        self._n_lost += n

    def _write(self, entries: list[PredictionEntry], n: int, retired: threading.Event) -> None:
        payload, n = self._encode(entries, n)
        if not n:
            return
        delay, n_failures = self.config.retry_backoff_s, 0
        while True:
            try:
                self.sink.write(payload)
            except Exception as exc:
                n_failures += 1
                with self._lock:
                    self._n_flush_errors += 1
                logger.warning(
                    "prediction log: writing %d records failed (attempt %d), retrying in "
                    "%.1f s: %s",
                    n,
                    n_failures,
                    delay,
                    exc,
                )
                if not self._backoff(delay):
                    with self._lock:
                        if not retired.is_set():
                            self._lose(n)
                    logger.error("prediction log: closed with %d records unwritten", n)
                    return
                delay = min(2 * delay, self.config.max_backoff_s)
                continue
            with self._lock:
                if not retired.is_set():
                    self._n_written += n
                    self._n_pending -= n
            if n_failures:
                logger.info("prediction log: wrote %d records after %d failures", n, n_failures)
            return

    def _backoff(self, seconds: float) -> bool:
        """Wait before a retry; ``False`` when the close deadline passes first."""
        end = time.monotonic() + seconds
        with self._wake:
            while True:
                now = time.monotonic()
                if self._closing and self._past_deadline():
                    return False
                if now >= end:
                    return True
                limit = end if self._deadline is None else min(end, self._deadline)
                self._wake.wait(limit - now)

    def _encode(self, entries: list[PredictionEntry], n: int) -> tuple[Any, int]:
        """Encode entries; on failure drop (and count) the ones that cannot be encoded."""
        try:
            return self.sink.encode(entries), n
        except Exception:
            logger.debug("prediction log: encoding failed; encoding entries one by one")
        good = []
        for entry in entries:
            try:
                self.sink.encode([entry])
            except Exception as exc:
                with self._lock:
                    self._lose(len(entry.inputs))
                logger.error(
                    "prediction log: dropped the %d records of request %r, which the sink "
                    "cannot store: %s",
                    len(entry.inputs),
                    entry.request_id,
                    exc,
                )
            else:
                good.append(entry)
        n = sum(len(e.inputs) for e in good)
        try:
            return (self.sink.encode(good), n) if good else (None, 0)
        except Exception:  # each encodes alone but not together: nothing to single out
            logger.exception("prediction log: dropped %d records the sink cannot encode", n)
            with self._lock:
                self._lose(n)
            return None, 0


def _log_refusal(dropped: int, closing: bool, pending: int) -> None:
    if not dropped:
        logger.info("prediction log: accepting predictions again (%d pending)", pending)
    elif closing:
        logger.warning("prediction log: closed; dropping %d records submitted after", dropped)
    else:
        logger.warning(
            "prediction log: buffer full (%d records not yet written); dropping new "
            "predictions until the sink catches up",
            pending,
        )

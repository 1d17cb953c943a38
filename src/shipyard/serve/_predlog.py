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

The buffer, the writer thread, its triggers, retries and close deadline are the store's generic
:class:`~shipyard.store.BatchedWriter` (shared with run tracking), under its ``"drop"`` policy
with a :class:`~shipyard.store.Backoff`; this module adds the entries' checks, their encoding
(with the one-by-one fallback) and the counters in records.

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
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shipyard.store import Backoff, BatchedWriter, PredictionEntry, PredictionSink

__all__ = [
    "PredictionLog",
    "PredictionLogConfig",
    "PredictionLogStats",
]

logger = logging.getLogger(__name__)


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
        self._entries: BatchedWriter[PredictionEntry, Any] = BatchedWriter(
            sink.write,
            prepare=self._encode,
            weigh=_n_records,
            name="shipyard-prediction-log",
            flush_weight=self.config.flush_records,
            flush_interval=self.config.flush_interval_s,
            max_weight=self.config.max_buffer_records,
            when_full="drop",
            retry=Backoff(self.config.retry_backoff_s, self.config.max_backoff_s),
            logger=logger,
            label="prediction log",
            unit="predictions",
        )

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
        return self._entries.put_many(entries)

    def stats(self) -> PredictionLogStats:
        """The counters: records written, dropped and pending, and failed writes."""
        stats = self._entries.stats()
        return PredictionLogStats(
            n_written=stats.n_written,
            n_dropped=stats.n_refused + stats.n_lost,
            n_flush_errors=stats.n_failures,
            n_pending=stats.n_pending,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Start the writer thread (idempotent); after :meth:`close`, accept entries again."""
        self._entries.start()

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
        written = self._entries.close(timeout)
        try:
            self.sink.close()
        except Exception:
            logger.exception("prediction log: closing the sink failed")
        return written

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

    # -- on the writer thread --------------------------------------------------------------

    def _encode(self, entries: list[PredictionEntry]) -> tuple[Any, int]:
        """Encode entries; on failure leave out the ones that cannot be encoded.

        Returns:
            The payload and the records it holds (the writer counts the others dropped).
        """
        try:
            return self.sink.encode(entries), sum(map(_n_records, entries))
        except Exception:
            logger.debug("prediction log: encoding failed; encoding entries one by one")
        good = []
        for entry in entries:
            try:
                self.sink.encode([entry])
            except Exception as exc:
                logger.error(
                    "prediction log: dropped the %d records of request %r, which the sink "
                    "cannot store: %s",
                    len(entry.inputs),
                    entry.request_id,
                    exc,
                )
            else:
                good.append(entry)
        n = sum(map(_n_records, good))
        try:
            return (self.sink.encode(good), n) if good else (None, 0)
        except Exception:  # each encodes alone but not together: nothing to single out
            logger.exception("prediction log: dropped %d records the sink cannot encode", n)
            return None, 0


def _n_records(entry: PredictionEntry) -> int:
    return len(entry.inputs)

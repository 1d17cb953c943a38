"""One batched writer behind the prediction log and the tracking writer.

Producers only append: :meth:`BatchedWriter.put` adds an item to an in-memory buffer under a
lock (about a microsecond) and returns; a writer thread takes the whole buffer and writes it as
one batch every ``flush_weight`` units of weight or ``flush_interval`` seconds, whichever comes
first. An item's *weight* is what the bounds count: the prediction log weighs an entry by its
records, the tracking writer counts rows (every item weighs 1).

Writing one batch has two steps: ``prepare(items)`` turns the items into a payload once (it
may leave out items that can never be written, which are counted as lost), and
``write(payload)`` stores it, perhaps several times. Batches are written one at a time, in the
order they were taken, whether by the writer thread or by a caller's :meth:`~BatchedWriter.flush`.

What the writer does when things go wrong is chosen by its owner:

- *a bound* (``max_weight``) on the weight admitted and not yet written, with a policy for
  reaching it: ``"drop"`` refuses (and counts) the items that do not fit, so a producer never
  waits (the prediction log on the server's request path); ``"flush"`` makes the producer
  write the buffer itself, in its own thread, which bounds memory by slowing the producer (the
  tracking writer in a training loop);
- *a retry policy* (:class:`Backoff`) for a failed write: retry the same payload, waiting
  longer each time, until it succeeds or :meth:`~BatchedWriter.close` runs out of time (the
  prediction log). Without one, the batch is given up and the error is kept; the producer's
  next call raises it (the tracking writer, whose caller can log the values again).

The same thread can call a periodic ``tick`` (the tracker's heartbeat), and
:meth:`~BatchedWriter.close` writes what is left within a timeout: a write still stuck at the
deadline is abandoned and its items counted lost, so a shutdown never hangs on a dead sink.

Example:
    >>> rows: list[int] = []
    >>> writer: BatchedWriter[int, list[int]] = BatchedWriter(
    ...     rows.extend, name="example-writer", flush_weight=100, flush_interval=1.0,
    ...     max_weight=1_000)
    >>> writer.start()
    >>> writer.put_many(range(10))
    10
    >>> writer.close(timeout=10)
    True
    >>> len(rows)
    10
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, cast

__all__ = ["Backoff", "BatchedWriter", "BatchedWriterStats"]

T = TypeVar("T")
P = TypeVar("P")

_JOIN_GRACE_S = 1.0  # lets a write in progress at the close deadline report how it ended


@dataclass(frozen=True)
class Backoff:
    """Retry a failed write after ``initial`` seconds, doubling the wait up to ``maximum``.

    Attributes:
        initial: seconds before the first retry.
        maximum: the longest wait between two retries.
    """

    initial: float
    maximum: float

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum <= 0:
            msg = (
                f"Backoff(initial={self.initial!r}, maximum={self.maximum!r}): both must be "
                "positive seconds, e.g. Backoff(initial=0.5, maximum=30)"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class BatchedWriterStats:
    """A batched writer's counters, in units of weight (see :meth:`BatchedWriter.stats`).

    Attributes:
        n_written: weight whose write succeeded.
        n_refused: weight that :meth:`BatchedWriter.put` refused: the buffer was full or the
            writer closed (``"drop"`` policy only).
        n_lost: weight admitted but never written: left out by ``prepare``, in a failed write
            that is not retried, or still unwritten at the close deadline.
        n_failures: failed write attempts (a retried write can fail several times).
        n_pending: weight admitted and not yet written (buffered or being written).
    """

    n_written: int
    n_refused: int
    n_lost: int
    n_failures: int
    n_pending: int


class BatchedWriter(Generic[T, P]):
    """A buffer of items of type ``T``, written in batches (as payloads ``P``) by a thread.

    Args:
        write: stores one payload; raises when the write failed.
        prepare: turns a batch of items into a payload and the weight it holds, called once
            per batch (retries write the same payload). Items it leaves out are counted lost.
            Without it, the payload is the list of items itself.
        weigh: an item's weight; without it every item weighs 1.
        name: the writer thread's name.
        flush_weight: write as soon as this much weight is buffered.
        flush_interval: write what is buffered at least this often, in seconds.
        max_weight: the most weight admitted and not yet written before ``when_full``
            applies; at least ``flush_weight``.
        when_full: ``"drop"``: refuse and count items that would exceed ``max_weight`` (and
            every item once closed); never blocks the producer. ``"flush"``: admit every
            item and, once ``max_weight`` is pending, write the buffer in the producer's
            thread, which bounds memory by slowing the producer down; without a running
            writer thread the producer writes as soon as ``flush_weight`` is buffered.
        retry: retry failed writes with this backoff until they succeed or the close
            deadline passes; without it a failed batch is lost and its error is raised by the
            next :meth:`put`, :meth:`flush` or :meth:`raise_pending_error`.
        tick: called by the writer thread every ``tick_interval`` seconds while it runs; it
            should handle its own errors (one that escapes is logged).
        tick_interval: seconds between two ticks.
        logger: where the writer logs failures, retries and refusals.
        label: how log messages name this writer (default: ``name``).
        unit: what a unit of weight is called in log messages.

    Raises:
        ValueError: a size or interval is not positive, or ``max_weight < flush_weight``.
    """

    def __init__(
        self,
        write: Callable[[P], None],
        *,
        prepare: Callable[[list[T]], tuple[P, int]] | None = None,
        weigh: Callable[[T], int] | None = None,
        name: str,
        flush_weight: int,
        flush_interval: float,
        max_weight: int,
        when_full: Literal["drop", "flush"] = "drop",
        retry: Backoff | None = None,
        tick: Callable[[], None] | None = None,
        tick_interval: float = math.inf,
        logger: logging.Logger | None = None,
        label: str | None = None,
        unit: str = "items",
    ):
        if flush_weight <= 0 or flush_interval <= 0 or tick_interval <= 0:
            msg = (
                f"flush_weight={flush_weight!r}, flush_interval={flush_interval!r} and "
                f"tick_interval={tick_interval!r} must all be positive"
            )
            raise ValueError(msg)
        if max_weight < flush_weight:
            msg = (
                f"max_weight ({max_weight}) must be at least flush_weight ({flush_weight}): "
                "the buffer would be full before a write by size could start"
            )
            raise ValueError(msg)
        self._write = write
        self._prepare = prepare
        self._weigh = weigh
        self._name = name
        self._flush_weight = flush_weight
        self._flush_interval = flush_interval
        self._max_weight = max_weight
        self._drop = when_full == "drop"
        self._retry = retry
        self._tick = tick
        self._tick_interval = tick_interval
        self._log = logger or logging.getLogger(__name__)
        self._label = label or name
        self._unit = unit

        self._lock = threading.Lock()  # guards everything below
        self._wake = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()  # one batch written at a time, in order
        self._buffer: list[T] = []
        self._buffered = 0  # weight in _buffer
        self._pending = 0  # weight in _buffer or being written
        self._n_written = 0
        self._n_refused = 0
        self._n_lost = 0
        self._n_failures = 0
        self._error: Exception | None = None  # of a failed background write, not yet raised
        self._refusing = False  # whether the last put refused items (to log changes)
        self._closing = False
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        # Bumped when close abandons a stuck write: that write's outcome no longer counts.
        self._generation = 0

    # -- producers -------------------------------------------------------------------------

    def put(self, item: T) -> bool:
        """Admit one item (the hot path: no list is built).

        Args:
            item: the item to write.

        Returns:
            Whether it was admitted; ``False`` when the ``"drop"`` policy refused it.

        Raises:
            Exception: the error of an earlier failed background write (without ``retry``),
                or of the write this call made under the ``"flush"`` policy.
        """
        if self._error is not None:
            self.raise_pending_error()
        weight = 1 if self._weigh is None else self._weigh(item)
        with self._lock:
            if self._drop and (self._closing or self._pending + weight > self._max_weight):
                self._n_refused += weight
                then, admitted = self._after_put(0, weight), False
            else:
                self._buffer.append(item)
                self._buffered += weight
                self._pending = pending = self._pending + weight
                if pending < self._flush_weight and not self._refusing:
                    return True  # the common case: nothing else to do
                then, admitted = self._after_put(weight, 0), True
        if then is not None:
            then()
        return admitted

    def put_many(self, items: Iterable[T]) -> int:
        """Admit items in order; under ``"drop"``, each one that does not fit is refused.

        An item heavier than the room left is refused whole, and lighter ones after it may
        still fit.

        Args:
            items: the items to write.

        Returns:
            The weight admitted.

        Raises:
            Exception: as :meth:`put`.
        """
        if self._error is not None:
            self.raise_pending_error()
        weigh = self._weigh
        admitted = refused = 0
        with self._lock:
            for item in items:
                weight = 1 if weigh is None else weigh(item)
                if self._drop and (self._closing or self._pending + weight > self._max_weight):
                    refused += weight
                    continue
                self._buffer.append(item)
                self._pending += weight
                admitted += weight
            self._buffered += admitted
            self._n_refused += refused
            then = self._after_put(admitted, refused)
        if then is not None:
            then()
        return admitted

    def _after_put(self, admitted: int, refused: int) -> Callable[[], None] | None:
        """Wake the writer if this put filled a batch; the caller holds the lock.

        Returns:
            What the producer must do once it has released the lock, if anything: log that
            the writer started or stopped refusing items (``"drop"``), or write the buffer
            itself (``"flush"``).
        """
        buffered = self._buffered
        if buffered >= self._flush_weight > buffered - admitted:
            self._wake.notify()
        if self._drop:
            if (refused > 0) == self._refusing:
                return None
            self._refusing = refused > 0
            return functools.partial(self._log_refusal, refused, self._closing, self._pending)
        if self._pending >= self._max_weight or (
            buffered >= self._flush_weight and not self._thread_alive()
        ):
            return self.flush
        return None

    def _log_refusal(self, refused: int, closing: bool, pending: int) -> None:
        if not refused:
            self._log.info("%s: accepting %s again (%d pending)", self._label, self._unit, pending)
        elif closing:
            self._log.warning(
                "%s: closed; dropping %d %s submitted after", self._label, refused, self._unit
            )
        else:
            self._log.warning(
                "%s: buffer full (%d %s not yet written); dropping new %s until the writes "
                "catch up",
                self._label,
                pending,
                self._unit,
                self._unit,
            )

    def raise_pending_error(self) -> None:
        """Raise (once) the error of a failed background write, if there was one.

        Raises:
            Exception: that error.
        """
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def stats(self) -> BatchedWriterStats:
        """The counters, in units of weight."""
        with self._lock:
            return BatchedWriterStats(
                n_written=self._n_written,
                n_refused=self._n_refused,
                n_lost=self._n_lost,
                n_failures=self._n_failures,
                n_pending=self._pending,
            )

    def pending(self) -> int:
        """Weight admitted and not yet written (buffered or being written)."""
        with self._lock:
            return self._pending

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered now, in the caller's thread.

        It waits for a write in progress (batches land in order) and, with ``retry``,
        retries until the write succeeds or the close deadline passes.

        Raises:
            Exception: the write failed (without ``retry``), or an earlier background write
                did.
        """
        with self._lock:
            generation = self._generation
        self._write_buffer(generation)
        self.raise_pending_error()

    def _write_buffer(self, generation: int) -> None:
        """Take the buffer and write it as one batch, after any batch taken before it.

        Raises:
            Exception: the write failed and there is no retry policy.
        """
        with self._flush_lock:
            with self._lock:
                if generation != self._generation:
                    return
                items, weight = self._buffer, self._buffered
                self._buffer, self._buffered = [], 0
            if items:
                self._write_batch(items, weight, generation)

    def _write_batch(self, items: list[T], weight: int, generation: int) -> None:
        try:
            if self._prepare is None:
                payload, n = cast(P, items), weight
            else:
                payload, n = self._prepare(items)
        except Exception:
            self._settle(generation, lost=weight)
            raise
        self._settle(generation, lost=weight - n)
        if n <= 0:
            return
        delay, n_failures = (self._retry.initial if self._retry else 0.0), 0
        while True:
            try:
                self._write(payload)
            except Exception as exc:
                n_failures += 1
                with self._lock:
                    self._n_failures += 1
                if self._retry is None:
                    self._settle(generation, lost=n)
                    raise
                self._log.warning(
                    "%s: writing %d %s failed (attempt %d), retrying in %.1f s: %s",
                    self._label,
                    n,
                    self._unit,
                    n_failures,
                    delay,
                    exc,
                )
                if not self._backoff(delay, generation):
                    if self._settle(generation, lost=n):
                        self._log.error("%s: closed with %d %s unwritten", *self._say(n))
                    return
                delay = min(2 * delay, self._retry.maximum)
                continue
            self._settle(generation, written=n)
            if n_failures:
                self._log.info("%s: wrote %d %s after %d failures", *self._say(n), n_failures)
            else:
                self._log.debug("%s: wrote %d %s", *self._say(n))
            return

    def _say(self, n: int) -> tuple[str, int, str]:
        return self._label, n, self._unit

    def _settle(self, generation: int, *, written: int = 0, lost: int = 0) -> bool:
        """Count weight written or lost, unless close gave up on this write already.

        Returns:
            Whether it was counted.
        """
        with self._lock:
            if generation != self._generation:
                return False
            self._pending -= written + lost
            self._n_written += written
            self._n_lost += lost
            return True

    def _backoff(self, seconds: float, generation: int) -> bool:
        """Wait before a retry; ``False`` when the close deadline passes first."""
        end = time.monotonic() + seconds
        with self._wake:
            while True:
                now = time.monotonic()
                if generation != self._generation or (self._closing and self._past_deadline()):
                    return False
                if now >= end:
                    return True
                limit = end if self._deadline is None else min(end, self._deadline)
                self._wake.wait(limit - now)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (idempotent); after :meth:`close`, admit items again."""
        with self._wake:
            if self._thread_alive() and not self._closing:
                return
            self._closing, self._deadline = False, None
            self._start_thread()

    def close(self, timeout: float | None = None) -> bool:
        """Stop admitting (under ``"drop"``), write everything admitted, stop the thread.

        A failing write is retried (with ``retry``) until ``timeout``; what is still unwritten
        then is counted lost and logged, and a write stuck past it is abandoned (its thread
        is left to finish alone, its outcome ignored). Under ``"flush"``, items put after
        ``close`` are written by their producer (:meth:`flush`, or once ``flush_weight`` is
        buffered).

        Args:
            timeout: seconds to keep writing; ``None`` waits for as long as it takes.

        Returns:
            Whether nothing admitted was lost while closing. Called from the writer thread
            (in ``tick``), it cannot wait: the thread writes what is left once the tick
            returns, and this returns whether nothing is pending yet.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            self._closing, self._deadline = True, deadline
            lost_before = self._n_lost
            if not self._thread_alive() and self._buffer:
                self._start_thread()  # it writes the buffer and stops
            thread = self._thread
            self._wake.notify_all()
        if thread is threading.current_thread():
            return self.pending() == 0
        if thread is not None:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(None if wait is None else wait + _JOIN_GRACE_S)
            if thread.is_alive():
                self._abandon()
        with self._lock:
            if self._thread is thread:
                self._thread = None
            return self._n_lost == lost_before

    def _start_thread(self) -> None:
        """Start a writer thread; the caller holds the lock."""
        self._thread = threading.Thread(
            target=self._run, args=(self._generation,), name=self._name, daemon=True
        )
        self._thread.start()

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _abandon(self) -> None:
        """A write is stuck past the close deadline: count everything pending lost."""
        with self._lock:
            self._generation += 1
            self._flush_lock = threading.Lock()  # the stuck write keeps the old one
            n = self._pending
            self._buffer, self._buffered, self._pending = [], 0, 0
            self._n_lost += n
            self._wake.notify_all()
        self._log.error(
            "%s: a write did not finish within the close timeout; %d %s may be lost",
            *self._say(n),
        )

    # -- the writer thread -----------------------------------------------------------------

    def _run(self, generation: int) -> None:
        next_flush = time.monotonic() + self._flush_interval
        next_tick = time.monotonic() + self._tick_interval if self._tick is not None else math.inf
        while True:
            with self._wake:
                while not self._due(generation, min(next_flush, next_tick)):
                    self._wake.wait(min(next_flush, next_tick) - time.monotonic())
                if generation != self._generation:
                    return
                closing, n = self._closing, self._buffered
                if closing and (not self._buffer or self._past_deadline()):
                    self._buffer, self._buffered = [], 0
                    self._pending -= n
                    self._n_lost += n
                    break
            now = time.monotonic()
            if closing or n >= self._flush_weight or now >= next_flush:
                next_flush = now + self._flush_interval
                self._write_in_background(generation)
            if not closing and time.monotonic() >= next_tick:
                self._call_tick()
                next_tick = time.monotonic() + self._tick_interval
        if n:  # closing past the deadline
            self._log.error("%s: closed with %d %s unwritten", *self._say(n))

    def _due(self, generation: int, wake_at: float) -> bool:
        """Whether the writer has work; the caller holds the lock."""
        return (
            generation != self._generation
            or self._closing
            or self._buffered >= self._flush_weight
            or time.monotonic() >= wake_at
        )

    def _write_in_background(self, generation: int) -> None:
        try:
            self._write_buffer(generation)
        except Exception as exc:
            self._log.error(
                "%s: a background write failed (the next call raises it): %s", self._label, exc
            )
            with self._lock:
                self._error = exc

    def _call_tick(self) -> None:
        assert self._tick is not None
        try:
            self._tick()
        except Exception:
            self._log.exception("%s: the periodic tick failed", self._label)

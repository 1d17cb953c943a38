"""Adaptive micro-batching: concurrent requests scored together, one vectorised call per batch.

Requests wait in a bounded queue counted in rows. One consumer task takes whatever is queued
when the model is free (work-conserving: it never waits for a batch to fill unless
``max_wait_ms`` asks it to), up to ``max_batch_rows`` rows of whole requests, and runs the model
on a dedicated thread, so the event loop keeps parsing requests meanwhile. Each request gets
back exactly its own rows' results; a runtime gives a row the same answer whatever batch it
is in (see :mod:`shipyard.model`).

Admission happens at the door: a request that would push the queue past ``max_queue_rows``
is refused at once (:class:`Overloaded`, a 503 with Retry-After), never after it was admitted.
A request not answered within ``timeout_s`` gets :class:`TimedOut` (a 504); if it had not
started yet its rows are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BatchingConfig", "MicroBatcher", "Overloaded", "ShuttingDown", "TimedOut"]

logger = logging.getLogger(__name__)

PredictFn = Callable[[list[dict[str, Any]]], list[Any]]
"""``predict(records) -> one result per record``, run on the model thread."""


class BatchingConfig(BaseModel):
    """How requests are batched and admitted.

    Attributes:
        max_batch_rows: the most rows one model call takes; a larger request runs alone.
        max_wait_ms: how long an idle model waits for more rows before running a batch
            smaller than ``max_batch_rows`` (0: run what is queued at once).
        max_queue_rows: the most rows waiting; a request beyond it gets a 503.
        timeout_s: a request not answered within this gets a 504.

    Example:
        >>> BatchingConfig(max_batch_rows=64, max_wait_ms=2).max_wait_ms
        2.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch_rows: int = Field(default=256, gt=0)
    max_wait_ms: float = Field(default=0.0, ge=0)
    max_queue_rows: int = Field(default=100_000, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _queue_holds_a_batch(self) -> BatchingConfig:
        if self.max_queue_rows < self.max_batch_rows:
            msg = (
                f"max_queue_rows ({self.max_queue_rows}) must be at least max_batch_rows "
                f"({self.max_batch_rows})"
            )
            raise ValueError(msg)
        return self


class Overloaded(Exception):
    """The queue is full: answer 503 and ask the client to retry after ``retry_after_s``."""

    def __init__(self, queued_rows: int, retry_after_s: int) -> None:
        super().__init__(f"the server is at capacity ({queued_rows} rows queued); retry shortly")
        self.retry_after_s = retry_after_s


class ShuttingDown(Overloaded):
    """The server is draining for shutdown: new work is refused with a 503."""


class TimedOut(Exception):
    """A request was not answered within the configured timeout (a 504)."""


@dataclass
class _Pending:
    records: list[dict[str, Any]]
    future: asyncio.Future[list[Any]]
    queued_at: float = field(default_factory=time.perf_counter)


BatchHook = Callable[[int, int, float], None]
"""``on_batch(n_rows, n_requests, seconds)``, called after every model call."""


class MicroBatcher:
    """Queue requests and run them in batches on one model thread.

    Args:
        predict: scores a list of records; it runs on the batcher's own thread.
        config: batch size, wait, queue bound and timeout.
        on_batch: called after each batch with its rows, requests and seconds (metrics).

    Example:
        >>> batcher = MicroBatcher(runner.predict, BatchingConfig())  # doctest: +SKIP
        >>> await batcher.submit([{"island": "Biscoe", ...}])  # doctest: +SKIP
    """

    def __init__(
        self,
        predict: PredictFn,
        config: BatchingConfig | None = None,
        *,
        on_batch: BatchHook | None = None,
    ) -> None:
        self._predict = predict
        self.config = config or BatchingConfig()
        self.on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._running_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-model")
        self._closing = False
        self._batch_seconds = 0.01  # a running estimate, for Retry-After

    @property
    def queued_rows(self) -> int:
        """Rows admitted and waiting for the model."""
        return self._queued_rows

    @property
    def in_flight_rows(self) -> int:
        """Rows admitted and not yet answered (waiting or being scored)."""
        return self._queued_rows + self._running_rows

    async def submit(self, records: Sequence[dict[str, Any]]) -> list[Any]:
        """Queue records and wait for their results, in order.

        Raises:
            Overloaded: the queue cannot take these rows now (nothing was queued).
            ShuttingDown: the server is draining.
            TimedOut: no answer within ``timeout_s``.
            Exception: whatever ``predict`` raised for these records.
        """
        n = len(records)
        if self._closing:
            raise ShuttingDown(self._queued_rows, 1)
        if self._queued_rows + n > self.config.max_queue_rows:
            raise Overloaded(self._queued_rows, self._retry_after())
        loop = asyncio.get_running_loop()
        self._ensure_consumer()
        item = _Pending(list(records), loop.create_future())
        self._queue.append(item)
        self._queued_rows += n
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), self.config.timeout_s)
        except TimeoutError:
            item.future.cancel()  # skipped if it has not started; its answer dropped if it has
            msg = f"no answer within {self.config.timeout_s:g} s"
            raise TimedOut(msg) from None

    def open(self) -> None:
        """Accept work again after :meth:`close` (an app's lifespan may start more than once)."""
        if self._closing:
            self._closing = False
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-model")

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish everything admitted (for at most ``timeout`` s), stop."""
        self._closing = True
        if self._consumer is not None and not self._consumer.done():
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._queue or self._running_rows:
                if deadline is not None and time.monotonic() > deadline:
                    logger.warning("shutdown: %d rows were not scored in time", self.in_flight_rows)
                    break
                await asyncio.sleep(0.005)
            self._consumer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _ensure_consumer(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # a new event loop (an app driven by test clients that start one per call): the
            # old loop's consumer and queue can never run again
            self._loop, self._consumer = loop, None
            self._queue.clear()
            self._queued_rows = self._running_rows = 0
        if self._consumer is None or self._consumer.done():
            self._wakeup = asyncio.Event()
            self._consumer = loop.create_task(self._consume())

    def _retry_after(self) -> int:
        batches_queued = self._queued_rows / self.config.max_batch_rows + 1
        return max(1, round(batches_queued * self._batch_seconds + 0.5))

    async def _consume(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.config.max_wait_ms and self._queued_rows < self.config.max_batch_rows:
                await self._wait_for_more()
            batch = self._take_batch()
            if batch:
                await self._run(loop, batch)

    async def _wait_for_more(self) -> None:
        assert self._wakeup is not None
        deadline = time.perf_counter() + self.config.max_wait_ms / 1000
        while self._queued_rows < self.config.max_batch_rows:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Pending]:
        """Whole requests, oldest first, up to ``max_batch_rows`` (at least one request)."""
        batch: list[_Pending] = []
        rows = 0
        while self._queue:
            item = self._queue[0]
            n = len(item.records)
            if batch and rows + n > self.config.max_batch_rows:
                break
            self._queue.popleft()
            self._queued_rows -= n
            if item.future.done():  # timed out while waiting: skip its rows
                continue
            batch.append(item)
            rows += n
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        records = [r for item in batch for r in item.records]
        self._running_rows = len(records)
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self._predict, records)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
            else:  # one bad request must not fail the others: score each alone
                for item in batch:
                    await self._run(loop, [item])
                return
        else:
            offset = 0
            for item in batch:
                n = len(item.records)
                _settle(item.future, result=results[offset : offset + n])
                offset += n
        finally:
            self._running_rows = 0
        seconds = time.perf_counter() - started
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
        if self.on_batch is not None:
            self.on_batch(len(records), len(batch), seconds)


def _settle(
    future: asyncio.Future[list[Any]],
    *,
    result: list[Any] | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the caller timed out meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result or [])

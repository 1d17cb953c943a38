"""The micro-batcher: batching, admission at the door, timeouts, isolation and drain."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from shipyard.serve._batcher import (
    BatchingConfig,
    MicroBatcher,
    Overloaded,
    ShuttingDown,
    TimedOut,
)


class Model:
    """Doubles ``x``; records each call's batch; can be held busy until released."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, records: list[dict[str, Any]]) -> list[int]:
        self.started.set()
        self.gate.wait(10)
        xs = [r["x"] for r in records]
        self.calls.append(xs)
        if any(x < 0 for x in xs):
            raise ValueError("negative x")
        return [2 * x for x in xs]


def rows(*xs: int) -> list[dict[str, Any]]:
    return [{"x": x} for x in xs]


async def _busy(model: Model, batcher: MicroBatcher) -> asyncio.Task[list[Any]]:
    """Start a request and wait until the model thread is inside it."""
    model.gate.clear()
    model.started.clear()
    first = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.to_thread(model.started.wait, 10)
    return first


def test_requests_queued_while_the_model_is_busy_run_as_one_batch() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = MicroBatcher(model, BatchingConfig())
        first = await _busy(model, batcher)
        waiting = [asyncio.ensure_future(batcher.submit(rows(i, i + 100))) for i in range(1, 10)]
        await asyncio.sleep(0.01)
        assert batcher.queued_rows == 18
        model.gate.set()
        results = await asyncio.gather(first, *waiting)
        assert results[0] == [0]
        assert results[1:] == [[2 * i, 2 * (i + 100)] for i in range(1, 10)]
        assert [len(c) for c in model.calls] == [1, 18]  # one call for all nine requests
        await batcher.close()

    asyncio.run(scenario())


def test_batches_hold_whole_requests_up_to_the_row_limit() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = MicroBatcher(model, BatchingConfig(max_batch_rows=4, max_queue_rows=100))
        first = await _busy(model, batcher)
        sizes = [3, 2, 9, 1]
        waiting = [asyncio.ensure_future(batcher.submit(rows(*range(n)))) for n in sizes]
        await asyncio.sleep(0.01)
        model.gate.set()
        await asyncio.gather(first, *waiting)
        # 3 (+2 would pass 4), then 2, then the 9-row request alone, then 1
        assert [len(c) for c in model.calls] == [1, 3, 2, 9, 1]
        await batcher.close()

    asyncio.run(scenario())


def test_a_full_queue_refuses_at_the_door_and_loses_nothing_admitted() -> None:
    async def scenario() -> None:
        model = Model()
        config = BatchingConfig(max_batch_rows=10, max_queue_rows=10)
        batcher = MicroBatcher(model, config)
        first = await _busy(model, batcher)
        admitted = [asyncio.ensure_future(batcher.submit(rows(i, i))) for i in range(5)]
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded) as info:
            await batcher.submit(rows(99))
        assert info.value.retry_after_s >= 1
        assert batcher.queued_rows == 10
        model.gate.set()
        results = await asyncio.gather(first, *admitted)
        assert results[1:] == [[2 * i, 2 * i] for i in range(5)]
        assert 99 not in [x for call in model.calls for x in call]
        await batcher.close()

    asyncio.run(scenario())


def test_a_request_past_its_timeout_gets_timed_out_and_its_rows_are_skipped() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = MicroBatcher(model, BatchingConfig(timeout_s=0.2))
        first = await _busy(model, batcher)  # holds the model past every timeout below
        with pytest.raises(TimedOut, match=r"within 0\.2 s"):
            await batcher.submit(rows(7))
        with pytest.raises(TimedOut):
            await first
        model.gate.set()
        assert await batcher.submit(rows(3)) == [6]
        assert 7 not in [x for call in model.calls for x in call]
        await batcher.close()

    asyncio.run(scenario())


def test_one_bad_request_fails_alone() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = MicroBatcher(model, BatchingConfig())
        first = await _busy(model, batcher)
        good = asyncio.ensure_future(batcher.submit(rows(1, 2)))
        bad = asyncio.ensure_future(batcher.submit(rows(-1)))
        other = asyncio.ensure_future(batcher.submit(rows(5)))
        await asyncio.sleep(0.01)
        model.gate.set()
        assert await first == [0]
        assert await good == [2, 4]
        assert await other == [10]
        with pytest.raises(ValueError, match="negative"):
            await bad
        await batcher.close()

    asyncio.run(scenario())


def test_close_refuses_new_work_and_finishes_what_was_admitted() -> None:
    async def scenario() -> None:
        model = Model()
        batcher = MicroBatcher(model, BatchingConfig())
        first = await _busy(model, batcher)
        admitted = asyncio.ensure_future(batcher.submit(rows(4)))
        await asyncio.sleep(0.01)
        closing = asyncio.ensure_future(batcher.close(timeout=10))
        await asyncio.sleep(0.01)
        with pytest.raises(ShuttingDown):
            await batcher.submit(rows(1))
        model.gate.set()
        await closing
        assert await first == [0] and await admitted == [8]

    asyncio.run(scenario())


def test_max_wait_gathers_rows_for_an_idle_model() -> None:
    async def scenario() -> None:
        model = Model()
        config = BatchingConfig(max_batch_rows=2, max_queue_rows=10, max_wait_ms=5_000)
        batcher = MicroBatcher(model, config)
        a = asyncio.ensure_future(batcher.submit(rows(1)))
        await asyncio.sleep(0.01)
        assert model.calls == []  # waiting for a second row, not running one alone
        b = asyncio.ensure_future(batcher.submit(rows(2)))
        assert await asyncio.gather(a, b) == [[2], [4]]
        assert model.calls == [[1, 2]]
        await batcher.close()

    asyncio.run(scenario())


def test_batch_hook_sees_rows_and_requests() -> None:
    seen: list[tuple[int, int]] = []

    async def scenario() -> None:
        model = Model()
        batcher = MicroBatcher(model, on_batch=lambda n, k, s: seen.append((n, k)))
        first = await _busy(model, batcher)
        more = [asyncio.ensure_future(batcher.submit(rows(1, 2, 3))) for _ in range(2)]
        await asyncio.sleep(0.01)
        model.gate.set()
        await asyncio.gather(first, *more)
        await batcher.close()

    asyncio.run(scenario())
    assert seen == [(1, 1), (6, 2)]


def test_the_queue_must_hold_a_batch() -> None:
    with pytest.raises(ValueError, match="max_queue_rows"):
        BatchingConfig(max_batch_rows=100, max_queue_rows=10)


def test_a_batcher_follows_its_caller_to_a_new_event_loop() -> None:
    """Test clients may drive an app from a new loop per call, leaving the old one stopped."""
    model = Model()
    batcher = MicroBatcher(model, BatchingConfig(timeout_s=2))
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(batcher.submit(rows(1))) == [2]
        # the first loop is stopped, not closed: its consumer is pending and will never run
        assert asyncio.run(batcher.submit(rows(2))) == [4]
    finally:
        first.close()

"""The generic batched writer behind the prediction log and the tracking writer.

No test waits for time to pass: each waits for an event (with a generous bound that only a
failure reaches), and intervals that must not fire are an hour long.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.store import Backoff, BatchedWriter, BatchedWriterStats, _batched

WAIT_S = 30  # only a failing test waits this long
HOUR = 3600.0
LOGGER = "tests.batched"
_names = itertools.count()


class Sink:
    """Keeps each batch written and the thread that wrote it; can hold writes and fail."""

    def __init__(self, *, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[str]] = []
        self.threads: list[str] = []
        self.attempts = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a write has started
        self.wrote = threading.Event()  # a write has succeeded

    def write(self, items: list[str]) -> None:
        self.attempts += 1
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        self.batches.append(list(items))
        self.threads.append(threading.current_thread().name)
        self.wrote.set()

    @property
    def written(self) -> list[str]:
        return [item for batch in self.batches for item in batch]


def writer(write: Callable[[Any], None], **settings: Any) -> BatchedWriter[str, Any]:
    """A writer of strings where nothing happens by time unless a test asks for it."""
    base: dict[str, Any] = {
        "name": f"test-batched-{next(_names)}",
        "flush_weight": 1_000,
        "flush_interval": HOUR,
        "max_weight": 1_000,
        "logger": logging.getLogger(LOGGER),
        "label": "test log",
        "unit": "things",
    }
    return BatchedWriter(write, **{**base, **settings})


def wait_for(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.001)


def frames(thread: threading.Thread) -> list[str]:
    """The names of the functions ``thread`` is in, innermost first."""
    frame = sys._current_frames().get(thread.ident or -1)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def top_frame(thread: threading.Thread) -> str | None:
    return next(iter(frames(thread)), None)


def wait_until_idle(name: str) -> None:
    """Return once the thread ``name`` waits for work: only a notify or a timer wakes it."""
    wait_for(
        lambda: any(frames(t)[:2] == ["wait", "_run"] for t in threads_named(name)),
        f"{name} to wait for work",
    )


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


# -- triggers ------------------------------------------------------------------------------


def test_a_write_starts_when_flush_weight_is_buffered() -> None:
    sink = Sink()
    w = writer(sink.write, flush_weight=5, weigh=len)  # a string weighs its length
    w.start()
    wait_until_idle(w._name)
    assert w.put("ab") is True
    assert w.put_many(["c", "d"]) == 2
    wait_until_idle(w._name)
    assert sink.batches == []  # 4 < 5 and an hour before the interval
    assert w.put("e") is True  # only this put can wake the writer
    assert sink.wrote.wait(WAIT_S)
    assert sink.batches == [["ab", "c", "d", "e"]]
    assert sink.threads == [w._name]
    assert w.close(timeout=WAIT_S) is True
    assert w.stats() == BatchedWriterStats(
        n_written=5, n_refused=0, n_lost=0, n_failures=0, n_pending=0
    )


def test_a_write_starts_when_the_interval_has_passed() -> None:
    sink = Sink()
    w = writer(sink.write, flush_interval=0.01)
    w.start()
    w.put("a")
    assert sink.wrote.wait(WAIT_S)  # far below flush_weight: only the interval can write
    assert sink.batches == [["a"]]
    assert w.pending() == 0
    assert w.close(timeout=WAIT_S)


def test_close_writes_everything_in_order_without_a_started_thread() -> None:
    sink = Sink()
    w = writer(sink.write)
    w.put_many(["a", "b"])
    w.put("c")
    assert w.stats().n_pending == 3
    assert w.close(timeout=WAIT_S) is True
    assert sink.written == ["a", "b", "c"]
    assert threads_named(w._name) == []


def test_flush_writes_in_the_callers_thread() -> None:
    sink = Sink()
    w = writer(sink.write, when_full="flush")
    w.start()
    w.put_many(["a", "b"])
    w.flush()
    assert sink.batches == [["a", "b"]]
    assert sink.threads == [threading.current_thread().name]
    w.flush()  # nothing buffered: no write
    assert len(sink.batches) == 1
    assert w.close(timeout=WAIT_S)


# -- a full buffer -------------------------------------------------------------------------


def test_drop_refuses_what_does_not_fit_and_says_when_it_accepts_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    sink.gate.clear()  # the write hangs: nothing leaves the buffer
    w = writer(sink.write, flush_weight=1, max_weight=10, weigh=len)
    w.start()
    assert w.put("aaaa")
    assert sink.entered.wait(WAIT_S)  # being written: it still counts against the bound
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert w.put_many(["bbbbb", "ccc", "d"]) == 6  # "ccc" is too heavy; "d" still fits
        assert "buffer full (10 things not yet written)" in caplog.text
        assert w.put("e") is False
        assert caplog.text.count("buffer full") == 1  # a change is logged, not every refusal
        sink.gate.set()
        wait_for(lambda: w.pending() == 0, "the writes")
        assert w.put("f") is True
        assert "test log: accepting things again" in caplog.text
    assert w.close(timeout=WAIT_S) is True
    assert sink.written == ["aaaa", "bbbbb", "d", "f"]
    assert w.stats() == BatchedWriterStats(
        n_written=11, n_refused=4, n_lost=0, n_failures=0, n_pending=0
    )


def test_drop_refuses_everything_after_close_until_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    w = writer(sink.write)
    w.start()
    w.put("first")
    assert w.close(timeout=WAIT_S)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert w.put_many(["late", "later"]) == 0
    assert "closed; dropping 2 things" in caplog.text
    w.start()
    w.start()  # idempotent
    assert len(threads_named(w._name)) == 1
    assert w.put("again")
    assert w.close(timeout=WAIT_S)
    assert sink.written == ["first", "again"]
    assert w.stats().n_refused == 2


def test_flush_policy_writes_in_the_producers_thread_without_a_writer_thread() -> None:
    sink = Sink()
    w = writer(sink.write, when_full="flush", flush_weight=2, max_weight=4)
    w.put("a")
    assert sink.batches == []
    w.put("b")  # flush_weight reached and no thread to wake: the producer writes
    assert sink.batches == [["a", "b"]]
    assert sink.threads == [threading.current_thread().name]


def test_flush_policy_makes_the_producer_write_at_the_bound() -> None:
    sink = Sink()
    sink.gate.clear()
    w = writer(sink.write, when_full="flush", flush_weight=3, max_weight=4)
    w.start()
    w.put_many(["a", "b", "c"])  # the writer thread takes them and hangs
    assert sink.entered.wait(WAIT_S)
    producer = threading.Thread(target=w.put, args=("d",), name="producer")
    producer.start()  # 4 pending: it must write "d" itself, after "a", "b", "c"
    wait_for(lambda: w.pending() == 4, "the producer's put")
    assert sink.batches == []
    sink.gate.set()
    producer.join(WAIT_S)
    assert not producer.is_alive()
    assert sink.batches == [["a", "b", "c"], ["d"]]
    assert sink.threads == [w._name, "producer"]
    assert w.close(timeout=WAIT_S)


# -- failed writes -------------------------------------------------------------------------


def test_a_failing_write_is_retried_with_backoff_until_it_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(failures=3)
    w = writer(sink.write, retry=Backoff(initial=0.001, maximum=0.003))
    w.put_many(["a", "b"])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert w.close(timeout=WAIT_S) is True
    assert sink.batches == [["a", "b"]]  # once, after three failed attempts
    assert sink.attempts == 4
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.args[-2] for r in retries] == [0.001, 0.002, 0.003]  # doubled, then capped
    assert "test log: writing 2 things failed (attempt 1)" in caplog.text
    assert "No space left on device" in caplog.text
    assert "test log: wrote 2 things after 3 failures" in caplog.text
    assert w.stats() == BatchedWriterStats(
        n_written=2, n_refused=0, n_lost=0, n_failures=3, n_pending=0
    )


def test_close_gives_up_retrying_at_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink(failures=10**9)
    w = writer(sink.write, retry=Backoff(initial=0.001, maximum=0.001))
    w.put_many(["a", "b", "c"])
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert w.close(timeout=0.05) is False
    assert "test log: closed with 3 things unwritten" in caplog.text
    stats = w.stats()
    assert (stats.n_written, stats.n_lost, stats.n_pending) == (0, 3, 0)
    assert stats.n_failures >= 1


def test_without_retry_a_background_error_is_kept_and_raised_by_the_next_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(failures=1)
    w = writer(sink.write, when_full="flush", flush_weight=1, max_weight=10)
    w.start()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        w.put("lost")
        wait_for(lambda: w._error is not None, "the background write to fail")
    assert "test log: a background write failed" in caplog.text
    with pytest.raises(OSError, match="No space left"):
        w.put("refused")  # raised before it is admitted
    w.put("kept")  # raised once
    sink.failures = 1
    wait_for(lambda: w._error is not None, "the next background write to fail")
    with pytest.raises(OSError, match="No space left"):
        w.put_many(["refused too"])
    w.put_many(["kept too"])
    assert w.close(timeout=WAIT_S) is True
    w.raise_pending_error()  # nothing left to raise
    assert sink.written == ["kept too"]
    assert w.stats() == BatchedWriterStats(
        n_written=1, n_refused=0, n_lost=2, n_failures=2, n_pending=0
    )


def test_without_retry_flush_raises_the_error_of_its_own_write() -> None:
    sink = Sink(failures=1)
    w = writer(sink.write, when_full="flush")
    w.put_many(["a"])
    with pytest.raises(OSError, match="No space left"):
        w.flush()
    w.raise_pending_error()  # the caller got it: it is not kept
    assert w.stats().n_lost == 1


def test_prepare_turns_a_batch_into_one_payload_and_may_leave_items_out() -> None:
    payloads: list[str] = []

    def prepare(items: list[str]) -> tuple[str, int]:
        kept = [i for i in items if i != "bad"]
        return ",".join(kept), len(kept)

    w = writer(payloads.append, prepare=prepare)
    w.put_many(["a", "bad", "b"])
    w.flush()
    w.put("bad")
    w.flush()  # nothing left to write: no payload
    assert payloads == ["a,b"]
    assert w.close(timeout=WAIT_S) is True
    assert w.stats() == BatchedWriterStats(
        n_written=2, n_refused=0, n_lost=2, n_failures=0, n_pending=0
    )


def test_a_batch_prepare_fails_on_is_lost_and_its_error_raised() -> None:
    def prepare(items: list[str]) -> tuple[list[str], int]:
        raise ValueError("cannot encode")

    sink = Sink()
    w = writer(sink.write, prepare=prepare, when_full="flush")
    w.put("a")
    with pytest.raises(ValueError, match="cannot encode"):
        w.flush()
    assert sink.attempts == 0
    assert w.stats().n_lost == 1


# -- close ---------------------------------------------------------------------------------


def test_close_abandons_a_write_stuck_past_its_deadline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_batched, "_JOIN_GRACE_S", 0.01)
    sink = Sink()
    sink.gate.clear()
    w = writer(sink.write, flush_weight=1)
    w.start()
    w.put_many(["stuck", "stuck"])
    assert sink.entered.wait(WAIT_S)
    w.put("waiting")
    stuck = threads_named(w._name)
    flusher = threading.Thread(target=w.flush, name="flusher")
    flusher.start()  # it waits for the stuck write's lock
    wait_for(lambda: top_frame(flusher) == "_write_buffer", "the flusher to wait")
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert w.close(timeout=0) is False
    assert "did not finish within the close timeout; 3 things may be lost" in caplog.text
    assert w.stats() == BatchedWriterStats(
        n_written=0, n_refused=0, n_lost=3, n_failures=0, n_pending=0
    )
    # the stuck write keeps its lock, not the writer: a new thread writes meanwhile
    stuck_gate, sink.gate = sink.gate, threading.Event()
    sink.gate.set()
    w.start()
    w.put("new")
    assert w.close(timeout=WAIT_S) is True
    assert sink.written == ["new"]
    stuck_gate.set()  # the hung write ends after all; the flusher then has nothing to do
    for thread in [*stuck, flusher]:
        thread.join(WAIT_S)
    assert sorted(sink.written) == ["new", "stuck", "stuck"]
    assert w.stats().n_written == 1  # the abandoned write does not count, though it landed
    assert w.stats().n_lost == 3


def test_close_with_no_time_left_writes_nothing_and_counts_it() -> None:
    sink = Sink()
    w = writer(sink.write)
    w.start()
    wait_until_idle(w._name)
    w.put_many(["a", "b"])
    assert w.close(timeout=0) is False
    assert sink.batches == []
    assert w.stats().n_lost == 2


# -- the tick ------------------------------------------------------------------------------


def test_the_tick_runs_periodically_and_survives_its_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    three = threading.Event()

    def tick() -> None:
        calls.append(1)
        if len(calls) >= 3:
            three.set()
        raise RuntimeError("the store is away")

    w = writer(Sink().write, tick=tick, tick_interval=0.001)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        w.start()
        assert three.wait(WAIT_S)
        assert w.close(timeout=WAIT_S)
    assert "test log: the periodic tick failed" in caplog.text
    assert "the store is away" in caplog.text


def test_close_called_from_the_tick_lets_the_thread_finish() -> None:
    sink = Sink()
    results: list[bool] = []
    writers: list[BatchedWriter[str, Any]] = []

    def tick() -> None:
        results.append(writers[0].close(timeout=WAIT_S))

    w = writer(sink.write, tick=tick, tick_interval=0.001)
    writers.append(w)
    w.put("a")
    w.start()
    for thread in threads_named(w._name):
        thread.join(WAIT_S)
    assert results == [False]  # "a" was still pending when close returned
    assert sink.written == ["a"]  # the thread wrote it on its way out


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"flush_weight": 0}, "flush_weight=0"),
        ({"flush_interval": 0}, "flush_interval=0"),
        ({"tick_interval": -1.0}, "tick_interval=-1.0"),
        ({"flush_weight": 10, "max_weight": 5}, r"max_weight \(5\) must be at least"),
    ],
)
def test_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        writer(Sink().write, **settings)


def test_backoff_must_be_positive() -> None:
    with pytest.raises(ValueError, match="both must be positive"):
        Backoff(initial=0, maximum=1)

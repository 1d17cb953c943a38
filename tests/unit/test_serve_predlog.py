"""The prediction log: the bounded buffer and its writer thread, the Parquet sink, window reads.

No test waits for time to pass: each waits for an event (with a generous bound that only a
failure reaches), and intervals that must not fire are an hour long.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from shipyard.errors import DataError, ShipyardError
from shipyard.serve import _predlog
from shipyard.serve._predlog import (
    PredictionLog,
    PredictionLogConfig,
    PredictionLogStats,
)
from shipyard.store import (
    BASE_COLUMNS,
    ParquetSink,
    PredictionEntry,
    SqlSink,
    open_sink,
    read_predictions,
)
from shipyard.store import _predlog as store_predlog

WAIT_S = 30  # only a failing test waits this long
HOUR = 3600.0
DAY1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
needs_fork = pytest.mark.skipif(
    sys.platform != "linux", reason="forked writer processes are tested on Linux"
)


def entry(
    request_id: str = "r",
    *,
    n: int = 1,
    at: datetime = DAY1,
    model: str = "penguins",
    version: str = "1",
    latency_ms: float = 2.5,
    inputs: Sequence[dict[str, Any]] | None = None,
    outputs: Sequence[dict[str, Any]] | None = None,
) -> PredictionEntry:
    """An entry of ``n`` penguin records (or the given ones) answered Adelie."""
    if inputs is None:
        inputs = [{"island": "Biscoe", "bill_length_mm": 40.0 + i} for i in range(n)]
    if outputs is None:
        outputs = [
            {"prediction": "Adelie", "probabilities": {"Adelie": 0.75, "Gentoo": 0.25}}
            for _ in inputs
        ]
    return PredictionEntry(request_id, at.timestamp(), model, version, inputs, outputs, latency_ms)


class MemorySink:
    """Keeps what it is given; can hold writes at a gate and fail a number of times."""

    def __init__(self, *, failures: int = 0) -> None:
        self.failures = failures
        self.written: list[PredictionEntry] = []
        self.writes: list[int] = []  # records per successful write
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a write has started
        self.wrote = threading.Event()  # a write has succeeded
        self.closed = False

    def encode(self, entries: Sequence[PredictionEntry]) -> list[PredictionEntry]:
        return list(entries)

    def write(self, payload: list[PredictionEntry]) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        self.written.extend(payload)
        self.writes.append(sum(len(e.inputs) for e in payload))
        self.wrote.set()

    def close(self) -> None:
        self.closed = True


def config(**settings: Any) -> PredictionLogConfig:
    """Settings where nothing happens by time unless a test asks for it."""
    base: dict[str, Any] = {"flush_interval_s": HOUR, "retry_backoff_s": 0.001}
    return PredictionLogConfig(**{**base, **settings})


def ids(entries: Sequence[PredictionEntry]) -> list[str]:
    return [e.request_id for e in entries]


def wait_until_idle() -> None:
    """Return once the writer thread waits for work: only a notify or its interval wakes it."""
    give_up = time.monotonic() + WAIT_S
    while time.monotonic() < give_up:
        for thread in threading.enumerate():
            if thread.name == "shipyard-prediction-log" and thread.ident is not None:
                frame, names = sys._current_frames().get(thread.ident), []
                while frame is not None:
                    names.append(frame.f_code.co_name)
                    frame = frame.f_back
                if names[:2] == ["wait", "_run"]:
                    return
        time.sleep(0.001)
    raise AssertionError("the writer thread never waited for work")


# -- the buffer and its writer ------------------------------------------------------------


def test_close_writes_everything_submitted_in_order() -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config())
    entries = [entry(f"r{i}", n=i + 1) for i in range(5)]
    assert log.submit(entries[:2]) == 3
    assert log.submit(entries[2:]) == 12
    assert log.stats() == PredictionLogStats(
        n_written=0, n_dropped=0, n_flush_errors=0, n_pending=15
    )
    assert log.close(timeout=WAIT_S) is True
    assert ids(sink.written) == ["r0", "r1", "r2", "r3", "r4"]
    assert log.stats() == PredictionLogStats(
        n_written=15, n_dropped=0, n_flush_errors=0, n_pending=0
    )
    assert sink.closed


def test_a_full_buffer_drops_new_entries_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    sink = MemorySink()
    sink.gate.clear()  # the sink hangs: nothing leaves the buffer
    log = PredictionLog(sink, config(max_buffer_records=10, flush_records=1))
    log.open()
    assert log.submit([entry("a", n=4)]) == 4
    assert sink.entered.wait(WAIT_S)  # "a" is being written: it still counts against the bound
    assert log.submit([entry("b", n=6)]) == 6
    with caplog.at_level(logging.WARNING, logger=_predlog.__name__):
        assert log.submit([entry("c", n=1), entry("d", n=2)]) == 0
    assert "buffer full" in caplog.text
    assert log.stats().n_dropped == 3
    assert log.stats().n_pending == 10
    sink.gate.set()
    assert log.close(timeout=WAIT_S) is True
    assert ids(sink.written) == ["a", "b"]
    assert log.stats() == PredictionLogStats(
        n_written=10, n_dropped=3, n_flush_errors=0, n_pending=0
    )


def test_an_entry_larger_than_the_room_left_is_dropped_whole_and_smaller_ones_still_fit() -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config(max_buffer_records=5, flush_records=5))
    assert log.submit([entry("big", n=4), entry("too-big", n=2), entry("fits", n=1)]) == 5
    assert log.close(timeout=WAIT_S)
    assert ids(sink.written) == ["big", "fits"]
    assert log.stats().n_dropped == 2


def test_a_flush_starts_when_flush_records_are_buffered() -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config(flush_records=3))
    log.open()
    wait_until_idle()
    log.submit([entry("a")])
    log.submit([entry("b")])
    wait_until_idle()
    assert sink.writes == []  # below flush_records and an hour before the interval
    log.submit([entry("c")])  # only this submit can wake the writer
    assert sink.wrote.wait(WAIT_S)
    assert sink.writes == [3]
    assert log.stats().n_written == 3
    log.close(timeout=WAIT_S)


def test_a_flush_starts_when_the_interval_has_passed() -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config(flush_records=1_000, flush_interval_s=0.01))
    log.open()
    log.submit([entry("a", n=2)])
    assert sink.wrote.wait(WAIT_S)  # far below flush_records: only the interval can flush
    assert sink.writes == [2]
    assert log.stats().n_pending == 0
    log.close(timeout=WAIT_S)


def test_a_sink_failing_twice_then_working_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = MemorySink(failures=2)
    log = PredictionLog(sink, config(flush_records=1))
    log.open()
    entries = [entry(f"r{i}", n=2) for i in range(3)]
    with caplog.at_level(logging.INFO, logger=_predlog.__name__):
        for e in entries:
            log.submit([e])
        assert log.close(timeout=WAIT_S) is True
    assert ids(sink.written) == ["r0", "r1", "r2"]  # each once, in order
    assert log.stats() == PredictionLogStats(
        n_written=6, n_dropped=0, n_flush_errors=2, n_pending=0
    )
    assert "failed (attempt 1)" in caplog.text
    assert "No space left on device" in caplog.text
    assert "after 2 failures" in caplog.text


def test_close_gives_up_on_a_failing_sink_at_its_timeout_and_counts_the_rest() -> None:
    sink = MemorySink(failures=10**9)
    log = PredictionLog(sink, config(max_backoff_s=0.001))
    log.submit([entry("a", n=3), entry("b", n=1)])
    assert log.close(timeout=0.05) is False
    stats = log.stats()
    assert (stats.n_written, stats.n_dropped, stats.n_pending) == (0, 4, 0)
    assert stats.n_flush_errors >= 1


def test_close_abandons_a_write_that_hangs_past_the_timeout() -> None:
    sink = MemorySink()
    sink.gate.clear()
    log = PredictionLog(sink, config(flush_records=1))
    log.open()
    log.submit([entry("stuck", n=2)])
    assert sink.entered.wait(WAIT_S)
    log.submit([entry("waiting", n=1)])
    assert log.close(timeout=0) is False
    assert log.stats() == PredictionLogStats(
        n_written=0, n_dropped=3, n_flush_errors=0, n_pending=0
    )
    sink.gate.set()  # the hung write ends after all: the records were already counted
    for thread in threading.enumerate():
        if thread.name == "shipyard-prediction-log":
            thread.join(WAIT_S)
    assert log.stats().n_written == 0
    assert log.stats().n_dropped == 3


def test_close_with_no_time_left_writes_nothing_and_counts_it() -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config())
    log.open()
    wait_until_idle()
    log.submit([entry("a", n=2)])
    assert log.close(timeout=0) is False
    assert sink.written == []
    assert log.stats() == PredictionLogStats(
        n_written=0, n_dropped=2, n_flush_errors=0, n_pending=0
    )


def test_a_sink_failing_to_close_does_not_fail_the_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Sticky(MemorySink):
        def close(self) -> None:
            raise OSError("connection reset")

    sink = Sticky()
    log = PredictionLog(sink, config())
    log.submit([entry("a")])
    with caplog.at_level(logging.ERROR, logger=_predlog.__name__):
        assert log.close(timeout=WAIT_S) is True
    assert "closing the sink failed" in caplog.text
    assert ids(sink.written) == ["a"]


def test_entries_submitted_after_close_are_dropped_and_open_accepts_them_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config())
    log.open()
    log.submit([entry("first")])
    assert log.close(timeout=WAIT_S)
    with caplog.at_level(logging.INFO, logger=_predlog.__name__):
        assert log.submit([entry("late", n=2)]) == 0
        assert "closed" in caplog.text
        log.open()  # an app's lifespan may start again
        assert log.submit([entry("again")]) == 1
        assert "accepting predictions again" in caplog.text
    assert log.close(timeout=WAIT_S)
    assert ids(sink.written) == ["first", "again"]
    assert log.stats().n_dropped == 2


def _writers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "shipyard-prediction-log"}


def test_open_is_idempotent_and_the_log_is_a_context_manager() -> None:
    sink = MemorySink()
    before = _writers()
    with PredictionLog(sink, config()) as log:
        log.open()
        assert len(_writers() - before) == 1
        log.submit([entry("a")])
    assert ids(sink.written) == ["a"]
    assert sink.closed
    assert _writers() <= before


def test_entries_from_two_threads_all_land() -> None:
    sink = MemorySink()
    log = PredictionLog(sink, config(flush_records=50))
    log.open()
    start = threading.Barrier(2)

    def produce(prefix: str) -> None:
        start.wait()
        for i in range(500):
            log.submit([entry(f"{prefix}{i}")])

    threads = [threading.Thread(target=produce, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert log.close(timeout=WAIT_S)
    written = ids(sink.written)
    assert sorted(written) == sorted(f"{p}{i}" for p in "ab" for i in range(500))
    for p in "ab":  # each producer's entries stay in its order
        assert [w for w in written if w.startswith(p)] == [f"{p}{i}" for i in range(500)]
    assert log.stats().n_written == 1000


def test_an_entry_must_have_one_output_per_input() -> None:
    log = PredictionLog(MemorySink(), config())
    bad = entry("bad", inputs=[{"x": 1}, {"x": 2}], outputs=[{"prediction": 1}])
    with pytest.raises(ValueError, match="'bad': 2 inputs but 1 outputs"):
        log.submit([entry("good"), bad])
    assert log.stats().n_pending == 0


def test_an_entry_the_sink_cannot_store_is_dropped_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(ParquetSink(tmp_path), config())
    good = [entry("ok1"), entry("ok2", n=2)]
    # a lone surrogate is no UTF-8 text: no sink can store it (the server's parser refuses it)
    bad = entry("bad", inputs=[{"island": "Bisc\ud800"}], outputs=[{"prediction": "Adelie"}])
    log.submit([good[0], bad, good[1]])
    with caplog.at_level(logging.ERROR, logger=_predlog.__name__):
        assert log.close(timeout=WAIT_S) is False  # one record could not be written
    assert "request 'bad'" in caplog.text
    frame = read_predictions(tmp_path, model="penguins")
    assert frame["request_id"].tolist() == ["ok1", "ok2", "ok2"]
    assert log.stats() == PredictionLogStats(
        n_written=3, n_dropped=1, n_flush_errors=0, n_pending=0
    )


def test_entries_that_encode_alone_but_not_together_are_dropped_not_retried() -> None:
    class PairShy(MemorySink):
        def encode(self, entries: Sequence[PredictionEntry]) -> list[PredictionEntry]:
            if len(entries) > 1:
                raise ValueError("cannot encode these together")
            return list(entries)

    sink = PairShy()
    log = PredictionLog(sink, config())
    log.submit([entry("a"), entry("b")])
    assert log.close(timeout=WAIT_S) is False
    assert sink.written == []
    assert log.stats().n_dropped == 2


def test_flush_records_must_fit_in_the_buffer() -> None:
    with pytest.raises(ValueError, match=r"flush_records .* at most max_buffer_records"):
        PredictionLogConfig(max_buffer_records=10, flush_records=11)


# -- the Parquet sink --------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_parquet_files_are_partitioned_by_model_version_and_day(tmp_path: Path) -> None:
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit(
            [
                entry("a", n=2, at=DAY1),
                entry("b", at=DAY1 + timedelta(days=1), version="2"),
                entry("c", at=DAY1, model="churn model/v2", version="10"),
            ]
        )
    pid = os.getpid()
    name = rf"part-\d{{8}}T\d{{12}}Z-{pid}-\d{{6}}\.parquet"
    folders = [
        "model=churn%20model%2Fv2/version=10/date=2024-05-01",
        "model=penguins/version=1/date=2024-05-01",
        "model=penguins/version=2/date=2024-05-02",
    ]
    files = _files(tmp_path)
    assert len(files) == 3  # no temporary file left behind
    for folder, file in zip(folders, files, strict=True):
        assert re.fullmatch(f"{re.escape(folder)}/{name}", file), file
    # Hive style: pyarrow.dataset reads the partitions and filters on them
    hive = ds.partitioning(
        pa.schema([("model", pa.string()), ("version", pa.string()), ("date", pa.string())]),
        flavor="hive",
    )
    dataset = ds.dataset(tmp_path, format="parquet", partitioning=hive)
    chosen = (ds.field("model") == "churn model/v2") & (ds.field("date") == "2024-05-01")
    assert dataset.to_table(filter=chosen).column("request_id").to_pylist() == ["c"]
    assert dataset.to_table(filter=ds.field("version") == "2").num_rows == 1


def test_parquet_round_trip_keeps_every_kind_of_value(tmp_path: Path) -> None:
    plus2 = timezone(timedelta(hours=2))
    inputs = [
        {
            "bill_length_mm": 39.1,
            "year": 2007,
            "tagged": True,
            "island": "Biscoe",
            "note": "première",
            "seen_at": datetime(2024, 5, 1, 8, 30),
        },
        {
            "bill_length_mm": None,
            "year": None,
            "tagged": None,
            "island": None,
            "note": None,
            "seen_at": datetime(2024, 5, 1, 8, 30, tzinfo=plus2),
        },
    ]
    outputs = [
        {"prediction": "Adelie", "probabilities": {"Adelie": 0.9, "Gentoo": 0.1}},
        {"prediction": "Gentoo", "probabilities": {"Adelie": math.nan, "Gentoo": None}},
    ]
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([entry("req-1", at=at, latency_ms=3.25, inputs=inputs, outputs=outputs)])
    frame = read_predictions(tmp_path, model="penguins")
    assert list(frame.columns) == [
        *BASE_COLUMNS,
        "input.bill_length_mm",
        "input.year",
        "input.tagged",
        "input.island",
        "input.note",
        "input.seen_at",
        "prediction",
        "proba.Adelie",
        "proba.Gentoo",
    ]
    assert frame["prediction_id"].tolist() == ["req-1-0", "req-1-1"]
    assert frame["request_id"].tolist() == ["req-1", "req-1"]
    assert frame["ts"].tolist() == [pd.Timestamp(at)] * 2
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert frame["model_name"].tolist() == ["penguins"] * 2
    assert frame["model_version"].tolist() == ["1"] * 2
    assert frame["latency_ms"].tolist() == [3.25, 3.25]
    first = frame.iloc[0]
    assert (first["input.bill_length_mm"], first["input.year"]) == (39.1, 2007)
    assert (first["input.tagged"], first["input.island"]) == (True, "Biscoe")
    assert first["input.note"] == "première"
    # naive datetimes are kept, aware ones converted to UTC (as the model reads them)
    assert frame["input.seen_at"].tolist() == [
        pd.Timestamp("2024-05-01 08:30"),
        pd.Timestamp("2024-05-01 06:30"),
    ]
    assert frame.loc[1, ["input.bill_length_mm", "input.year", "input.tagged"]].isna().all()
    assert frame.loc[1, ["input.island", "input.note"]].isna().all()
    assert frame["prediction"].tolist() == ["Adelie", "Gentoo"]
    assert frame.loc[0, ["proba.Adelie", "proba.Gentoo"]].tolist() == [0.9, 0.1]
    assert frame.loc[1, ["proba.Adelie", "proba.Gentoo"]].isna().all()
    # the file itself tells a missing value (null) from NaN
    table = pq.read_table(next(tmp_path.rglob("*.parquet")))
    assert table.schema.field("input.year").type == pa.int64()
    assert table.schema.field("input.tagged").type == pa.bool_()
    assert table.schema.field("input.seen_at").type == pa.timestamp("us")
    assert pc.is_nan(table["proba.Adelie"]).to_pylist() == [False, True]
    assert pc.is_null(table["proba.Adelie"]).to_pylist() == [False, False]
    assert pc.is_null(table["proba.Gentoo"]).to_pylist() == [False, True]


def test_parquet_prediction_ids_are_the_ones_the_client_got(tmp_path: Path) -> None:
    # /predict answers one record with the request id, a list with REQUEST_ID-INDEX
    one = entry("req-one", outputs=[{"prediction": "Adelie", "prediction_id": "req-one"}])
    many = entry(
        "req-many",
        n=2,
        outputs=[{"prediction": "Gentoo", "prediction_id": f"req-many-{i}"} for i in range(2)],
    )
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([one, many, entry("no-ids", n=2)])
    frame = read_predictions(tmp_path, model="penguins")
    assert frame["prediction_id"].tolist() == [
        "req-one",
        "req-many-0",
        "req-many-1",
        "no-ids-0",
        "no-ids-1",
    ]
    assert [c for c in frame.columns if "prediction_id" in c] == ["prediction_id"]


def test_parquet_datetimes_are_utc_wall_time_whichever_comes_first(tmp_path: Path) -> None:
    plus2 = timezone(timedelta(hours=2))
    inputs = [{"seen_at": datetime(2024, 5, 1, 8, 30, tzinfo=plus2)}, {"seen_at": None}]
    inputs.append({"seen_at": datetime(2024, 5, 1, 8, 30)})
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([entry("r", inputs=inputs)])
    frame = read_predictions(tmp_path, model="penguins")
    assert str(frame["input.seen_at"].dtype) == "datetime64[us]"
    seen = frame["input.seen_at"].tolist()
    assert (seen[0], seen[2]) == (
        pd.Timestamp("2024-05-01 06:30"),
        pd.Timestamp("2024-05-01 08:30"),
    )
    assert pd.isna(seen[1])


def test_parquet_regression_predictions_are_numbers_without_probabilities(tmp_path: Path) -> None:
    outputs = [{"prediction": 4200.5}, {"prediction": 3900.0}]
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([entry("r", n=2, model="mass", outputs=outputs)])
    frame = read_predictions(tmp_path, model="mass")
    assert frame["prediction"].tolist() == [4200.5, 3900.0]
    assert not [c for c in frame.columns if c.startswith("proba.")]


def test_values_that_mix_kinds_are_stored_as_text(tmp_path: Path) -> None:
    inputs = [{"code": 7}, {"code": "A7"}, {"code": None}]
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([entry("r", inputs=inputs)])
    frame = read_predictions(tmp_path, model="penguins")
    assert frame["input.code"].tolist()[:2] == ["7", "A7"]
    assert pd.isna(frame["input.code"].iloc[2])


def test_a_failed_parquet_write_leaves_no_partial_file_and_the_retry_adds_no_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = ParquetSink(tmp_path)
    payload = sink.encode([entry("a", at=DAY1), entry("b", at=DAY1 + timedelta(days=1))])
    real_fsync, calls = os.fsync, []

    def fsync_fails_second(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(store_predlog.os, "fsync", fsync_fails_second)
    with pytest.raises(OSError, match="No space left"):
        sink.write(payload)
    assert len(payload) == 1  # the first day's file landed; only the second is retried
    assert [f.split("/")[2] for f in _files(tmp_path)] == ["date=2024-05-01"]
    sink.write(payload)
    assert payload == []
    frame = read_predictions(tmp_path, model="penguins")
    assert frame["request_id"].tolist() == ["a", "b"]


def test_a_parquet_root_that_cannot_be_written_is_retried_until_it_can(tmp_path: Path) -> None:
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log folder should be")

    class Watched(ParquetSink):
        failed = threading.Event()

        def write(self, payload: list[Any]) -> None:
            try:
                super().write(payload)
            except OSError:
                self.failed.set()
                raise

    log = PredictionLog(Watched(blocker), config(flush_records=1, max_backoff_s=0.01))
    log.open()
    log.submit([entry("a", n=2)])
    assert Watched.failed.wait(WAIT_S)
    log.submit([entry("b")])
    blocker.unlink()  # the "disk" is back
    assert log.close(timeout=WAIT_S) is True
    assert read_predictions(blocker, model="penguins")["request_id"].tolist() == ["a", "a", "b"]
    assert log.stats().n_flush_errors >= 1


def _write_to_parquet(root: str, prefix: str, n: int) -> None:
    with PredictionLog(ParquetSink(root), config(flush_records=7)) as log:
        for i in range(n):
            log.submit([entry(f"{prefix}{i}", n=2)])


@needs_fork
def test_two_processes_write_to_one_parquet_root(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_write_to_parquet, args=(str(tmp_path), p, 50)) for p in "ab"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(WAIT_S)
        assert proc.exitcode == 0
    frame = read_predictions(tmp_path, model="penguins")
    assert len(frame) == 200
    assert frame["prediction_id"].is_unique
    assert set(frame["request_id"]) == {f"{p}{i}" for p in "ab" for i in range(50)}
    names = [re.search(r"-(\d+)-\d{6}\.parquet$", f) for f in _files(tmp_path)]
    assert {m.group(1) for m in names if m} == {str(proc.pid) for proc in procs}


# -- window reads ------------------------------------------------------------------------


def _three_days(root: Path) -> None:
    with PredictionLog(ParquetSink(root), config()) as log:
        for day in range(3):
            at = DAY1 + timedelta(days=day)
            log.submit([entry(f"d{day}-start", at=at.replace(hour=0))])
            log.submit([entry(f"d{day}-noon", at=at)])
        log.submit([entry("v2", at=DAY1, version="2"), entry("other", at=DAY1, model="mass")])


def test_a_window_read_opens_only_the_files_of_its_days(tmp_path: Path) -> None:
    _three_days(tmp_path)
    (third,) = (tmp_path / "model=penguins/version=1/date=2024-05-03").glob("*.parquet")
    third.write_bytes(b"not a parquet file")
    frame = read_predictions(tmp_path, model="penguins", since="2024-05-01", until="2024-05-03")
    assert frame["request_id"].tolist() == ["d0-start", "d0-noon", "v2", "d1-start", "d1-noon"]
    with pytest.raises(DataError, match=r"cannot read the prediction log file .*date=2024-05-03"):
        read_predictions(tmp_path, model="penguins", since="2024-05-02")


def test_window_bounds_include_since_and_exclude_until(tmp_path: Path) -> None:
    _three_days(tmp_path)
    noon2 = DAY1 + timedelta(days=1)
    frame = read_predictions(tmp_path, model="penguins", since=DAY1, until=noon2, version=1)
    assert frame["request_id"].tolist() == ["d0-noon", "d1-start"]
    assert frame["ts"].is_monotonic_increasing
    naive = read_predictions(
        tmp_path, model="penguins", since=datetime(2024, 5, 2, 12), until=datetime(2024, 5, 2, 13)
    )
    assert naive["request_id"].tolist() == ["d1-noon"]
    aware = read_predictions(
        tmp_path,
        model="penguins",
        since="2024-05-02T14:00+02:00",  # 12:00 UTC
        until="2024-05-02T12:00:00.000001Z",
    )
    assert aware["request_id"].tolist() == ["d1-noon"]


def test_version_and_model_select_their_partitions(tmp_path: Path) -> None:
    _three_days(tmp_path)
    assert read_predictions(tmp_path, model="penguins", version="2")["request_id"].tolist() == [
        "v2"
    ]
    assert len(read_predictions(tmp_path, model="penguins")) == 7
    assert read_predictions(tmp_path, model="mass")["request_id"].tolist() == ["other"]
    empty = read_predictions(tmp_path, model="unknown")
    assert list(empty.columns) == list(BASE_COLUMNS)
    assert empty.empty
    assert str(empty["ts"].dtype) == "datetime64[us, UTC]"


def test_versions_whose_column_changed_kind_read_together(tmp_path: Path) -> None:
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([entry("v1", version="1", inputs=[{"code": "A"}])])
        log.submit([entry("v2", version="2", inputs=[{"code": 1.5}])])
    frame = read_predictions(tmp_path, model="penguins")
    assert frame["input.code"].tolist() == ["A", 1.5]


def test_versions_with_compatible_columns_read_as_one_type(tmp_path: Path) -> None:
    with PredictionLog(ParquetSink(tmp_path), config()) as log:
        log.submit([entry("v1", version="1", inputs=[{"x": None}, {"x": None}])])
        log.submit([entry("v2", version="2", inputs=[{"x": 2}, {"x": 3}])])
        log.submit([entry("v3", version="3", inputs=[{"x": 0.5}, {"y": "new"}])])
    frame = read_predictions(tmp_path, model="penguins")
    assert str(frame["input.x"].dtype) == "float64"
    assert frame["input.x"].tolist()[2:5] == [2.0, 3.0, 0.5]
    assert frame["input.y"].tolist()[-1] == "new"


def test_reading_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no prediction log at .*missing"):
        read_predictions(tmp_path / "missing", model="penguins")
    with pytest.raises(ValueError, match="since: cannot read 'last tuesday' as a time"):
        read_predictions(tmp_path, model="penguins", since="last tuesday")
    with pytest.raises(ValueError, match="until: 'NaT' is not a time"):
        read_predictions(tmp_path, model="penguins", until="NaT")
    with pytest.raises(ValueError, match=r"since \(2024-05-02.*\) is after until"):
        read_predictions(tmp_path, model="penguins", since="2024-05-02", until="2024-05-01")


# -- choosing a sink ---------------------------------------------------------------------


@pytest.mark.parametrize("target", [None, "", "off", "OFF", " off "])
def test_off_means_no_sink(target: str | None) -> None:
    assert open_sink(target) is None


def test_paths_and_file_urls_are_parquet_sinks(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "predictions")
    assert isinstance(sink, ParquetSink)
    assert sink.root == tmp_path / "predictions"
    url_sink = open_sink("file:///var/log/shipyard%20log")
    assert isinstance(url_sink, ParquetSink)
    assert url_sink.root == Path("/var/log/shipyard log")
    assert repr(url_sink) == "ParquetSink('/var/log/shipyard log')"
    with pytest.raises(ShipyardError, match="must name a local folder"):
        open_sink("file://otherhost/var/log")


def test_sqlalchemy_urls_are_sql_sinks_that_do_not_connect_yet(tmp_path: Path) -> None:
    sink = open_sink(f"sqlite:///{tmp_path}/log.db")
    assert isinstance(sink, SqlSink)
    assert not (tmp_path / "log.db").exists()
    pg = open_sink("postgresql+psycopg://me:s3cret@db.invalid:5432/shipyard")
    assert isinstance(pg, SqlSink)
    assert "s3cret" not in repr(pg)
    assert "me:***@db.invalid" in repr(pg)


def test_unusable_urls_say_what_is_expected() -> None:
    with pytest.raises(ShipyardError, match="expected a SQLAlchemy URL such as postgresql"):
        open_sink("s3://bucket/predictions")
    with pytest.raises(ShipyardError, match=r"driver is not installed \(MySQLdb\)"):
        open_sink("mysql://me@db/shipyard")


def _old_table(url: str, rows: Sequence[tuple[str, datetime]]) -> None:
    """A prediction_log table as an older Shipyard made it: no unique index."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE prediction_log (id INTEGER PRIMARY KEY, prediction_id TEXT NOT "
                "NULL, request_id TEXT NOT NULL, ts DATETIME NOT NULL, model_name TEXT NOT "
                "NULL, model_version TEXT NOT NULL, latency_ms FLOAT NOT NULL, inputs JSON NOT "
                "NULL, outputs JSON NOT NULL)"
            )
        )
        for prediction_id, ts in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO prediction_log (prediction_id, request_id, ts, model_name, "
                    "model_version, latency_ms, inputs, outputs) VALUES (:p, 'r', :ts, "
                    "'penguins', '1', 1.0, '{}', '{}')"
                ),
                {"p": prediction_id, "ts": ts.replace(tzinfo=None)},
            )
    engine.dispose()


def test_a_sql_batch_written_twice_is_stored_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    _old_table(url, [])  # an older table gets the unique index on first write
    sink = SqlSink(url)
    payload = sink.encode([entry("a", n=3), entry("b")])
    sink.write(payload)
    sink.write(payload)  # a retry after a lost COMMIT answer
    sink.close()
    logged = read_predictions(url, model="penguins")
    assert sorted(logged["prediction_id"]) == ["a-0", "a-1", "a-2", "b-0"]


def test_an_old_table_with_duplicates_keeps_working_and_says_why_retries_may_duplicate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    _old_table(url, [("x", DAY1), ("x", DAY1)])
    sink = SqlSink(url)
    with caplog.at_level(logging.WARNING):
        sink.write(sink.encode([entry("c")]))
    sink.close()
    assert "holds duplicate predictions" in caplog.text
    assert sorted(read_predictions(url, model="penguins")["prediction_id"]) == ["c-0", "x", "x"]

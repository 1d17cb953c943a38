"""The prediction log's SQL sink on a real PostgreSQL server (and on SQLite).

Each PostgreSQL test gets a fresh database (the ``pg_url`` fixture); SQLite ones a new file.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shipyard.serve import _predlog
from shipyard.serve._predlog import PredictionLog, PredictionLogConfig
from shipyard.store import BASE_COLUMNS, PredictionEntry, SqlSink, read_predictions

WAIT_S = 30  # only a failing test waits this long
DAY1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = PredictionLogConfig(flush_interval_s=3600, retry_backoff_s=0.001, max_backoff_s=0.01)


def entry(
    request_id: str,
    *,
    at: datetime = DAY1,
    model: str = "penguins",
    version: str = "1",
    inputs: Sequence[dict[str, Any]] | None = None,
    outputs: Sequence[dict[str, Any]] | None = None,
    latency_ms: float = 2.5,
) -> PredictionEntry:
    inputs = inputs if inputs is not None else [{"island": "Biscoe", "bill_length_mm": 39.1}]
    if outputs is None:
        outputs = [{"prediction": "Adelie", "probabilities": {"Adelie": 0.75, "Gentoo": 0.25}}]
    return PredictionEntry(request_id, at.timestamp(), model, version, inputs, outputs, latency_ms)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/predictions.db"
    else:
        yield request.getfixturevalue("pg_url")


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM prediction_log")).scalar_one())
    finally:
        engine.dispose()


def test_the_table_and_its_index_are_created_on_the_first_write(db_url: str) -> None:
    with PredictionLog(SqlSink(db_url), CONFIG) as log:
        log.submit([entry("a")])
    engine = sa.create_engine(db_url)
    try:
        inspector = sa.inspect(engine)
        columns = [c["name"] for c in inspector.get_columns("prediction_log")]
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("prediction_log")}
    finally:
        engine.dispose()
    assert columns == ["id", *BASE_COLUMNS, "inputs", "outputs"]
    assert indexes["ix_prediction_log_model_name_ts"] == ["model_name", "ts"]


def test_values_round_trip_through_the_json_columns(db_url: str) -> None:
    inputs = [
        {"bill_length_mm": 39.1, "year": 2007, "tagged": True, "island": "Biscoe"},
        {"bill_length_mm": None, "year": None, "tagged": None, "island": None},
        {"bill_length_mm": 40.0, "seen_at": datetime(2024, 5, 1, 8, 30), "note": "a\x00b"},
    ]
    outputs = [
        {"prediction": "Adelie", "probabilities": {"Adelie": 0.9, "Gentoo": 0.1}},
        {"prediction": "Gentoo", "probabilities": {"Adelie": math.nan, "Gentoo": None}},
        {"prediction": "Adelie", "probabilities": {"Adelie": 1.0, "Gentoo": 0.0}},
    ]
    at = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with PredictionLog(SqlSink(db_url), CONFIG) as log:
        log.submit([entry("req-1", at=at, inputs=inputs, outputs=outputs, latency_ms=3.25)])
    frame = read_predictions(db_url, model="penguins")
    assert list(frame.columns) == [
        *BASE_COLUMNS,
        "input.bill_length_mm",
        "input.year",
        "input.tagged",
        "input.island",
        "input.seen_at",
        "input.note",
        "prediction",
        "proba.Adelie",
        "proba.Gentoo",
    ]
    assert frame["prediction_id"].tolist() == ["req-1-0", "req-1-1", "req-1-2"]
    assert frame["ts"].tolist() == [at] * 3
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert frame["latency_ms"].tolist() == [3.25] * 3
    assert frame.loc[0, "input.bill_length_mm"] == 39.1
    assert frame.loc[0, "input.year"] == 2007
    assert frame.loc[0, "input.tagged"] is True
    assert frame.loc[1, ["input.bill_length_mm", "input.year", "input.island"]].isna().all()
    assert frame.loc[2, "input.seen_at"] == "2024-05-01T08:30:00"  # JSON has no datetimes
    assert frame.loc[2, "input.note"] == "a\x00b"  # PostgreSQL's json keeps it (jsonb would not)
    assert frame["prediction"].tolist() == ["Adelie", "Gentoo", "Adelie"]
    assert frame["proba.Adelie"].tolist()[::2] == [0.9, 1.0]
    assert frame.loc[1, ["proba.Adelie", "proba.Gentoo"]].isna().all()  # NaN is stored as null


def test_prediction_ids_are_the_ones_the_client_got(db_url: str) -> None:
    one = entry("req-one", outputs=[{"prediction": "Adelie", "prediction_id": "req-one"}])
    many = entry(
        "req-many",
        inputs=[{"island": "Dream"}, {"island": "Biscoe"}],
        outputs=[{"prediction": "Gentoo", "prediction_id": f"req-many-{i}"} for i in range(2)],
    )
    with PredictionLog(SqlSink(db_url), CONFIG) as log:
        log.submit([one, many, entry("no-ids")])
    frame = read_predictions(db_url, model="penguins")
    assert frame["prediction_id"].tolist() == ["req-one", "req-many-0", "req-many-1", "no-ids-0"]
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        outputs = conn.execute(sa.text("SELECT outputs FROM prediction_log ORDER BY id")).scalars()
        stored = [o if isinstance(o, dict) else json.loads(o) for o in outputs]
    engine.dispose()
    assert stored[0] == {"prediction": "Adelie"}  # the id has its own column


def test_a_window_is_read_with_a_where_on_model_version_and_time(db_url: str) -> None:
    with PredictionLog(SqlSink(db_url), CONFIG) as log:
        for day in range(3):
            at = DAY1 + timedelta(days=day)
            log.submit(
                [entry(f"d{day}-start", at=at.replace(hour=0)), entry(f"d{day}-noon", at=at)]
            )
        log.submit([entry("v2", version="2"), entry("other", model="mass")])
    ids = read_predictions(db_url, model="penguins", since="2024-05-01", until="2024-05-02")
    assert ids["request_id"].tolist() == ["d0-start", "d0-noon", "v2"]
    window = read_predictions(
        db_url, model="penguins", since=DAY1, until=DAY1 + timedelta(days=1), version=1
    )
    assert window["request_id"].tolist() == ["d0-noon", "d1-start"]
    assert read_predictions(db_url, model="mass")["request_id"].tolist() == ["other"]
    assert read_predictions(db_url, model="penguins", version="2")["request_id"].tolist() == ["v2"]
    later = read_predictions(db_url, model="penguins", since="2024-05-03T06:00Z")
    assert later["request_id"].tolist() == ["d2-noon"]
    empty = read_predictions(db_url, model="penguins", since="2030-01-01")
    assert empty.empty
    assert list(empty.columns) == list(BASE_COLUMNS)


def test_reading_a_database_without_a_log_gives_an_empty_frame(db_url: str) -> None:
    frame = read_predictions(db_url, model="penguins")
    assert frame.empty
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"


def test_a_database_that_comes_back_loses_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"  # SQLite cannot open a file in a missing folder

    class Watched(SqlSink):
        failed = threading.Event()

        def write(self, payload: list[dict[str, Any]]) -> None:
            try:
                super().write(payload)
            except sa.exc.OperationalError:
                self.failed.set()
                raise

    url = f"sqlite:///{folder}/predictions.db"
    log = PredictionLog(Watched(url), CONFIG.model_copy(update={"flush_records": 1}))
    log.open()
    log.submit([entry("a")])
    assert Watched.failed.wait(WAIT_S)
    log.submit([entry("b")])
    folder.mkdir()  # the database is back
    assert log.close(timeout=WAIT_S) is True
    assert read_predictions(url, model="penguins")["request_id"].tolist() == ["a", "b"]
    assert log.stats().n_flush_errors >= 1
    assert log.stats().n_written == 2


@pytest.mark.postgres
def test_a_batch_is_inserted_in_one_transaction(pg_url: str) -> None:
    sink = SqlSink(pg_url)
    sink.write(sink.encode([entry("setup")]))
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("ALTER TABLE prediction_log ADD CONSTRAINT positive CHECK (latency_ms >= 0)")
        )
    engine.dispose()
    payload = sink.encode([entry("good", latency_ms=1.0), entry("bad", latency_ms=-1.0)])
    with pytest.raises(sa.exc.IntegrityError, match="positive"):
        sink.write(payload)
    assert _count(pg_url) == 1  # "good" was rolled back with "bad"
    sink.close()


@pytest.mark.postgres
def test_processes_creating_the_table_at_once_all_write(pg_url: str) -> None:
    sinks = [SqlSink(pg_url) for _ in range(8)]
    start = threading.Barrier(len(sinks))
    errors: list[BaseException] = []

    def first_write(i: int) -> None:
        start.wait()
        try:
            sinks[i].write(sinks[i].encode([entry(f"w{i}")]))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_write, args=(i,)) for i in range(len(sinks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert errors == []
    assert _count(pg_url) == 8
    for sink in sinks:
        sink.close()


@pytest.mark.postgres
def test_a_request_id_postgresql_cannot_store_drops_that_request_alone(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(SqlSink(pg_url), CONFIG)
    log.submit([entry("ok-1"), entry("bad\x00id"), entry("ok-2")])
    with caplog.at_level(logging.ERROR, logger=_predlog.__name__):
        assert log.close(timeout=WAIT_S) is False
    assert "NUL character" in caplog.text
    assert read_predictions(pg_url, model="penguins")["request_id"].tolist() == ["ok-1", "ok-2"]
    assert log.stats().n_dropped == 1


@pytest.mark.postgres
def test_two_threads_logging_to_postgresql_all_land(pg_url: str) -> None:
    log = PredictionLog(SqlSink(pg_url), CONFIG.model_copy(update={"flush_records": 100}))
    log.open()

    def produce(prefix: str) -> None:
        for i in range(300):
            log.submit([entry(f"{prefix}{i}")])

    threads = [threading.Thread(target=produce, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert log.close(timeout=WAIT_S) is True
    frame = read_predictions(pg_url, model="penguins")
    assert len(frame) == 600
    assert frame["prediction_id"].is_unique

"""``shipyard serve`` logging predictions to PostgreSQL while the database restarts and goes away.

The server runs as a user runs it, serving ``models:/penguins@production`` from a PostgreSQL
store and logging every prediction to a table in the same database, both through a
:class:`FaultProxy`. Three faults, under load:

1. a restart, as the clients see one: every session of the server is terminated;
2. an outage shorter than the log's buffer: the proxy resets every connection and refuses new
   ones while 1,000 records are answered, then forwards again;
3. an outage longer than the buffer (2,000 records): 3,000 records are answered.

Every request must be answered with a 200 from the loaded model, and once the database is back
the log must hold every answered prediction exactly once, except those the buffer refused,
which ``/metrics`` counts exactly: answered == rows + dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from _proxy import FaultProxy, terminate_sessions
from _server import Served, drain_output, penguin_package, serving, stop
from _traffic import Load, LogCounts, Tally, log_counts, wait_for

from shipyard.registry import Registry
from shipyard.serve._predlog import PredictionLog, PredictionLogConfig
from shipyard.store import PredictionEntry, SqlSink, Store

pytestmark = [pytest.mark.postgres, pytest.mark.http, pytest.mark.slow]

BUFFER = 2_000  # --prediction-log-buffer: records the log may hold unwritten
RECORDS = 5  # records per request
FLUSH_S = 0.2  # --prediction-log-flush-seconds
OUTAGE_S = 2.0  # how long the database stays away (the writer retries after 0.5, 1.5, 3.5 s)
RECOVERY_S = 60  # only a failing test waits this long


@pytest.fixture
def served(
    pg_url: str, proxy: FaultProxy, tmp_path: Path
) -> Iterator[tuple[Served, str, list[str]]]:
    """The server, its store and log through the proxy; yields it, the application_name of
    its log's sessions (the store's is ``<that>-store``) and its output lines (read as they
    come)."""
    store = Store.open(pg_url, root=tmp_path / ".shipyard")
    try:
        registry = Registry(store)
        version = registry.register("penguins", penguin_package()).version
        registry.promote("penguins", version, "production", moved_by="chaos")
    finally:
        store.close()
    app = f"chaos-{uuid.uuid4().hex[:8]}"
    url = f"{proxy.for_database(pg_url)}?application_name={app}"
    options = ["--workers", "1", "--prediction-log", url, "--reload-interval", "0.5"]
    options += ["--prediction-log-flush-seconds", str(FLUSH_S)]
    options += ["--prediction-log-buffer", str(BUFFER), "--max-records", "100"]
    store_url = f"{url}-store"
    with serving(tmp_path, "models:/penguins@production", *options, store=store_url) as server:
        yield server, app, drain_output(server)


def _rows(url: str) -> tuple[int, set[str]]:
    """Rows in the prediction log and their distinct prediction ids (read directly)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT prediction_id FROM prediction_log")).scalars().all()
    finally:
        engine.dispose()
    return len(ids), set(ids)


def _drained(port: int) -> LogCounts:
    counts: list[LogCounts] = []

    def idle() -> bool:
        counts.append(log_counts(port))
        return counts[-1].pending == 0

    wait_for(idle, RECOVERY_S, "the prediction log did not drain")
    return counts[-1]


def _hold_outage(proxy: FaultProxy) -> float:
    """Keep the database away until OUTAGE_S after the cut, then restore it; its length."""
    assert proxy.cut_at is not None
    time.sleep(max(0.0, proxy.cut_at + OUTAGE_S - time.monotonic()))
    proxy.restore()
    return time.monotonic() - proxy.cut_at


def _all_200(tally: Tally) -> None:
    assert set(tally.outcomes) == {"200"}, tally.summary()


def test_the_server_answers_through_restarts_and_outages_and_counts_every_record(
    served: tuple[Served, str, list[str]], proxy: FaultProxy, pg_url: str, pg_server_url: str
) -> None:
    server, app, output = served
    answered: set[str] = set()
    figures: list[str] = []

    # 0. warm up: the log has written, so its connection is open (and pooled)
    warm = Load(server.port, clients=2, records=RECORDS, tag="warm").run(20)
    _all_200(warm)
    assert _drained(server.port).written == warm.answered
    answered.update(warm.answered_ids)

    # 1. a restart under load: the server's sessions are ended while clients send (between
    # two writes: one ended during a COMMIT is the case of the lost-COMMIT test below)
    load = Load(server.port, clients=4, records=RECORDS, tag="restart").start(requests=200)
    wait_for(lambda: load.tally.answered >= 250, RECOVERY_S, "no traffic")
    ended = [terminate_sessions(pg_server_url, f"{app}-store")]

    def log_session_ended() -> bool:
        ended.append(terminate_sessions(pg_server_url, app, idle_only=True))
        return ended[-1] > 0

    wait_for(log_session_ended, RECOVERY_S, "the log's session was never idle")
    load.join()
    _all_200(load.tally)
    counts = _drained(server.port)
    rows, ids = _rows(pg_url)
    answered.update(load.tally.answered_ids)
    # the log's pooled connections are pinged before use: its next write reconnects at once
    # (a write that meets the ended session would fail once and be retried: nothing lost)
    assert counts.dropped == 0, counts
    assert rows == len(ids) == len(answered), f"{rows} rows, {len(ids)} ids, {len(answered)}"
    assert ids == answered
    figures.append(
        f"restart ({sum(ended)} sessions ended): {load.tally.answered} answered, "
        f"{counts.written - warm.answered} written, {counts.flush_errors} failed write, 0 lost"
    )

    # 2. an outage the buffer holds: 1,000 records answered while the database is away
    before = counts
    proxy.cut()
    tally = Load(server.port, clients=4, records=RECORDS, tag="short").run(200)
    wait_for(
        lambda: log_counts(server.port).flush_errors > before.flush_errors,
        RECOVERY_S,
        "no write was attempted during the outage",
    )
    during = log_counts(server.port)
    outage_s = _hold_outage(proxy)
    recovery_s = wait_for(lambda: log_counts(server.port).pending == 0, RECOVERY_S, "no recovery")
    _all_200(tally)
    after = log_counts(server.port)
    rows, ids = _rows(pg_url)
    answered.update(tally.answered_ids)
    assert tally.answered == 1_000
    assert during.pending == 1_000, during  # every answered record waited in the buffer
    assert after.dropped == 0, after
    assert after.written - before.written == 1_000, after
    assert rows == len(ids) == len(answered) and ids == answered
    figures.append(
        f"outage {outage_s:.1f} s within the buffer: {tally.answered} answered, "
        f"{after.written - before.written} written {recovery_s:.1f} s after it came back, "
        f"{after.flush_errors - before.flush_errors} failed writes, 0 lost"
    )

    # 3. an outage longer than the buffer: the records beyond it are refused and counted
    proxy.cut()
    tally = Load(server.port, clients=4, records=RECORDS, tag="long").run(600)
    during = log_counts(server.port)
    long_outage_s = _hold_outage(proxy)
    recovery_s = wait_for(lambda: log_counts(server.port).pending == 0, RECOVERY_S, "no recovery")
    _all_200(tally)
    final = log_counts(server.port)
    rows, ids = _rows(pg_url)
    assert tally.answered == 3_000
    assert during.pending == BUFFER, during
    assert final.dropped == tally.answered - BUFFER == 1_000, final
    assert final.written - after.written == BUFFER, final
    assert rows == len(ids) == len(answered) + BUFFER  # no record twice
    assert answered < ids < answered | set(tally.answered_ids)
    total = len(answered) + tally.answered
    assert total == rows + final.dropped  # every answered record is a row or counted
    figures.append(
        f"outage {long_outage_s:.1f} s beyond the buffer: {tally.answered} answered, {BUFFER} "
        f"written {recovery_s:.1f} s after it came back, "
        f"{final.flush_errors - after.flush_errors} failed writes, "
        f"{final.dropped} refused and counted"
    )

    # it still serves, and a graceful stop writes everything answered since
    last = Load(server.port, clients=2, records=RECORDS, tag="last").run(20)
    _all_200(last)
    assert stop(server) == 0
    rows, ids = _rows(pg_url)
    assert rows == total + last.answered - final.dropped
    looks = sum("hot reload: looking at" in line for line in output)
    figures.append(f"total: {total + last.answered} answered, {rows} rows")
    figures.append(f"{looks} failed looks at the alias, the loaded version answering throughout")
    print("\n".join(["", *figures]))


def test_a_batch_whose_commit_answer_is_lost_is_written_once(
    pg_url: str, proxy: FaultProxy
) -> None:
    config = PredictionLogConfig(flush_interval_s=3600, retry_backoff_s=0.1, max_backoff_s=0.5)
    log = PredictionLog(SqlSink(proxy.for_database(pg_url)), config)
    log.open()
    log.submit([_entry(0)])
    log._entries.flush()  # the table exists; the next write is one INSERT and its COMMIT
    proxy.lose_answer_to(b"COMMIT")
    log.submit([_entry(i) for i in range(1, 11)])
    assert log.close(timeout=30) is True
    stats = log.stats()
    rows, ids = _rows(pg_url)
    assert proxy.answers_lost == 1 and stats.n_flush_errors >= 1, stats
    assert (stats.n_written, stats.n_dropped, len(ids)) == (11, 0, 11)
    assert rows == 11, f"{rows} rows for 11 predictions: the lost COMMIT's batch twice"


def _entry(i: int) -> PredictionEntry:
    output = {"prediction": "Adelie", "prediction_id": f"p{i}"}
    return PredictionEntry(
        f"p{i}", time.time(), "penguins", "1", [{"island": "Biscoe"}], [output], 1.0
    )

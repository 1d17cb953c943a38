"""Runs whose process died without ending them are reported ``crashed``, never left ``running``.

The rule: on the machine (pid namespace) that owns the run, the owner process must exist with
the start time recorded for it; elsewhere, the run must have sent a heartbeat within
``stale_after`` seconds. Rows are written by hand here to put each case in the store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shipyard.errors import StoreError, TrackingError
from shipyard.store import Store, tables
from shipyard.tracking import Lineage, Tracker, _liveness
from shipyard.tracking._run import Run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / ".shipyard") as opened:
        yield opened


@pytest.fixture
def tracker(store: Store) -> Iterator[Tracker]:
    with Tracker(store) as opened:
        yield opened


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll for something a background thread does (generous deadline, not a speed check)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _insert_run(store: Store, **columns: Any) -> str:
    """A ``running`` row with the given owner columns; returns its id."""
    run_id = uuid.uuid4().hex
    now = time.time()
    row = {"id": run_id, "name": "r", "status": "running", "start_time": now}
    row.update(columns)
    with store.begin() as conn:
        conn.execute(sa.insert(tables.runs).values(**row))
    return run_id


def _here(**overrides: Any) -> dict[str, Any]:
    """Owner columns naming this very process."""
    me = _liveness.current_process()
    columns = {
        "host": me.host,
        "pid": me.pid,
        "pid_space": me.pid_space,
        "pid_started": me.started,
        "heartbeat_at": time.time(),
    }
    columns.update(overrides)
    return columns


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _status(tracker: Tracker, run_id: str) -> str:
    return tracker.get_run(run_id).status


# -- the process identity ----------------------------------------------------------------------


def test_current_process_identity() -> None:
    me = _liveness.current_process()
    assert me.pid == os.getpid()
    assert me.host and me.pid_space
    if sys.platform.startswith("linux"):
        assert me.started is not None  # the start time tells a recycled pid apart


def test_a_started_run_records_its_owner_and_a_heartbeat(tracker: Tracker) -> None:
    with tracker.start_run("owned", lineage=Lineage()) as run:
        record = tracker.get_run(run.id)
    me = _liveness.current_process()
    assert record.status == "running"
    assert (record.host, record.pid) == (me.host, me.pid)
    assert record.heartbeat_at is not None
    assert abs(record.heartbeat_at - time.time()) < 3600  # the database clock, in epoch seconds


# -- on the owner's machine: the process decides -----------------------------------------------


def test_run_of_a_dead_process_is_crashed(store: Store, tracker: Tracker) -> None:
    pid = _dead_pid()
    run_id = _insert_run(store, **_here(pid=pid, pid_started="1"))
    record = tracker.get_run(run_id)
    assert record.status == "crashed"
    assert record.error is not None
    assert f"pid {pid}" in record.error
    assert record.end_time is not None  # the last sign of life
    with store.connect() as conn:  # persisted, so SQL filters see it
        stored = conn.execute(
            sa.select(tables.runs.c.status).where(tables.runs.c.id == run_id)
        ).scalar_one()
    assert stored == "crashed"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process start times via /proc")
def test_a_recycled_pid_does_not_keep_a_run_alive(store: Store, tracker: Tracker) -> None:
    run_id = _insert_run(store, **_here(pid_started="12345"))  # our pid, another start time
    assert _status(tracker, run_id) == "crashed"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process states via /proc")
def test_a_killed_owner_not_yet_reaped_by_its_parent_is_dead(
    store: Store, tracker: Tracker
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = _liveness._start_time(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        stat = Path(f"/proc/{child.pid}/stat")
        _wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "a zombie")
        run_id = _insert_run(store, **_here(pid=child.pid, pid_started=started))
        assert _status(tracker, run_id) == "crashed"  # a zombie never ends its run
    finally:
        child.kill()
        child.wait()


def test_a_live_owner_keeps_its_run_running_without_heartbeats(
    store: Store, tracker: Tracker
) -> None:
    run_id = _insert_run(store, **_here(heartbeat_at=time.time() - 86_400))
    assert _status(tracker, run_id) == "running"


# -- elsewhere: the heartbeat decides ----------------------------------------------------------


def test_other_hosts_are_judged_by_their_heartbeat(store: Store, tracker: Tracker) -> None:
    elsewhere = {"host": "other", "pid": 1, "pid_space": "other-machine", "pid_started": "7"}
    fresh = _insert_run(store, **elsewhere, heartbeat_at=time.time() - 10)
    stale = _insert_run(store, **elsewhere, heartbeat_at=time.time() - 3600)
    assert _status(tracker, fresh) == "running"
    record = tracker.get_run(stale)
    assert record.status == "crashed"
    assert record.error is not None
    assert "no heartbeat" in record.error and "other" in record.error
    assert record.end_time == pytest.approx(time.time() - 3600, abs=60)


def test_stale_after_is_a_tracker_setting(store: Store) -> None:
    elsewhere = {"host": "other", "pid": 1, "pid_space": "other-machine"}
    run_id = _insert_run(store, **elsewhere, heartbeat_at=time.time() - 120)
    with Tracker(store, stale_after=3600) as patient:
        assert _status(patient, run_id) == "running"
    with Tracker(store, stale_after=60) as strict:
        assert _status(strict, run_id) == "crashed"


def test_runs_from_before_the_owner_columns_are_judged_by_their_start(
    store: Store, tracker: Tracker
) -> None:
    old = _insert_run(store, start_time=time.time() - 86_400)
    recent = _insert_run(store)
    assert _status(tracker, old) == "crashed"
    assert _status(tracker, recent) == "running"


def test_a_heartbeat_newer_than_the_verdict_wins(store: Store) -> None:
    elsewhere = {"host": "other", "pid": 1, "pid_space": "other-machine"}
    run_id = _insert_run(store, **elsewhere, heartbeat_at=time.time() - 3600)
    with store.connect() as conn:
        crashes = _liveness.find_crashed(conn, stale_after=300)
    assert [c.run_id for c in crashes] == [run_id]
    with store.begin() as conn:  # the owner beats between the verdict and the update
        _liveness.beat(conn, [run_id])
    with store.begin() as conn:
        assert _liveness.mark_crashed(conn, crashes) == []
    with Tracker(store) as reader:
        assert _status(reader, run_id) == "running"


def test_finished_runs_are_never_touched(store: Store, tracker: Tracker) -> None:
    run_id = _insert_run(store, status="finished", end_time=time.time(), pid=_dead_pid())
    assert _status(tracker, run_id) == "finished"


# -- the heartbeat -----------------------------------------------------------------------------


def _heartbeat_at(store: Store, run_id: str) -> float | None:
    with store.connect() as conn:
        value = conn.execute(
            sa.select(tables.runs.c.heartbeat_at).where(tables.runs.c.id == run_id)
        ).scalar_one()
    return None if value is None else float(value)


def _age_heartbeat(store: Store, run_id: str, seconds: float) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.update(tables.runs)
            .where(tables.runs.c.id == run_id)
            .values(heartbeat_at=time.time() - seconds)
        )


def test_the_writer_thread_sends_heartbeats(store: Store) -> None:
    with Tracker(store, flush_interval=60, heartbeat_interval=0.05) as t:
        run = t.start_run("beating", lineage=Lineage())
        _age_heartbeat(store, run.id, 3600)
        _wait_for(lambda: (_heartbeat_at(store, run.id) or 0) > time.time() - 600, "a heartbeat")
        run.end()


def test_a_heartbeat_revives_a_run_wrongly_marked_crashed(store: Store) -> None:
    with Tracker(store, flush_interval=60, heartbeat_interval=0.05) as t:
        run = t.start_run("partitioned", lineage=Lineage())
        with store.begin() as conn:
            conn.execute(
                sa.update(tables.runs)
                .where(tables.runs.c.id == run.id)
                .values(status="crashed", end_time=time.time(), error="no heartbeat")
            )
        _wait_for(lambda: _status(t, run.id) == "running", "the run to be running again")
        record = t.get_run(run.id)
        assert (record.end_time, record.error) == (None, None)
        run.end()
        assert _status(t, run.id) == "finished"


def test_a_crashed_run_that_ends_records_its_real_end(store: Store, tracker: Tracker) -> None:
    run = tracker.start_run("late", lineage=Lineage())
    with store.begin() as conn:
        conn.execute(
            sa.update(tables.runs).where(tables.runs.c.id == run.id).values(status="crashed")
        )
    run.end()
    assert _status(tracker, run.id) == "finished"


# -- searching ---------------------------------------------------------------------------------


def test_search_by_status_crashed(store: Store, tracker: Tracker) -> None:
    dead = _insert_run(store, **_here(pid=_dead_pid()))
    live = _insert_run(store, **_here())
    assert [r.id for r in tracker.search_runs(status="crashed")] == [dead]
    assert [r.id for r in tracker.search_runs(status="running")] == [live]


def test_search_rejects_an_unknown_status(tracker: Tracker) -> None:
    with pytest.raises(TrackingError, match=r"status 'crashd'.*crashed"):
        tracker.search_runs(status="crashd")


def test_a_read_only_store_still_reports_crashed_runs(
    store: Store, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _insert_run(store, **_here(pid=_dead_pid()))

    def refuse(*_args: object) -> list[str]:
        raise StoreError("read-only")

    monkeypatch.setattr(_liveness, "mark_crashed", refuse)
    assert _status(tracker, run_id) == "crashed"
    assert [r.id for r in tracker.search_runs()] == [run_id]
    assert tracker.search_runs()[0].status == "crashed"


def test_runs_of_this_process_are_running(tracker: Tracker) -> None:
    runs: list[Run] = [tracker.start_run(f"r{i}", lineage=Lineage()) for i in range(3)]
    assert {r.status for r in tracker.search_runs()} == {"running"}
    for run in runs:
        run.end()


# -- without /proc (macOS, BSD), and the settings ------------------------------------------------


def test_without_proc_a_dead_pid_still_crashes_and_a_live_one_needs_heartbeats(
    store: Store, tracker: Tracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_liveness, "_PROC", tmp_path / "no-proc")
    me = _liveness.current_process()
    assert me.started is None  # no start times to compare
    assert me.pid_space  # the host name (and nothing else) names the pid space
    here = {"host": me.host, "pid_space": me.pid_space, "pid_started": None}
    dead = _insert_run(store, **here, pid=_dead_pid(), heartbeat_at=time.time())
    live_fresh = _insert_run(store, **here, pid=os.getpid(), heartbeat_at=time.time())
    live_silent = _insert_run(store, **here, pid=os.getpid(), heartbeat_at=time.time() - 3600)
    assert _status(tracker, dead) == "crashed"
    assert _status(tracker, live_fresh) == "running"  # a live pid may be a reused one:
    assert _status(tracker, live_silent) == "crashed"  # the heartbeat decides


def test_heartbeat_settings_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="stale_after=10 must exceed heartbeat_interval=30"):
        Tracker(store, stale_after=10, heartbeat_interval=30)
    with pytest.raises(ValueError, match="heartbeat_interval=0"):
        Tracker(store, heartbeat_interval=0)


def test_a_failing_heartbeat_is_logged_and_the_writer_goes_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from shipyard.tracking._writer import BufferedWriter

    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise StoreError("the store is away")

    writer = BufferedWriter(store, flush_interval=60, heartbeat=failing, heartbeat_interval=0.01)
    writer.start()
    try:
        _wait_for(lambda: len(calls) >= 3, "three heartbeats")
    finally:
        writer.close()
    assert "tracking heartbeat failed: the store is away" in caplog.text

"""shipyard.tracking on a real PostgreSQL store: the core round trip, searches, crashed runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.errors import StoreError, TrackingError
from shipyard.store import Store, tables
from shipyard.tracking import Lineage, Tracker, _liveness

pytestmark = pytest.mark.postgres


@pytest.fixture
def tracker(pg_url: str, tmp_path: Path) -> Iterator[Tracker]:
    store = Store.open(pg_url, artifact_root=str(tmp_path / "artifacts"))
    t = Tracker(store, flush_interval=0.05)
    yield t
    t.close()
    store.close()


def test_round_trip_on_postgres(tracker: Tracker) -> None:
    lineage = Lineage("spec", "fp", "abc", {"numpy": "2.4"})
    with tracker.start_run("pg", project="p", tags={"k": "v"}, lineage=lineage) as run:
        run.log_params({"C": 0.5, "depth": 3})
        for i in range(300):
            run.log_metric("loss", 1 / (i + 1))
        run.log_metrics({"acc": 0.9, "f1": 0.7}, step=2)
        run.log_metrics({"acc": 0.95}, step=1)  # a lower step: latest stays 0.9
        run.log_artifact("model.txt", b"weights")

    record = tracker.get_run(run.id[:8])
    assert record.status == "finished"
    assert record.params == {"C": "0.5", "depth": "3"}
    assert record.tags == {"k": "v"}
    assert record.metrics == pytest.approx({"loss": 1 / 300, "acc": 0.9, "f1": 0.7})
    assert record.package_versions == {"numpy": "2.4"}
    history = tracker.metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(300))
    assert tracker.store.artifacts.get(f"runs/{run.id}/model.txt") == b"weights"


def test_failed_run_and_searches_on_postgres(tracker: Tracker) -> None:
    with tracker.start_run("good", project="p") as good:
        good.log_metric("acc", 0.9)
    with pytest.raises(RuntimeError), tracker.start_run("bad", project="p") as bad:
        bad.log_metric("acc", 0.4)
        raise RuntimeError("diverged")
    child = tracker.start_run("child", parent_id=good.id)
    child.end()

    assert tracker.get_run(bad.id).status == "failed"
    assert tracker.get_run(bad.id).error == "RuntimeError: diverged"
    names = [r.name for r in tracker.search_runs(order_by="metric.acc DESC")]
    assert names == ["good", "bad", "child"]
    assert [r.name for r in tracker.search_runs(filter={"acc": (">", 0.5)})] == ["good"]
    assert [r.name for r in tracker.search_runs(parent_id=good.id)] == ["child"]
    assert [r.name for r in tracker.search_runs(project="p", status="failed")] == ["bad"]
    with pytest.raises(TrackingError, match="no run"):
        tracker.get_run("zzzzzzzz")


def test_write_errors_surface_on_postgres(tracker: Tracker) -> None:
    run = tracker.start_run()
    run.log_param("x", "a")
    with pytest.raises(TrackingError, match="immutable"):
        run.log_param("x", "b")
    run.end()
    other = Tracker(tracker.store, flush_interval=60)
    ghost = other.start_run()
    with tracker.store.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM runs WHERE id = '{ghost.id}'")
    ghost.log_metric("x", 1.0)
    with pytest.raises(StoreError, match="could not write"):
        ghost.end()
    other.close()


# -- crashed runs (the rule is tested in tests/unit/test_run_liveness.py) ----------------------


def _owned_by(store: Store, name: str, **owner: object) -> str:
    run_id = uuid.uuid4().hex
    row = {"id": run_id, "name": name, "status": "running", "start_time": time.time(), **owner}
    with store.begin() as conn:
        conn.execute(sa.insert(tables.runs).values(**row))
    return run_id


def test_crashed_runs_on_postgres(tracker: Tracker) -> None:
    store = tracker.store
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = _liveness.current_process()
    here = {"host": me.host, "pid_space": me.pid_space, "pid_started": me.started}
    elsewhere = {"host": "far", "pid": 1, "pid_space": "far-away"}
    dead = _owned_by(store, "dead", **here, pid=child.pid, heartbeat_at=time.time())
    silent = _owned_by(store, "silent", **elsewhere, heartbeat_at=time.time() - 3600)
    fresh = _owned_by(store, "fresh", **elsewhere, heartbeat_at=time.time() - 5)
    live = tracker.start_run("live", lineage=Lineage())

    crashed = {r.name: r for r in tracker.search_runs(status="crashed")}
    assert sorted(crashed) == ["dead", "silent"]
    assert f"pid {child.pid}" in (crashed["dead"].error or "")
    assert "no heartbeat" in (crashed["silent"].error or "")
    assert sorted(r.id for r in tracker.search_runs(status="running")) == sorted([fresh, live.id])
    record = tracker.get_run(live.id)
    assert (record.host, record.pid) == (me.host, me.pid)
    assert record.heartbeat_at == pytest.approx(time.time(), abs=600)  # the server's clock
    assert {dead, silent} == {r.id for r in crashed.values()}

    # a heartbeat newer than a verdict wins; one from the owner revives a run marked crashed
    with store.begin() as conn:
        _liveness.beat(conn, [silent])
    assert tracker.get_run(silent).status == "running"
    live.end()
    assert tracker.get_run(live.id).status == "finished"


_OWNER = """
import time
import shipyard
from shipyard.tracking import Lineage

run = shipyard.start_run("doomed", lineage=Lineage())
shipyard.log_metric("loss", 0.5)
run._tracker.flush()
print(run.id, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_run_killed_9_is_crashed_on_postgres(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_STORE_URL", pg_url)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        run_id = owner.stdout.readline().strip()
        assert len(run_id) == 32, "the owner process did not start its run"
        with Store.from_env() as store, Tracker(store) as reader:
            assert reader.get_run(run_id).status == "running"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(60)
        owner.stdout.close()  # type: ignore[union-attr]
    with Store.from_env() as store, Tracker(store) as reader:
        record = reader.get_run(run_id)
        assert record.status == "crashed"
        assert record.metrics == {"loss": 0.5}
        assert [r.id for r in reader.search_runs(status="crashed")] == [run_id]

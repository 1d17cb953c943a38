"""Unit tests of shipyard.tracking on a temporary SQLite store."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import shipyard.tracking as tracking
from shipyard.errors import StoreError, TrackingError
from shipyard.store import Store, tables
from shipyard.tracking import Lineage, Tracker, collect_lineage


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(root=tmp_path / ".shipyard")
    yield s
    s.close()


@pytest.fixture
def tracker(store: Store) -> Iterator[Tracker]:
    t = Tracker(store, flush_interval=60)  # background flushes only where a test asks
    yield t
    t.close()


def _stored_metric_count(store: Store, run_id: str) -> int:
    with store.connect() as conn:
        query = sa.select(sa.func.count()).where(tables.metrics.c.run_id == run_id)
        return int(conn.execute(query).scalar_one())


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll for something a background thread does (generous deadline, not a speed check)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- round trips -----------------------------------------------------------------------------


def test_params_metrics_tags_round_trip(tracker: Tracker) -> None:
    lineage = Lineage("spec1", "fp1", "abc123", {"numpy": "2.4"})
    with tracker.start_run("base", project="p", tags={"team": "ml"}, lineage=lineage) as run:
        run.log_params({"C": 1.0, "kernel": "rbf"})
        run.log_param("n", 3)
        run.log_metrics({"accuracy": 0.9, "f1": 0.8})
        run.set_tag("stage", "dev")
        run.set_tag("stage", "prod")  # tags can be replaced

    record = tracker.get_run(run.id)
    assert record.name == "base"
    assert record.project == "p"
    assert record.status == "finished"
    assert record.params == {"C": "1.0", "kernel": "rbf", "n": "3"}
    assert record.metrics == {"accuracy": 0.9, "f1": 0.8}
    assert record.tags == {"team": "ml", "stage": "prod"}
    assert record.spec_hash == "spec1"
    assert record.dataset_fingerprint == "fp1"
    assert record.git_commit == "abc123"
    assert record.package_versions == {"numpy": "2.4"}
    assert record.end_time is not None
    assert record.duration is not None
    assert record.duration >= 0
    assert record.error is None


def test_default_name_and_running_state(tracker: Tracker) -> None:
    run = tracker.start_run()
    record = tracker.get_run(run.id)
    assert record.name == f"run-{run.id[:8]}"
    assert record.status == "running"
    assert record.duration is None
    run.end()


def test_param_conflict_is_an_error_and_same_value_is_fine(tracker: Tracker) -> None:
    with tracker.start_run() as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", "0.1")
        with pytest.raises(TrackingError, match=r"'lr'.*'0\.1'.*'0\.2'"):
            run.log_params({"other": 1, "lr": 0.2})
        run.log_param("other", 2)  # the failed call logged nothing: 'other' is still free
    assert tracker.get_run(run.id).params == {"lr": "0.1", "other": "2"}


def test_step_series_and_latest_value(tracker: Tracker) -> None:
    with tracker.start_run() as run:
        for loss in (0.9, 0.5, 0.3):
            run.log_metric("loss", loss)
        run.log_metric("val", 1.0, step=10)
        run.log_metric("val", 2.0, step=3)  # a lower step does not become the latest
        run.log_metric("val", 3.0)  # None after step 10 -> 11
    history = tracker.metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    val = tracker.metric_history(run.id[:10], "val")
    assert [(p.step, p.value) for p in val] == [(3, 2.0), (10, 1.0), (11, 3.0)]
    assert tracker.get_run(run.id).metrics == {"loss": 0.3, "val": 3.0}


def test_invalid_values_are_rejected(tracker: Tracker) -> None:
    with tracker.start_run() as run:
        with pytest.raises(TrackingError, match="expected a number"):
            run.log_metric("acc", "high")  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match="expected an int"):
            run.log_metric("acc", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match="non-empty string"):
            run.log_metric("", 1.0)
        with pytest.raises(TrackingError, match="relative path"):
            run.log_artifact("../escape.txt", b"x")
    with pytest.raises(TrackingError, match="status"):
        tracker.start_run().end("done")


def test_log_artifact(tracker: Tracker, store: Store) -> None:
    with tracker.start_run() as run:
        sha = run.log_artifact("notes/a.txt", b"hello")
    assert len(sha) == 64
    assert store.artifacts.get(f"runs/{run.id}/notes/a.txt") == b"hello"


def test_end_is_idempotent_and_logging_after_end_fails(tracker: Tracker) -> None:
    run = tracker.start_run()
    run.end()
    run.end("failed")  # ignored: the run already ended
    assert tracker.get_run(run.id).status == "finished"
    with pytest.raises(TrackingError, match="has ended"):
        run.log_metric("x", 1.0)
    with pytest.raises(TrackingError, match="has ended"):
        run.log_params({"x": 1})


def test_exception_inside_with_marks_the_run_failed(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match="boom"), tracker.start_run() as run:
        run.log_metric("partial", 1.0)
        raise ValueError("boom")
    record = tracker.get_run(run.id)
    assert record.status == "failed"
    assert record.error == "ValueError: boom"
    assert record.metrics == {"partial": 1.0}  # what was logged before the error is kept


def test_keyboard_interrupt_inside_with_marks_the_run_killed(tracker: Tracker) -> None:
    with pytest.raises(KeyboardInterrupt), tracker.start_run() as run:
        raise KeyboardInterrupt
    assert tracker.get_run(run.id).status == "killed"


def test_concurrent_logging_from_threads(tracker: Tracker) -> None:
    run = tracker.start_run()

    def work() -> None:
        for i in range(500):
            run.log_metric("x", float(i))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.end()
    steps = [p.step for p in tracker.metric_history(run.id, "x")]
    assert steps == list(range(2000))


# -- ids -------------------------------------------------------------------------------------


def test_run_id_prefixes(tracker: Tracker, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["abcdef" + "0" * 26, "abcdef" + "1" * 26, "123456" + "0" * 26])
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(hex=next(ids)))
    runs = [tracker.start_run() for _ in range(3)]
    assert tracker.get_run("abcdef1").id == runs[1].id
    assert tracker.get_run("123456").id == runs[2].id
    with pytest.raises(TrackingError, match="several runs"):
        tracker.get_run("abcdef")
    with pytest.raises(TrackingError, match="too short"):
        tracker.get_run("abc")
    with pytest.raises(TrackingError, match="no run with id 'ffffff'"):
        tracker.get_run("ffffff")
    with pytest.raises(TrackingError, match="no run"):
        tracker.metric_history("f" * 32, "x")
    for run in runs:
        run.end()


# -- search ----------------------------------------------------------------------------------


@pytest.fixture
def populated(tracker: Tracker) -> dict[str, str]:
    """Four runs: a (acc .95), b (acc .85, failed), c (no acc, project q), child of a."""
    ids: dict[str, str] = {}
    for name, acc, project in (("a", 0.95, "p"), ("b", 0.85, "p"), ("c", None, "q")):
        run = tracker.start_run(name, project=project)
        run.log_params({f"p{i}": i for i in range(3)})
        if acc is not None:
            run.log_metrics({"accuracy": acc, "loss": 1 - acc})
        run.end("failed" if name == "b" else "finished")
        ids[name] = run.id
    child = tracker.start_run("child", project="p", parent_id=ids["a"][:8])
    child.log_metric("accuracy", 0.5)
    child.end()
    ids["child"] = child.id
    return ids


def _names(records: list[tracking.RunRecord]) -> list[str]:
    return [r.name for r in records]


def test_search_by_columns(tracker: Tracker, populated: dict[str, str]) -> None:
    assert _names(tracker.search_runs()) == ["child", "c", "b", "a"]  # newest first
    assert _names(tracker.search_runs(project="q")) == ["c"]
    assert _names(tracker.search_runs(status="failed")) == ["b"]
    assert _names(tracker.search_runs(parent_id=None)) == ["c", "b", "a"]
    assert _names(tracker.search_runs(parent_id=populated["a"])) == ["child"]
    assert tracker.get_run(populated["child"]).parent_id == populated["a"]
    assert _names(tracker.search_runs(limit=2)) == ["child", "c"]


def test_search_filters_and_orders_on_metrics(tracker: Tracker, populated: dict[str, str]) -> None:
    assert _names(tracker.search_runs(filter={"accuracy": (">", 0.9)})) == ["a"]
    assert _names(tracker.search_runs(filter={"metric.accuracy": ("<=", 0.85)})) == [
        "child",
        "b",
    ]
    both = {"accuracy": (">", 0.6), "loss": ("<", 0.1)}
    assert _names(tracker.search_runs(filter=both)) == ["a"]
    by_acc = tracker.search_runs(order_by="metric.accuracy DESC")
    assert _names(by_acc) == ["a", "b", "child", "c"]  # no accuracy sorts last
    assert _names(tracker.search_runs(order_by="metric.accuracy")) == ["child", "b", "a", "c"]
    assert _names(tracker.search_runs(order_by="name asc")) == ["a", "b", "c", "child"]
    assert _names(tracker.search_runs(order_by="start_time ASC")) == ["a", "b", "c", "child"]
    assert by_acc[0].params == {"p0": "0", "p1": "1", "p2": "2"}
    assert by_acc[0].metrics == pytest.approx({"accuracy": 0.95, "loss": 0.05})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filter": {"accuracy": ("~", 0.5)}}, "unknown operator '~'"),
        ({"order_by": "size DESC"}, "cannot order by 'size'"),
        ({"order_by": "name sideways"}, "cannot order by 'name sideways'"),
    ],
)
def test_search_rejects_bad_queries(
    tracker: Tracker, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(TrackingError, match=match):
        tracker.search_runs(**kwargs)  # type: ignore[arg-type]


def test_unknown_parent_is_an_error(tracker: Tracker) -> None:
    with pytest.raises(TrackingError, match="no run with id"):
        tracker.start_run(parent_id="0" * 32)


# -- the buffered writer ---------------------------------------------------------------------


def test_values_are_buffered_until_the_run_ends(tracker: Tracker, store: Store) -> None:
    run = tracker.start_run()
    for i in range(100):
        run.log_metric("x", i)
    assert _stored_metric_count(store, run.id) == 0  # flush_interval=60: still in memory
    run.end()
    assert _stored_metric_count(store, run.id) == 100


def test_background_thread_flushes_on_interval(store: Store) -> None:
    with Tracker(store, flush_interval=0.02) as fast:
        run = fast.start_run()
        run.log_metric("x", 1.0)
        _wait_for(lambda: _stored_metric_count(store, run.id) == 1, "the interval flush")
        run.end()


def test_full_buffer_is_flushed_before_the_interval(store: Store) -> None:
    with Tracker(store, flush_interval=60, max_buffer=10) as small:
        run = small.start_run()
        for i in range(25):
            run.log_metric("x", i)
        # at 10 rows the thread is woken; at 20 the caller flushes itself
        _wait_for(lambda: _stored_metric_count(store, run.id) >= 20, "the early flush")
        run.end()
        assert _stored_metric_count(store, run.id) == 25


def test_a_run_started_after_close_is_written_without_a_thread(store: Store) -> None:
    closed = Tracker(store, flush_interval=60)
    closed.close()
    run = closed.start_run()  # no writer thread starts again
    run.log_metric("x", 1.0)
    assert closed._writer._rows._thread is None
    run.end()
    assert _stored_metric_count(store, run.id) == 1


def test_reads_see_buffered_values(tracker: Tracker) -> None:
    run = tracker.start_run()
    run.log_metric("x", 2.0)
    assert tracker.get_run(run.id).metrics == {"x": 2.0}
    run.end()


def _delete_run_row(store: Store, run_id: str) -> None:
    """Make the next write for ``run_id`` break the foreign keys."""
    with store.begin() as conn:
        conn.execute(sa.delete(tables.runs).where(tables.runs.c.id == run_id))


def test_background_write_error_surfaces_on_the_next_call(store: Store) -> None:
    fast = Tracker(store, flush_interval=0.02)
    run = fast.start_run()
    _delete_run_row(store, run.id)
    run.log_metric("x", 1.0)
    _wait_for(lambda: fast._writer._rows._error is not None, "the background flush to fail")
    with pytest.raises(StoreError, match=r"could not write 1 tracking rows .*" + run.id):
        run.log_metric("x", 2.0)
    run.log_metric("x", 3.0)  # the error is raised once; this row fails again, in end()
    with pytest.raises(StoreError, match="could not write"):
        run.end()
    fast.close()


def test_write_error_at_end_is_raised_and_the_run_still_ends(tracker: Tracker) -> None:
    ok = tracker.start_run()
    bad = tracker.start_run()
    _delete_run_row(tracker.store, bad.id)
    bad.log_metric("x", 1.0)
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        bad.end()
    assert bad.ended
    ok.end()
    assert tracker.get_run(ok.id).status == "finished"


def test_close_ends_running_runs_as_killed(store: Store) -> None:
    t = Tracker(store, flush_interval=60)
    run = t.start_run()
    run.log_metric("x", 1.0)
    t.close()
    with Tracker(store) as reader:
        record = reader.get_run(run.id)
    assert record.status == "killed"
    assert record.metrics == {"x": 1.0}


def test_atexit_kills_and_flushes_runs_left_running(tmp_path: Path) -> None:
    root = tmp_path / ".shipyard"
    script = textwrap.dedent(
        f"""
        from shipyard.store import Store
        from shipyard.tracking import Tracker

        tracker = Tracker(Store.open(root={str(root)!r}), flush_interval=60)
        run = tracker.start_run("orphan")
        for i in range(1000):
            run.log_metric("x", i)
        print(run.id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    run_id = done.stdout.strip()
    with Store.open(root=root) as store, Tracker(store) as reader:
        record = reader.get_run(run_id)
        assert record.status == "killed"
        assert record.error is not None
        assert "exited" in record.error
        assert record.metrics == {"x": 999.0}
        assert len(reader.metric_history(run_id, "x")) == 1000


# -- the module-level API ----------------------------------------------------------------------


def test_module_api_needs_an_active_run() -> None:
    assert tracking.active_run() is None
    with pytest.raises(TrackingError, match="no active run"):
        tracking.log_metric("x", 1.0)


def test_module_api_logs_to_the_active_run_and_nests(store: Store) -> None:
    with tracking.start_run("outer", store=store, lineage=Lineage()) as outer:
        assert tracking.active_run() is outer
        tracking.log_params({"a": 1})
        tracking.log_param("b", 2)
        tracking.set_tag("t", "v")
        with tracking.start_run("inner") as inner:
            assert tracking.active_run() is inner
            tracking.log_metric("loss", 0.5)
            tracking.log_metrics({"acc": 0.9}, step=3)
        assert tracking.active_run() is outer
    assert tracking.active_run() is None
    with Tracker(store) as reader:
        outer_record = reader.get_run(outer.id)
        inner_record = reader.get_run(inner.id)
    assert outer_record.params == {"a": "1", "b": "2"}
    assert outer_record.tags == {"t": "v"}
    assert inner_record.parent_id == outer.id
    assert inner_record.metrics == {"loss": 0.5, "acc": 0.9}
    assert inner_record.package_versions  # lineage collected for the inner run


def test_module_api_opens_the_store_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("SHIPYARD_STORE_URL", f"sqlite:///{db}")
    monkeypatch.chdir(tmp_path)
    with tracking.start_run("env") as run:
        tracking.log_metric("x", 1.0)
    with Store.open(f"sqlite:///{db}") as store, Tracker(store) as reader:
        assert reader.get_run(run.id).metrics == {"x": 1.0}


# -- lineage ---------------------------------------------------------------------------------


def test_collect_lineage_outside_git(tmp_path: Path) -> None:
    lineage = collect_lineage(spec_hash="s", dataset_fingerprint="d", cwd=tmp_path)
    assert lineage.git_commit is None
    assert lineage.spec_hash == "s"
    assert lineage.dataset_fingerprint == "d"
    assert lineage.package_versions["shipyard"]
    assert "numpy" in lineage.package_versions


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_collect_lineage_in_a_git_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        done = subprocess.run(
            ["git", *ident, *args], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    assert collect_lineage(cwd=tmp_path).git_commit == head
    (tmp_path / "a.txt").write_text("changed")
    assert collect_lineage(cwd=tmp_path).git_commit == f"{head}-dirty"


def test_public_api() -> None:
    assert set(tracking.__all__) == {
        "MAX_PAGE_SIZE",
        "PAGE_SIZE",
        "RUN_STATUSES",
        "Lineage",
        "MetricPoint",
        "Run",
        "RunPage",
        "RunRecord",
        "Tracker",
        "active_run",
        "collect_lineage",
        "load_run_artifact",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "metric_histories",
        "metric_history",
        "page_runs",
        "record_dataset",
        "run_artifact_path",
        "run_projects",
        "set_tag",
        "start_run",
        "view_run",
    }

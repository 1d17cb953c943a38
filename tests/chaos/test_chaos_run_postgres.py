"""``shipyard run`` with its PostgreSQL store restarting or going away mid-run.

The store is reached through a :class:`FaultProxy`; the proxy is cut at an exact point of the
run, when the store is about to execute a given statement (an SQLAlchemy event on every engine
that talks to the proxy), and restored a second later, while the run is failing. Expected: the
command exits 1 with a one-line error naming the store (no traceback, no "internal error"),
the run is recorded ``failed`` with that error once the database is back (not left
``running``), no model version points at missing or partial files, and the next run works.
A restart that falls between two transactions is not a failure at all.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _proxy import FaultProxy, terminate_sessions
from sqlalchemy import event

from cli_runner import cli
from shipyard.errors import ModelNotFoundError
from shipyard.pipeline import _run
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.tracking import Tracker

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RESTORE_AFTER_S = 1.0  # the outage: the run fails inside it and ends after it


@pytest.fixture
def app_name() -> str:
    return f"chaos-run-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def store_url(proxy: FaultProxy, pg_url: str, app_name: str) -> str:
    """The store as ``shipyard run`` sees it: through the proxy."""
    return f"{proxy.for_database(pg_url)}?application_name={app_name}"


@contextmanager
def cut_at(proxy: FaultProxy, statement: str, parameter: str = "") -> Iterator[threading.Event]:
    """Cut the proxy when a statement matching ``statement`` (with a parameter matching
    ``parameter``) is about to run through it; restore it RESTORE_AFTER_S later."""
    pattern, wanted = re.compile(statement), re.compile(parameter)
    fired = threading.Event()

    def before(conn: Any, cursor: Any, text: str, params: Any, *_: Any) -> None:
        if fired.is_set() or conn.engine.url.port != proxy.port:
            return
        if pattern.search(text) and wanted.search(str(params)):
            fired.set()
            proxy.cut()
            threading.Timer(RESTORE_AFTER_S, proxy.restore).start()

    event.listen(sa.engine.Engine, "before_cursor_execute", before)
    try:
        yield fired
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", before)
        proxy.restore()


def _shipyard_run(capsys: pytest.CaptureFixture[str], store_url: str) -> tuple[int, str, float]:
    started = time.monotonic()
    code, out = cli(capsys, "--store", store_url, "run")
    return code, out, time.monotonic() - started


def _clean_failure(code: int, out: str) -> str:
    """The one error line of a run that failed as a user's error should: exit 1, no traceback."""
    assert code == 1, out
    assert "Traceback" not in out and "internal error" not in out, out
    lines = out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(starts) == 1, out
    return " ".join(line.strip() for line in lines[starts[0] :])  # the message, to its end


def _state(pg_url: str, project: Path) -> tuple[list[tuple[str, str, str]], list[Any], int]:
    """Read directly (not through the proxy): runs (name, status, error), the model's versions,
    and the artifacts recorded under models/."""
    store = Store.open(pg_url, root=project / ".shipyard")
    try:
        with Tracker(store) as tracker:
            runs = [(r.name, r.status, r.error or "") for r in tracker.search_runs()]
        try:
            versions = Registry(store).list_versions("penguins")
        except ModelNotFoundError:
            versions = []
        package_files = len(store.artifacts.list("models"))
        for version in versions:  # every version loads, its files verified by sha256
            Registry(store).load(f"models:/penguins/{version.version}")
    finally:
        store.close()
    return sorted(runs), versions, package_files


@dataclass(frozen=True)
class Cut:
    """Where the store goes away, and what must be true afterwards."""

    statement: str  # the statement about to run when the proxy is cut
    parameter: str  # ... with a parameter matching this
    error: tuple[str, ...]  # what the one error line says
    versions: list[tuple[int, tuple[str, ...]]]  # (version, aliases) afterwards
    package_files: int  # artifacts recorded under models/
    child: str  # the candidate's run status


CUTS = [
    pytest.param(
        Cut(r"^INSERT INTO metrics", "", ("metadata store", "127.0.0.1"), [], 0, "failed"),
        id="training",
    ),
    pytest.param(
        Cut(
            r"^INSERT INTO artifacts",
            r"models/penguins/.*/metadata\.json",
            ("was not registered (no version was created)", "metadata store"),
            [],
            2,  # pipeline.joblib and signature.json, in a folder no version names
            "finished",
        ),
        id="package",
    ),
    pytest.param(
        Cut(
            r"^INSERT INTO model_versions",
            "",
            ("recording the new version failed", "lost the connection"),
            [],
            7,  # the whole package, in a folder no version names
            "finished",
        ),
        id="registration",
    ),
    pytest.param(
        Cut(
            r"^INSERT INTO aliases",
            "",
            (
                "registered penguins version 1, but the champion/challenger gate",
                "lost the connection",
                "shipyard models promote penguins 1",
            ),
            [(1, ())],  # whole (it loads) and unpromoted
            7,
            "finished",
        ),
        id="promotion",
    ),
]


@pytest.mark.parametrize("cut", CUTS)
def test_store_lost_mid_run_fails_it_cleanly_records_it_and_the_next_run_works(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    proxy: FaultProxy,
    pg_url: str,
    store_url: str,
    cut: Cut,
) -> None:
    with cut_at(proxy, cut.statement, cut.parameter) as fired:
        code, out, seconds = _shipyard_run(capsys, store_url)
        assert proxy.cut_at is not None
        after_cut = time.monotonic() - proxy.cut_at  # the run waited for the store to record it
    assert fired.is_set()
    error = _clean_failure(code, out)
    assert all(fragment in error for fragment in cut.error), error
    runs, versions, package_files = _state(pg_url, project)
    assert [(v.version, v.aliases) for v in versions] == cut.versions
    assert package_files == cut.package_files
    # recorded once the store was back, never left running
    assert [(name, status) for name, status, _ in runs] == [
        ("linear", cut.child),
        ("run", "failed"),
    ]
    assert all(fragment in runs[1][2] for fragment in cut.error[1:]), runs
    with capsys.disabled():  # the figures, shown with -s
        print(
            f"\nstore lost at {cut.statement!r} for {RESTORE_AFTER_S} s: exit 1 after "
            f"{seconds:.1f} s, {after_cut:.1f} s after the cut; {error[:200]}"
        )
    if cut.versions:
        return
    code, out, _ = _shipyard_run(capsys, store_url)
    assert code == 0 and "Registered penguins version 1" in out, out
    _, versions, _ = _state(pg_url, project)
    assert [(v.version, v.aliases) for v in versions] == [(1, ("production",))]


def test_a_restart_between_two_transactions_is_ridden_out(
    capsys: pytest.CaptureFixture[str],
    project: Path,
    pg_url: str,
    pg_server_url: str,
    store_url: str,
    app_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ended: list[int] = []
    refit = _run.refit_best

    def restart_then_refit(*args: Any) -> Any:
        # once the tracking writer has written what was logged, no write is open and the
        # run's pooled connections sit idle: end them (a loaded machine may take a moment)
        deadline = time.monotonic() + 15
        while True:
            time.sleep(0.3)
            n = terminate_sessions(pg_server_url, app_name, idle_only=True)
            if n or time.monotonic() > deadline:
                break
        ended.append(n)
        return refit(*args)

    monkeypatch.setattr(_run, "refit_best", restart_then_refit)
    code, out, _ = _shipyard_run(capsys, store_url)
    assert ended and ended[0] >= 1  # the run's pooled connections were ended under it
    assert code == 0 and "Registered penguins version 1" in out, out
    runs, versions, _ = _state(pg_url, project)
    assert {status for _, status, _ in runs} == {"finished"}, runs
    assert [v.version for v in versions] == [1]

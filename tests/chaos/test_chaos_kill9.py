"""``shipyard serve`` killed with ``kill -9`` under load, then started again on its port.

The server logs to a Parquet folder, flushed every 0.2 s. Clients post without pause; just
before the kill the test reads ``/metrics``. Afterwards:

- every Parquet file in the log reads whole (a file appears only once complete);
- what ``/metrics`` reported written is on disk (at least that many records), no record twice,
  none that was not sent;
- a record answered more than the flush interval (plus a margin for a busy machine) before the
  kill is on disk: a kill loses at most the last interval;
- the server started again on the same port answers, and a graceful stop then writes all it
  answered.

With several workers, the supervisor killed outright is not the end of its workers: each gets
SIGTERM (``PR_SET_PDEATHSIG``) and drains, so nothing answered is lost.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _server import Served, penguin_package, serving, stop
from _traffic import Load, LogCounts, Tally, log_counts, wait_for

from integration._served import register

pytestmark = [pytest.mark.http, pytest.mark.slow]

FLUSH_S = 0.2
MARGIN_S = 1.5  # a busy 2-core machine may delay a flush by this much
LOAD_S = 2.5
# what a client sees of a request the kill cut off, or of one sent after: never answered
UNANSWERED = {
    "RemoteDisconnected",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "BrokenPipeError",
    "IncompleteRead",  # the kill landed while the answer was on the wire: half a body
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chaos-kill9")
    register(root, "penguins", penguin_package())
    return root


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "predictions"


def _options(log_dir: Path, workers: int) -> list[str]:
    return [
        "--workers",
        str(workers),
        "--prediction-log",
        str(log_dir),
        "--prediction-log-flush-seconds",
        str(FLUSH_S),
        "--max-records",
        "100",
    ]


def _on_disk(log_dir: Path) -> tuple[list[str], int]:
    """Every prediction id in the log's files (each file read whole), and the temporary
    files a killed writer left behind (hidden; readers skip them)."""
    ids: list[str] = []
    for path in sorted(log_dir.rglob("part-*.parquet")):
        ids += pq.read_table(path, columns=["prediction_id"]).column(0).to_pylist()
    leftovers = len(list(log_dir.rglob(".part-*.tmp")))
    return ids, leftovers


def _kill_under_load(served: Served, tag: str) -> tuple[Tally, LogCounts, float, Load]:
    """Load the server for LOAD_S seconds, read /metrics, SIGKILL it at once."""
    load = Load(served.port, clients=4, records=5, tag=tag).start()
    time.sleep(LOAD_S)
    counts = log_counts(served.port)
    os.kill(served.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    served.proc.wait(timeout=30)
    return load.stop(), counts, killed_at, load


def test_kill_9_under_load_loses_at_most_the_last_flush_and_the_server_restarts(
    home: Path, log_dir: Path
) -> None:
    with serving(home, "models:/penguins/1", *_options(log_dir, 1)) as served:
        tally, counts, killed_at, load = _kill_under_load(served, "before")
    ids, leftovers = _on_disk(log_dir)
    on_disk = set(ids)
    answered = set(tally.answered_ids)
    lost = answered - on_disk
    before_last_flush = [
        i
        for i, at in zip(tally.answered_ids, tally.answered_at, strict=True)
        if at < killed_at - FLUSH_S - MARGIN_S
    ]
    old = [i for i in before_last_flush if i not in on_disk]
    sent = {f"before-{n}-{i}" for n in range(load.issued) for i in range(load.records)}
    summary = (
        f"{tally.summary()}; /metrics before the kill: {counts}; {len(ids)} on disk, "
        f"{len(lost)} answered but not on disk, {leftovers} temporary files left"
    )
    assert set(tally.outcomes) <= UNANSWERED | {"200"}, summary
    assert counts.written > 0 and counts.dropped == 0, summary
    assert len(ids) >= counts.written, summary  # what the log acknowledged is on disk
    assert len(ids) == len(on_disk), summary  # no record twice
    assert on_disk <= sent, summary  # nothing that was not asked for
    assert before_last_flush, summary  # the check below is not empty
    assert old == [], f"{len(old)} records answered before the last flush are missing; {summary}"

    # started again on the same port, it answers, and a graceful stop loses nothing
    restart_at = time.monotonic()
    with serving(home, "models:/penguins/1", *_options(log_dir, 1), port=served.port) as again:
        ready_s = time.monotonic() - restart_at
        after = Load(again.port, clients=2, records=5, tag="after").run(100)
        assert set(after.outcomes) == {"200"}, after.summary()
        assert stop(again) == 0
    ids_after, _ = _on_disk(log_dir)
    assert len(ids_after) == len(ids) + after.answered
    assert set(ids_after) - on_disk == set(after.answered_ids)
    print(
        f"\nkill -9, 1 worker: {summary}; serving again after {ready_s:.1f} s, "
        f"{after.answered} answered and written"
    )


def test_kill_9_of_the_supervisor_lets_its_workers_drain(home: Path, log_dir: Path) -> None:
    with serving(home, "models:/penguins/1", *_options(log_dir, 2)) as served:
        children = Path(f"/proc/{served.proc.pid}/task/{served.proc.pid}/children")
        workers = [int(pid) for pid in children.read_text().split()]
        assert len(workers) == 2
        tally, counts, killed_at, _ = _kill_under_load(served, "supervisor")

    def gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in workers)

    wait_for(gone, 60, "the workers did not stop after their supervisor died")
    drained_s = time.monotonic() - killed_at
    ids, leftovers = _on_disk(log_dir)
    summary = (
        f"{tally.summary()}; /metrics before the kill: {counts}; {len(ids)} on disk; "
        f"workers gone {drained_s:.1f} s after the kill"
    )
    assert set(tally.outcomes) <= UNANSWERED | {"200"}, summary
    assert len(ids) == len(set(ids)), summary
    assert set(tally.answered_ids) <= set(ids), summary  # the workers drained: nothing lost
    assert leftovers == 0, summary
    print(f"\nkill -9 of the supervisor, 2 workers: {summary}")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

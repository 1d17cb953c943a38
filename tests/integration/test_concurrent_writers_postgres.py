"""Eight writer processes share one PostgreSQL metadata store and one S3 artifact root (moto's
server), all starting at the same instant: runs with params, metrics and artifacts, versions of
one model, moves of one alias, prediction-log flushes. Afterwards nothing is lost, nothing is
duplicated, no writer saw an error, and every artifact verifies against its sha256.

Each writer is a separate ``python tests/concurrent_writer.py`` process (its own connections
and its own S3 client, as on separate machines).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from s3_server import S3Bucket
from shipyard.registry import Registry
from shipyard.store import Store, read_predictions, tables

# starting eight interpreters with pandas and scikit-learn is slow on a loaded 2-core machine
pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow, pytest.mark.timeout(300)]

WRITERS = 8
ROUNDS = 3
RECORDS_PER_FLUSH = 20  # as in concurrent_writer.py
WRITER = Path(__file__).parents[1] / "concurrent_writer.py"
READY_TIMEOUT_S = 300  # only a failing (or badly overloaded) machine waits this long
FINISH_TIMEOUT_S = 120  # a stuck writer dumps its stacks and exits after 90 s


def _start_writers(
    pg_url: str, s3_bucket: S3Bucket, folder: Path
) -> list[tuple[subprocess.Popen[bytes], Path, Path]]:
    """The writer processes, each with its output and errors in files (a full pipe would
    block a writer, maybe while it holds a lock the others wait for)."""
    env = {**os.environ, **s3_bucket.environ(), "PYTHONPATH": str(WRITER.parent)}
    writers = []
    for index in range(WRITERS):
        out, err = folder / f"writer-{index}.out", folder / f"writer-{index}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            command = [sys.executable, str(WRITER), pg_url, s3_bucket.root, str(index)]
            command += [str(ROUNDS), str(folder / f"ready-{index}"), str(folder / "go")]
            process = subprocess.Popen(command, stdout=out_file, stderr=err_file, env=env)
        writers.append((process, out, err))
    return writers


def _wait_ready(writers: list[tuple[subprocess.Popen[bytes], Path, Path]], folder: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = set(range(len(writers)))
    while waiting and time.monotonic() < deadline:
        for index in list(waiting):
            process, _, err = writers[index]
            if (folder / f"ready-{index}").exists():
                waiting.discard(index)
            elif process.poll() is not None:
                pytest.fail(f"writer {index} died: {err.read_text()[-3000:]}", pytrace=False)
        time.sleep(0.05)
    if waiting:
        pytest.fail(f"writers {sorted(waiting)} did not get ready", pytrace=False)


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_eight_writer_processes_lose_nothing_and_never_collide(
    pg_url: str, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    Store.open(pg_url, artifact_root=s3_bucket.root).close()  # the schema, made once
    writers = _start_writers(pg_url, s3_bucket, tmp_path)
    try:
        _wait_ready(writers, tmp_path)
        (tmp_path / "go").touch()  # all writers begin at once
        for process, _, _ in writers:
            process.wait(FINISH_TIMEOUT_S)
    finally:
        for process, _, _ in writers:
            if process.poll() is None:
                process.kill()
                process.wait()
    failures = [err.read_text()[-3000:] for p, _, err in writers if p.returncode]
    assert failures == [], "\n---\n".join(failures)
    results = [json.loads(out.read_text().strip().splitlines()[-1]) for _, out, _ in writers]
    total = WRITERS * ROUNDS

    # every writer finished cleanly: no retried write, nothing dropped from the log
    for result in results:
        assert result["log_closed"] is True
        assert (result["log_dropped"], result["log_flush_errors"]) == (0, 0)
        assert result["log_written"] == ROUNDS * RECORDS_PER_FLUSH

    with Store.open(pg_url, artifact_root=s3_bucket.root) as store:
        # runs, params, metrics: all there, all finished
        run_ids = [run_id for r in results for run_id in r["runs"]]
        assert len(set(run_ids)) == total
        with store.connect() as conn:
            statuses = conn.execute(sa.select(tables.runs.c.status)).scalars().all()
            assert sorted(statuses) == ["finished"] * total
            assert _count(conn, tables.params) == 2 * total
            assert _count(conn, tables.metrics) == 5 * total

        # versions: exactly 1..total, each returned to exactly one writer
        registry = Registry(store)
        versions = sorted(v for r in results for v in r["versions"])
        assert versions == list(range(1, total + 1))
        recorded = [v.version for v in registry.list_versions("shared")]
        assert recorded == list(range(1, total + 1))

        # the alias moves form one chain, each starting where the one before it ended
        history = registry.alias_history("shared", "production")
        assert len(history) == total
        chain = [(m.version, m.previous_version) for m in history]
        assert chain[0][1] is None
        assert all(prev == before[0] for before, (_, prev) in itertools.pairwise(chain))
        assert sorted(tuple(m) for r in results for m in r["moves"]) == sorted(chain)
        assert registry.resolve("models:/shared@production").version == chain[-1][0]

        # every artifact is on S3 and verifies: the run notes and every model package
        for run_id in run_ids:
            assert store.artifacts.get(f"runs/{run_id}/notes.txt").startswith(b"writer ")
        for version in versions:
            package = registry.load(f"models:/shared/{version}")  # sha256-verified
            assert package.metadata["version"] == version
        # the artifact every writer overwrote: its object is the one its row records
        assert store.artifacts.get("shared/latest.txt").startswith(b"writer ")
        recorded_paths = sorted(r.path for r in store.artifacts.list())
        prefix = f"{s3_bucket.bucket}/shipyard/"
        on_s3 = sorted(k.removeprefix(prefix) for k in s3_bucket.fs().find(s3_bucket.bucket))
        assert on_s3 == recorded_paths  # no temporary or orphaned objects

    # the prediction log: every record once
    frame = read_predictions(pg_url, model="shared")
    assert len(frame) == total * RECORDS_PER_FLUSH
    assert frame["prediction_id"].is_unique

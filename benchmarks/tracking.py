"""Benchmark: Shipyard's tracking against MLflow 3.x, both on SQLite, in the same run.

Measures, for each tool:
  * the caller's cost of one ``log_metric`` call;
  * the time until 5,000 metric values are durable (Shipyard: from the first call until
    ``end()`` returns; MLflow: its per-call cost times 5,000, since every call commits);
  * listing 1,000 runs with 10 params and 10 metrics each, and a filtered, ordered search;
  * creating a new store.

MLflow runs in a throwaway venv (``python -m venv`` + ``pip install 'mlflow>=3,<4'``) as a
subprocess that prints JSON, so it never touches Shipyard's environment. Exits 1 when a
Shipyard target is missed.

Usage::

    python benchmarks/tracking.py                 # both (installs MLflow: a few minutes)
    python benchmarks/tracking.py --skip-mlflow   # Shipyard only
    python benchmarks/tracking.py --mlflow-python /path/to/venv/bin/python  # reuse a venv
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.store import Store
from shipyard.tracking import Tracker

N_METRIC_CALLS = 5_000
N_RUNS = 1_000
N_KEYS = 10  # params and metrics per listed run


@dataclass(frozen=True)
class Row:
    """One measured quantity: seconds for both tools and Shipyard's target."""

    label: str
    shipyard: float
    target: float
    mlflow: float | None = None
    note: str = ""


def _median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- Shipyard ----------------------------------------------------------------------------------


def _shipyard_store_creation(tmp: Path) -> float:
    counter = iter(range(1_000))

    def create() -> None:
        Store.open(root=tmp / f"new-{next(counter)}").close()

    return _median_time(create)


def _shipyard_logging(tracker: Tracker) -> tuple[float, float]:
    """Per-call cost and total time until N_METRIC_CALLS values are durable."""
    run = tracker.start_run("logging")
    start = time.perf_counter()
    for i in range(N_METRIC_CALLS):
        run.log_metric("loss", 1.0 / (i + 1))
    calls_done = time.perf_counter()
    run.end()
    durable = time.perf_counter()
    per_call = (calls_done - start) / N_METRIC_CALLS
    return per_call, durable - start


def _shipyard_populate(tracker: Tracker) -> None:
    for i in range(N_RUNS):
        run = tracker.start_run(f"run-{i}", project="bench")
        run.log_params({f"p{k}": i * k for k in range(N_KEYS)})
        run.log_metrics({f"m{k}": ((i * 7919 + k) % 1000) / 1000 for k in range(N_KEYS)})
        run.end()


def measure_shipyard(tmp: Path) -> dict[str, float]:
    """Shipyard's numbers on a temporary SQLite store."""
    out = {"store_creation": _shipyard_store_creation(tmp)}
    store = Store.open(root=tmp / "bench")
    with Tracker(store) as tracker:
        out["log_metric_per_call"], out["durable_5000"] = _shipyard_logging(tracker)
        _shipyard_populate(tracker)
        listed = tracker.search_runs(project="bench", limit=N_RUNS)
        assert len(listed) == N_RUNS
        assert len(listed[0].params) == N_KEYS
        assert len(listed[0].metrics) == N_KEYS
        out["list_1000"] = _median_time(lambda: tracker.search_runs(project="bench", limit=N_RUNS))
        out["search_filtered"] = _median_time(
            lambda: tracker.search_runs(
                filter={"m0": (">", 0.5)}, order_by="metric.m1 DESC", limit=N_RUNS
            )
        )
    store.close()
    return out


# -- MLflow (in its own venv) -------------------------------------------------------------------

MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    from pathlib import Path

    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    tmp, n_calls, n_runs, n_keys = Path(sys.argv[1]), *map(int, sys.argv[2:5])
    out = {"version": mlflow.__version__}

    def median_time(fn, repeats=3):
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
        return statistics.median(times)

    counter = iter(range(1000))
    def create():
        uri = f"sqlite:///{tmp}/new-{next(counter)}.db"
        MlflowClient(tracking_uri=uri).search_experiments()
    out["store_creation"] = median_time(create)

    uri = f"sqlite:///{tmp}/bench.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench", artifact_location=(tmp / "art").as_uri())
    with mlflow.start_run(experiment_id=exp):
        start = time.perf_counter()
        for i in range(n_calls):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        out["log_metric_per_call"] = (time.perf_counter() - start) / n_calls

    for i in range(n_runs):
        run = client.create_run(exp, run_name=f"run-{i}")
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k}", ((i * 7919 + k) % 1000) / 1000, now, 0)
                     for k in range(n_keys)],
            params=[Param(f"p{k}", str(i * k)) for k in range(n_keys)],
        )
        client.set_terminated(run.info.run_id)

    def list_runs():
        runs = client.search_runs([exp], max_results=n_runs + 1)
        assert len(runs) >= n_runs and len(runs[0].data.params) in (0, n_keys)
    out["list_1000"] = median_time(list_runs)
    out["search_filtered"] = median_time(lambda: client.search_runs(
        [exp], "metrics.m0 > 0.5", order_by=["metrics.m1 DESC"], max_results=n_runs))
    print(json.dumps(out))
    """
)


def _mlflow_python(tmp: Path, console: Console) -> str:
    venv = tmp / "mlflow-venv"
    console.print(f"[dim]creating a throwaway venv with MLflow 3.x in {venv} ...[/dim]")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "mlflow>=3,<4"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # pip's warnings are noise unless the install failed
        raise SystemExit(f"installing MLflow failed:\n{done.stderr[-3000:]}")
    return python


def measure_mlflow(python: str, tmp: Path, n_calls: int, n_runs: int) -> dict[str, Any]:
    """MLflow's numbers, from a subprocess script run by ``python``."""
    script = tmp / "mlflow_bench.py"
    script.write_text(MLFLOW_SCRIPT)
    work = tmp / "mlflow-work"
    work.mkdir()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [python, str(script), str(work), str(n_calls), str(n_runs), str(N_KEYS)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
    )
    if done.returncode != 0:
        raise SystemExit(f"the MLflow benchmark script failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- report ------------------------------------------------------------------------------------


def build_rows(ours: dict[str, float], theirs: dict[str, Any] | None) -> list[Row]:
    """The table's rows; MLflow's durable time is its per-call cost times 5,000."""
    t = theirs or {}
    mlflow_durable = t["log_metric_per_call"] * N_METRIC_CALLS if theirs else None
    return [
        Row("log_metric, per call", ours["log_metric_per_call"], 0.05e-3,
            t.get("log_metric_per_call")),
        Row(f"{N_METRIC_CALLS:,} values durable", ours["durable_5000"], 1.0, mlflow_durable,
            "MLflow: per call x 5,000"),
        Row(f"list {N_RUNS:,} runs (10 params + 10 metrics)", ours["list_1000"], 0.2,
            t.get("list_1000")),
        Row("filter + order by metric", ours["search_filtered"], 0.2,
            t.get("search_filtered")),
        Row("create a new store", ours["store_creation"], 0.5, t.get("store_creation")),
    ]  # fmt: skip


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:,.1f} ms"
    return f"{seconds:,.2f} s"


def render(rows: list[Row], mlflow_version: str | None) -> Table:
    """A rich table: both tools, the ratio (MLflow / Shipyard) and the target check."""
    table = Table(title=f"Tracking: Shipyard vs MLflow {mlflow_version or '(skipped)'}, SQLite")
    for column in ("measure", "Shipyard", "MLflow", "MLflow / Shipyard", "target", "ok"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for row in rows:
        ratio = f"{row.mlflow / row.shipyard:,.0f}x" if row.mlflow else "-"
        ok = "[green]yes[/green]" if row.shipyard < row.target else "[red]NO[/red]"
        label = f"{row.label} [dim]({row.note})[/dim]" if row.note else row.label
        table.add_row(
            label, _fmt(row.shipyard), _fmt(row.mlflow), ratio, f"< {_fmt(row.target)}", ok
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 1 when a Shipyard target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-mlflow", action="store_true", help="measure Shipyard only")
    parser.add_argument("--mlflow-calls", type=int, default=500, help="MLflow log_metric calls")
    parser.add_argument("--mlflow-runs", type=int, default=N_RUNS, help="runs MLflow lists")
    parser.add_argument("--mlflow-python", help="a Python with mlflow 3.x (skips the install)")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 110))
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        ours = measure_shipyard(tmp)
        theirs = None
        if not args.skip_mlflow:
            python = args.mlflow_python or _mlflow_python(tmp, console)
            theirs = measure_mlflow(python, tmp, args.mlflow_calls, args.mlflow_runs)
    rows = build_rows(ours, theirs)
    console.print(render(rows, theirs.get("version") if theirs else None))
    missed = [row.label for row in rows if row.shipyard >= row.target]
    if missed:
        console.print(f"[red]Shipyard missed its target on: {', '.join(missed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

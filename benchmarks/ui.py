"""Benchmark: every page of the web UI over a store holding 100,000 runs.

Seeds a fresh store (SQLite by default; ``--postgres`` for the PostgreSQL server at
``SHIPYARD_TEST_PG_URL``, in a database of its own, dropped afterwards) with 100,000 top-level
runs, each with 5 params, 4 latest metrics (one value each) and 2 tags, through bulk
``executemany`` inserts (a benchmark may write the tables to seed them; the UI only reads
through ``shipyard.tracking``). Then adds, through the real APIs, what the other pages show:
a real ``shipyard quickstart`` run (3 candidates cross-validated on Palmer penguins, its
artifacts, curves, log and registered model) and the UI tests' store (``tests/ui_store.py``:
62 more runs, a search with 5 trials, the model ``penguins`` with versions, alias history and
gate decisions, and 6 monitoring checks with incidents). Then times full page renders
through the app (Starlette's TestClient: query, template, HTTP) and prints the median of
several requests per page against the target: the runs page's first view in under 200 ms.

Usage::

    python benchmarks/ui.py                  # SQLite, 100,000 runs
    python benchmarks/ui.py --postgres       # PostgreSQL too
    python benchmarks/ui.py --runs 20000     # a smaller store
    python benchmarks/ui.py --runs-page-only # the runs page alone (no quickstart run)
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from shipyard.store import Store, tables
from shipyard.ui import UiAuth, create_app

ROOT = Path(__file__).resolve().parents[1]

N_RUNS = 100_000
TARGET_MS = 200.0
REPEATS = 7
PG_URL = os.environ.get("SHIPYARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROJECTS = ("churn", "penguins", "diamonds", "hotel_rates", "fraud")
MODELS = ("logistic_regression", "random_forest", "lightgbm", "xgboost")
TEAMS = ("risk", "growth", "research")
CHUNK = 10_000

#: (label, query string) of each timed page.
PAGES = (
    ("first page (newest first)", ""),
    ("sorted by a metric", "?sort=metric.accuracy&dir=desc"),
    ("metric filter", "?q=accuracy+%3E+0.9"),
    (
        "param + tag filter, metric sort",
        "?q=param.model+%3D+lightgbm+and+tag.team+%3D+risk&sort=metric.f1_macro&dir=desc",
    ),
    ("project + status + time range", "?project=churn&status=finished&after=2026-03-01"),
    ("page 1,000 (offset 49,950)", "?offset=49950"),
)


@dataclass(frozen=True)
class Lifecycle:
    """What :func:`fill_lifecycle` recorded: the pages' URLs beyond the runs page."""

    pages: tuple[tuple[str, str], ...]


def fill_lifecycle(store: Store, home: Path) -> tuple[Lifecycle, float]:
    """A real quickstart run under ``home`` and the UI tests' runs, model and monitoring
    checks (``tests/ui_store.py``); returns the pages to time and the seconds it took."""
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT / "tests"))
    from shipyard.pipeline import create_quickstart_project, run_project
    from shipyard.spec import load_spec
    from shipyard.tracking import page_runs
    from ui_store import fill, fill_monitoring  # tests/ui_store.py

    result = run_project(load_spec(create_quickstart_project(home)), store=store)
    filled = fill(store)
    alerts = logging.getLogger("shipyard.pipeline._alerts")
    level = alerts.level
    alerts.setLevel(logging.CRITICAL)  # one check's webhook is down on purpose: not news here
    try:
        monitored = fill_monitoring(store)
    finally:
        alerts.setLevel(level)
    with store.connect() as conn:
        trials = [r.id for r in page_runs(conn, parent_id=result.run_id).runs]
    compared = [result.run_id, *trials, *filled.churn][:5]
    pages = (
        ("a run (the quickstart's)", f"/runs/{result.run_id}"),
        ("compare 5 runs", "/compare?ids=" + ",".join(compared)),
        ("models", "/models"),
        ("a model (penguins)", "/models/penguins"),
        ("monitoring overview", "/monitoring"),
        ("a version's monitoring (6 checks)", "/models/penguins/versions/2/monitoring"),
        ("a check", f"/monitoring/checks/{monitored.checks[-1]}"),
        ("serving (no server: its empty state)", "/serving"),
    )
    return Lifecycle(pages), time.perf_counter() - started


def _run_rows(n: int, seed: int = 0) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Rows for every table, ``CHUNK`` runs at a time."""
    rng = random.Random(seed)
    start = time.time() - 365 * 86400
    for first in range(0, n, CHUNK):
        chunk: dict[str, list[dict[str, Any]]] = {
            "runs": [],
            "params": [],
            "metrics": [],
            "latest_metrics": [],
            "tags": [],
        }
        for i in range(first, min(n, first + CHUNK)):
            run_id = uuid.UUID(int=rng.getrandbits(128)).hex
            began = start + i * (365 * 86400 / n) + rng.random()
            status = rng.choices(("finished", "failed", "killed"), (90, 8, 2))[0]
            chunk["runs"].append(
                {
                    "id": run_id,
                    "project": PROJECTS[i % len(PROJECTS)],
                    "name": f"run-{i:06d}",
                    "status": status,
                    "start_time": began,
                    "end_time": began + rng.uniform(1, 600),
                    "package_versions": {},
                }
            )
            params = {
                "model": rng.choice(MODELS),
                "C": f"{rng.choice((0.01, 0.1, 1.0, 10.0))}",
                "n_estimators": str(rng.choice((100, 300, 1000))),
                "seed": str(i % 10),
                "metric": "f1_macro",
            }
            chunk["params"] += [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()]
            metrics = {
                "accuracy": rng.betavariate(8, 2),
                "f1_macro": rng.betavariate(7, 3),
                "log_loss": rng.uniform(0.05, 1.5),
            }
            if rng.random() < 0.9:  # some runs lack a metric: they sort last
                metrics["roc_auc"] = rng.betavariate(9, 2)
            for key, value in metrics.items():
                row = {"run_id": run_id, "key": key, "value": value, "step": 0}
                chunk["metrics"].append({**row, "timestamp": began + 1})
                chunk["latest_metrics"].append({**row, "timestamp": began + 1})
            tags = {"team": rng.choice(TEAMS), "gate": rng.choice(("promoted", "kept out"))}
            chunk["tags"] += [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
        yield chunk


def seed(store: Store, n: int) -> float:
    """Insert ``n`` runs with params, metrics and tags; returns the seconds it took."""
    started = time.perf_counter()
    for chunk in _run_rows(n):
        with store.begin() as conn:
            for name in ("runs", "params", "metrics", "latest_metrics", "tags"):
                conn.execute(sa.insert(tables.metadata.tables[name]), chunk[name])
    with store.begin() as conn:  # fresh statistics for the planner, as a live store has
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def _median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()  # warm: templates compiled, connections pooled
    times = []
    for _ in range(repeats):
        begun = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begun)
    return statistics.median(times) * 1000


def measure(store: Store, lifecycle: Lifecycle | None = None) -> list[tuple[str, float, int]]:
    """(label, median ms, response bytes) for each page in :data:`PAGES`, then each of
    ``lifecycle``'s pages."""
    from starlette.testclient import TestClient

    app = create_app(store, auth=UiAuth())
    pages = [(f"runs: {label}", f"/runs{query}") for label, query in PAGES]
    pages += list(lifecycle.pages if lifecycle is not None else ())
    out = []
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for label, url in pages:
            response = client.get(url)
            assert response.status_code == 200, (label, response.status_code)
            if url.startswith("/runs?") or url == "/runs":
                assert 'class="count"' in response.text, label

            def fetch(url: str = url) -> object:
                return client.get(url)

            out.append((label, _median_ms(fetch), len(response.content)))
    return out


@contextmanager
def _pg_store() -> Iterator[tuple[Store, Path]]:
    name = f"shipyard_ui_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = PG_URL.rsplit("/", 1)[0]
            with Store.open(f"{base}/{name}", root=Path(tmp) / ".shipyard") as store:
                yield store, Path(tmp)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _sqlite_store() -> Iterator[tuple[Store, Path]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Store.open(root=Path(tmp) / ".shipyard") as store,
    ):
        yield store, Path(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=N_RUNS, help="runs to seed")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    parser.add_argument(
        "--runs-page-only",
        action="store_true",
        help="time the runs page alone (no quickstart run, model or checks)",
    )
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 100))
    backends = [("SQLite", _sqlite_store)] + ([("PostgreSQL", _pg_store)] if args.postgres else [])
    table = Table(title=f"Web UI pages over {args.runs:,} runs (median of {REPEATS} requests)")
    for column in ("store", "page", "median", "target", "HTML"):
        table.add_column(column, justify="left" if column in ("store", "page") else "right")
    missed = False
    for backend, opener in backends:
        with opener() as (store, home):
            seconds = seed(store, args.runs)
            console.print(f"{backend}: seeded {args.runs:,} runs in {seconds:.1f} s")
            lifecycle = None
            if not args.runs_page_only:
                lifecycle, seconds = fill_lifecycle(store, home)
                console.print(
                    f"{backend}: a quickstart run, a model and its checks in {seconds:.1f} s"
                )
            for label, ms, size in measure(store, lifecycle):
                first = label.startswith("runs: first")
                ok = ms < TARGET_MS
                missed |= first and not ok
                target = f"< {TARGET_MS:.0f} ms" if first else "-"
                colour = "green" if ok else "red" if first else "yellow"
                shown = f"[{colour}]{ms:.1f} ms[/]"
                table.add_row(backend, label, shown, target, f"{size / 1024:.0f} KiB")
    console.print(table)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

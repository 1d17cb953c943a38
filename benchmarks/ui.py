"""Benchmark: the web UI's runs page over a store holding 100,000 runs.

Seeds a fresh store (SQLite by default; ``--postgres`` for the PostgreSQL server at
``SHIPYARD_TEST_PG_URL``, in a database of its own, dropped afterwards) with 100,000 top-level
runs, each with 5 params, 4 latest metrics (one value each) and 2 tags, through bulk
``executemany`` inserts (a benchmark may write the tables to seed them; the UI only reads
through ``shipyard.tracking``). Then times full page renders through the app (Starlette's
TestClient: query, template, HTTP) and prints the median of several requests per page
against the target: the first page in under 200 ms.

Usage::

    python benchmarks/ui.py                  # SQLite, 100,000 runs
    python benchmarks/ui.py --postgres       # PostgreSQL too
    python benchmarks/ui.py --runs 20000     # a smaller store
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from shipyard.store import Store, tables
from shipyard.ui import UiAuth, create_app

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


def measure(store: Store) -> list[tuple[str, float, int]]:
    """(label, median ms, response bytes) for each page in :data:`PAGES`."""
    from starlette.testclient import TestClient

    app = create_app(store, auth=UiAuth())
    out = []
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for label, query in PAGES:
            response = client.get(f"/runs{query}")
            assert response.status_code == 200 and 'class="count"' in response.text, label

            def fetch(url: str = f"/runs{query}") -> object:
                return client.get(url)

            out.append((label, _median_ms(fetch), len(response.content)))
    return out


@contextmanager
def _pg_store() -> Iterator[Store]:
    name = f"shipyard_ui_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = PG_URL.rsplit("/", 1)[0]
            with Store.open(f"{base}/{name}", root=tmp) as store:
                yield store
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(root=Path(tmp)) as store:
        yield store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=N_RUNS, help="runs to seed")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    args = parser.parse_args(argv)
    console = Console()
    backends = [("SQLite", _sqlite_store)] + ([("PostgreSQL", _pg_store)] if args.postgres else [])
    table = Table(title=f"Runs page over {args.runs:,} runs (median of {REPEATS} requests)")
    for column in ("store", "page", "median", "target", "HTML"):
        table.add_column(column, justify="left" if column in ("store", "page") else "right")
    missed = False
    for backend, opener in backends:
        with opener() as store:
            seconds = seed(store, args.runs)
            console.print(f"{backend}: seeded {args.runs:,} runs in {seconds:.1f} s")
            for label, ms, size in measure(store):
                first = label.startswith("first")
                ok = ms < TARGET_MS
                missed |= first and not ok
                target = f"< {TARGET_MS:.0f} ms" if first else "-"
                shown = f"[{'green' if ok else 'red'}]{ms:.1f} ms[/]"
                table.add_row(backend, label, shown, target, f"{size / 1024:.0f} KiB")
    console.print(table)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

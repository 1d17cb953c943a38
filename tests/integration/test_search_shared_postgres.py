"""A search shared by two processes through the real PostgreSQL store: ``shipyard run --study``
leads, ``shipyard worker --study`` joins; both run trials of one budget, the lead ranks them all."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from palmerpenguins import load_penguins

from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.tracking import Tracker

pytestmark = pytest.mark.postgres

TRIALS = 12

PROJECT = f"""\
name: penguins
data: {{source: {{type: csv, path: data/penguins.csv}}, target: species}}
split: {{cv_folds: 3}}
search:
  trials: {TRIALS}
  families: [logistic_regression, random_forest, extra_trees]
  spaces:
    random_forest: {{n_estimators: {{low: 10, high: 40, integer: true}}}}
    extra_trees: {{n_estimators: {{low: 10, high: 40, integer: true}}}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    load_penguins().to_csv(tmp_path / "data" / "penguins.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(PROJECT)
    return tmp_path


def _shipyard(project: Path, pg_url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SHIPYARD_STORE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "shipyard", "--store", pg_url, *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_processes_share_one_search(project: Path, pg_url: str) -> None:
    study = f"s-{uuid.uuid4().hex[:8]}"
    Store.open(
        pg_url, artifact_root=str(project / ".shipyard" / "artifacts")
    ).close()  # migrate once
    worker = _shipyard(project, pg_url, "worker", "--study", study, "--name", "w1", "--wait", "120")
    time.sleep(1.0)  # the worker is waiting for its lead
    lead = _shipyard(project, pg_url, "run", "--study", study)
    lead_out, _ = lead.communicate(timeout=600)
    worker_out, _ = worker.communicate(timeout=600)
    assert lead.returncode == 0, lead_out
    assert worker.returncode == 0, worker_out
    assert "Worker done:" in worker_out and "Traceback" not in worker_out

    # every trial is in the shared studies, in their own schema, from both processes
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.trial_id, t.state, a.value_json FROM shipyard_optuna.trials t "
                "JOIN shipyard_optuna.studies s ON s.study_id = t.study_id "
                "JOIN shipyard_optuna.trial_user_attributes a ON a.trial_id = t.trial_id "
                "AND a.key = 'worker' WHERE s.study_name LIKE :prefix"
            ),
            {"prefix": f"{study}/%"},
        ).all()
        tables = set(sa.inspect(conn).get_table_names())  # the store's own schema
    engine.dispose()
    workers = {r.value_json.strip('"') for r in rows}
    assert workers == {"lead", "w1"}, workers
    assert TRIALS <= len(rows) <= TRIALS + 1  # two processes may both start the last one
    assert "trials" not in tables and "alembic_version" in tables  # Optuna's are apart

    store = Store.open(pg_url, artifact_root=str(project / ".shipyard" / "artifacts"))
    try:
        with Tracker(store) as tracker:
            lead_run = next(
                r for r in tracker.search_runs(project="penguins") if r.parent_id is None
            )
            children = [
                r for r in tracker.search_runs(project="penguins") if r.parent_id == lead_run.id
            ]
        worker_trials = [c for c in children if "#w1." in c.name]
        lead_trials = [c for c in children if "#" in c.name and "#w1." not in c.name]
        assert worker_trials and lead_trials
        complete = [
            c for c in worker_trials + lead_trials if c.tags.get("trial_state") == "complete"
        ]
        key = f"cv.{lead_run.params['metric']}"  # the run's metric (f1_macro here) ranks them
        best = max(complete, key=lambda c: c.metrics[key])
        assert Registry(store).list_versions("penguins")  # the lead registered the winner
        ranked = {c.name: c.metrics[key] for c in complete}
        chosen = lead_run.tags["best_candidate"]
        if chosen != "ensemble":  # the winner is the best of both processes' trials
            assert ranked[chosen] == pytest.approx(best.metrics[key])
    finally:
        store.close()
    assert "from other workers" in lead_out

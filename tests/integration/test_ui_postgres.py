"""The web UI's runs query and pages on a real PostgreSQL store: the same runs as on SQLite,
the indexes in place (a hash index for long param values), and the pages rendering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from shipyard.store import Store
from shipyard.tracking import Tracker, page_runs
from shipyard.ui import UiAuth, create_app
from ui_store import N_CHURN, Filled, fill

pytestmark = pytest.mark.postgres

N_TOP = N_CHURN + 3


@pytest.fixture(scope="module")
def filled(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, Filled]]:
    import uuid

    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{pg_server_url.rsplit('/', 1)[0]}/{name}"
    try:
        root = tmp_path_factory.mktemp("ui-pg")
        with Store.open(url, root=root, artifact_root=str(root / "artifacts")) as store:
            yield store, fill(store)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_pages_filters_and_sorts_match_sqlites(filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    with store.connect() as conn:
        first = page_runs(conn)
        assert first.total == N_TOP and [r.name for r in first.runs[:3]] == [
            "search",
            "stopped",
            "broken",
        ]
        both = page_runs(conn, params={"model": "lightgbm"}, tags={"team": "risk"}, limit=100)
        assert both.total == 10
        good = page_runs(conn, metrics=[("accuracy", ">", 0.7)], order_by="metric.accuracy DESC")
        assert good.total == 19 and good.runs[0].name == "churn-059"
        ordered = [r.id for r in page_runs(conn, order_by="metric.loss DESC", limit=100).runs]
        paged = [
            r.id
            for offset in range(0, N_TOP, 4)
            for r in page_runs(conn, order_by="metric.loss DESC", offset=offset, limit=4).runs
        ]
        assert paged == ordered and len(set(paged)) == N_TOP
        durations = [r.duration for r in page_runs(conn, order_by="duration DESC").runs]
        assert durations == sorted(durations, reverse=True)
        assert page_runs(conn, parent_id=runs.search).total == 5


def test_the_value_indexes_exist_and_take_long_values(filled: tuple[Store, Filled]) -> None:
    store, _ = filled
    with store.connect() as conn:
        indexes = dict(
            conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
            ).all()
        )
    assert "USING hash" in indexes["ix_params_value"] and "USING hash" in indexes["ix_tags_value"]
    assert "ix_latest_metrics_key_value" in indexes and "ix_runs_id_parent_id" in indexes
    assert "ix_params_key_value_run_id" not in indexes  # SQLite's
    long_value = "x" * 10_000  # past a B-tree entry's limit
    with Tracker(store) as tracker, tracker.start_run("long", project="pg-long") as run:
        run.log_params({"features": long_value})
        run.set_tags({"note": long_value})
    with store.connect() as conn:
        found = page_runs(conn, params={"features": long_value}, tags={"note": long_value})
    assert [r.name for r in found.runs] == ["long"]


def test_the_pages_render_on_postgres(filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    with TestClient(create_app(store, auth=UiAuth())) as client:
        page = client.get("/runs", params={"q": "accuracy > 0.7", "sort": "metric.accuracy"})
        assert page.status_code == 200 and "of 19</p>" in page.text
        assert client.get(f"/runs/{runs.search}").status_code == 200
        assert client.get(f"/compare?ids={runs.churn[0]},{runs.churn[10]}").status_code == 200
        assert client.get("/models/penguins").status_code == 200

"""The monitoring pages and the registry's reads behind them on a real PostgreSQL store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from shipyard.registry import MonitorHistory
from shipyard.store import Store
from shipyard.ui import UiAuth, create_app
from ui_store import Monitored, fill, fill_monitoring

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def filled(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, Monitored]]:
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{pg_server_url.rsplit('/', 1)[0]}/{name}"
    try:
        root = tmp_path_factory.mktemp("ui-mon-pg")
        with Store.open(url, root=root, artifact_root=str(root / "artifacts")) as store:
            fill(store)
            yield store, fill_monitoring(store)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_reads_and_pages_match_sqlites(filled: tuple[Store, Monitored]) -> None:
    store, monitored = filled
    history = MonitorHistory(store)
    [version] = history.monitored()
    assert (version.model_version, version.n_checks, version.n_drifted) == (2, 6, 3)
    series = history.detailed_series("penguins", 2)
    assert [c.id for c in series] == monitored.checks
    assert all(c.results == history.get(c.id).results for c in series)
    with TestClient(create_app(store, auth=UiAuth()), base_url="http://127.0.0.1") as client:
        page = client.get("/models/penguins/monitoring")
        assert page.status_code == 200 and page.url.path.endswith("/versions/2/monitoring")
        assert page.text.count('<td class="hm ') == 6 * 5  # 3 inputs and 2 outputs
        assert "6 checks, 3 drifted" in client.get("/monitoring").text
        check = client.get(f"/monitoring/checks/{monitored.checks[2]}")
        assert check.status_code == 200 and ">resolved<" in check.text

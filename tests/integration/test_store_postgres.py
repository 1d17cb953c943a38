"""The store and the registry catalog on a real PostgreSQL server (a fresh database per test)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from shipyard.errors import ArtifactIntegrityError, ModelNotFoundError
from shipyard.registry._catalog import ModelCatalog, VersionRecord
from shipyard.store import HEAD_REVISION, Store, _db, tables, upsert_latest_metrics
from store_checks import check_upgraded, fill_revision_0001, schema_diff

needs_fork = pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="uses the fork start method"
)

pytestmark = pytest.mark.postgres


def _register(catalog: ModelCatalog, name: str = "iris", **overrides: Any) -> VersionRecord:
    fields: dict[str, Any] = {
        "run_id": None,
        "task": "regression",
        "metrics": {"rmse": 1.5, "per_fold": [1.0, 2.0]},
        "signature": {"inputs": [{"name": "x", "dtype": "float64"}]},
        "lineage": {"dataset": "abc", "nested": {"k": None}},
        "created_by": "ci",
    }
    fields.update(overrides)
    return catalog.create_version(name, **fields)


def _in_processes(target: Callable[..., None], n_procs: int, *args: Any) -> list[Any]:
    """Run ``target(*args, barrier, queue)`` in ``n_procs`` processes; their queued results."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n_procs)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, out)) for _ in range(n_procs)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    return results


def test_migrations_create_exactly_the_metadata_tables(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        command.upgrade(_db.alembic_config(conn), "head")
    assert schema_diff(engine) == []
    with engine.begin() as conn:
        command.downgrade(_db.alembic_config(conn), "base")
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
    engine.dispose()


def test_open_creates_then_reuses_the_schema(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url, root=tmp_path) as store:
        assert store.dialect == "postgresql"
        assert schema_diff(store.engine) == []
        with store.connect() as conn:
            assert _db.current_revision(conn) == HEAD_REVISION
    with Store.open(pg_url, root=tmp_path) as store:
        assert schema_diff(store.engine) == []


def _open(url: str, root: str, barrier: Any, out: Any) -> None:
    try:
        barrier.wait(30)
        Store.open(url, root=root).close()
        out.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(repr(exc))


@needs_fork
def test_concurrent_first_open_is_serialised(pg_url: str, tmp_path: Path) -> None:
    assert _in_processes(_open, 3, pg_url, str(tmp_path)) == ["ok"] * 3
    with Store.open(pg_url, root=tmp_path) as store:
        assert schema_diff(store.engine) == []


def test_upsert_latest_metrics(pg_url: str, tmp_path: Path) -> None:
    def row(value: float, step: int) -> dict[str, object]:
        return {"run_id": "r1", "key": "loss", "value": value, "step": step, "timestamp": 0.0}

    with Store.open(pg_url, root=tmp_path) as store:
        with store.begin() as conn:
            conn.execute(
                sa.insert(tables.runs).values(id="r1", name="n", status="running", start_time=0.0)
            )
            upsert_latest_metrics(conn, [row(0.9, 0), row(0.5, 2), row(0.7, 1)])
        with store.begin() as conn:
            upsert_latest_metrics(conn, [row(0.8, 1)])
        with store.connect() as conn:
            latest = conn.execute(sa.select(tables.latest_metrics)).one()
        assert (latest.value, latest.step) == (0.5, 2)


def test_artifacts_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url, root=tmp_path) as store:
        store.artifacts.put("m/1/a.bin", b"one")
        sha = store.artifacts.put("m/1/a.bin", b"two")
        assert store.artifacts.get("m/1/a.bin") == b"two"
        assert [r.sha256 for r in store.artifacts.list("m")] == [sha]
        (tmp_path / "artifacts" / "m/1/a.bin").write_bytes(b"three")
        with pytest.raises(ArtifactIntegrityError):
            store.artifacts.get("m/1/a.bin")


def test_catalog_round_trip_and_aliases(pg_url: str, tmp_path: Path) -> None:
    with Store.open(pg_url, root=tmp_path) as store:
        catalog = ModelCatalog(store)
        first = _register(catalog)
        _register(catalog)
        assert catalog.get_version("iris", 1) == first
        catalog.set_alias("iris", "production", 1, moved_by="ci")
        move = catalog.set_alias("iris", "production", 2, moved_by="ci", reason="better")
        assert (move.previous_version, move.version) == (1, 2)
        assert catalog.resolve_alias("iris", "production").aliases == ("production",)
        catalog.delete_alias("iris", "production", moved_by="ci")
        with pytest.raises(ModelNotFoundError, match="its aliases: none"):
            catalog.resolve_alias("iris", "production")
        history = catalog.alias_history("iris")
        assert [(m.version, m.previous_version) for m in history] == [(1, None), (2, 1), (None, 2)]
        assert [(m.name, m.latest_version) for m in catalog.list_models()] == [("iris", 2)]


def _register_many(url: str, root: str, n: int, barrier: Any, out: Any) -> None:
    try:
        with Store.open(url, root=root) as store:
            catalog = ModelCatalog(store)
            barrier.wait(30)
            out.put([_register(catalog, "race").version for _ in range(n)])
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(repr(exc))


@needs_fork
def test_concurrent_registrations_get_distinct_versions(pg_url: str, tmp_path: Path) -> None:
    # The model does not exist yet: the processes also race to create it.
    Store.open(pg_url, root=tmp_path).close()
    results = _in_processes(_register_many, 4, pg_url, str(tmp_path), 5)
    assert [r for r in results if not isinstance(r, list)] == []
    assert sorted(v for r in results for v in r) == list(range(1, 21))
    with Store.open(pg_url, root=tmp_path) as store:
        listed = [v.version for v in ModelCatalog(store).list_versions("race")]
    assert listed == list(range(1, 21))


# --- upgrading a store made by an older Shipyard (as in tests/unit/test_store.py) -----------


def test_a_revision_0001_store_is_upgraded_in_place_and_keeps_its_runs(
    pg_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        fill_revision_0001(conn)
    engine.dispose()
    with Store.open(pg_url, root=tmp_path) as store:
        check_upgraded(store)
    with Store.open(pg_url, root=tmp_path) as store:
        check_upgraded(store)
        with store.engine.begin() as conn:
            command.downgrade(_db.alembic_config(conn), "0001")
        with store.connect() as conn:
            assert _db.current_revision(conn) == "0001"
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 2
            assert conn.execute(sa.text("SELECT count(*) FROM params")).scalar() == 1


def test_the_database_clock_is_epoch_seconds(pg_url: str, tmp_path: Path) -> None:
    import time

    with Store.open(pg_url, root=tmp_path) as store, store.connect() as conn:
        now = conn.execute(sa.select(tables.db_epoch(store.dialect))).scalar_one()
    assert isinstance(now, float)
    assert abs(now - time.time()) < 3600

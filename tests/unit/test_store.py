"""The metadata store: opening, migrations, SQLite settings, transactions, upserts."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from shipyard.errors import StoreError
from shipyard.store import (
    HEAD_REVISION,
    Store,
    _db,
    default_store_url,
    metadata,
    redact_url,
    store_location,
    tables,
    upsert_latest_metrics,
)
from store_checks import check_upgraded, fill_revision_0001, schema_diff

needs_fork = pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="uses the fork start method"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


def _add_run(conn: sa.Connection, run_id: str = "r1") -> None:
    conn.execute(
        sa.insert(tables.runs).values(
            id=run_id, name="run", status="running", start_time=time.time()
        )
    )


# --- opening ---------------------------------------------------------------------------


def test_open_default_creates_root_database_and_schema(tmp_path: Path) -> None:
    root = tmp_path / "nested" / ".shipyard"
    with Store.open(root=root) as store:
        assert (root / "shipyard.db").is_file()
        assert store.url == default_store_url(root)
        assert store.dialect == "sqlite"
        assert store.artifacts.root == str(root / "artifacts")
        with store.connect() as conn:
            assert _db.current_revision(conn) == HEAD_REVISION
            assert set(metadata.tables) <= set(sa.inspect(conn).get_table_names())


def test_reopening_an_up_to_date_store_skips_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store.open(root=tmp_path).close()

    def fail(*_args: object) -> None:
        raise AssertionError("alembic must not run on an up-to-date store")

    monkeypatch.setattr(_db, "_upgrade", fail)
    monkeypatch.setattr(_db, "_create_schema", fail)
    with Store.open(root=tmp_path) as store, store.connect() as conn:
        assert _db.current_revision(conn) == HEAD_REVISION


def test_explicit_url_and_artifact_root(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    with Store.open(url, root=tmp_path / "unused", artifact_root=str(tmp_path / "a")) as store:
        assert store.url == url
        assert store.artifacts.root == str(tmp_path / "a")
    assert (tmp_path / "meta.db").is_file()
    assert not (tmp_path / "unused").exists()


def test_in_memory_sqlite_store(tmp_path: Path) -> None:
    with Store.open("sqlite://", root=tmp_path) as store:
        with store.begin() as conn:
            _add_run(conn)
        with store.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tables.runs)).scalar() == 1


def test_head_revision_matches_the_shipped_migrations() -> None:
    script = ScriptDirectory.from_config(_db.alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


def test_migrations_create_exactly_the_metadata_tables(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with engine.begin() as conn:
        command.upgrade(_db.alembic_config(conn), "head")
    assert schema_diff(engine) == []
    with engine.connect() as conn:
        assert _db.current_revision(conn) == HEAD_REVISION
    engine.dispose()
    # A store opened on the migrated database takes it as up to date.
    with Store.open(f"sqlite:///{tmp_path / 'migrated.db'}", root=tmp_path) as store:
        assert schema_diff(store.engine) == []


def test_fast_create_path_matches_the_migrations(store: Store) -> None:
    assert schema_diff(store.engine) == []


def test_migrations_downgrade_to_empty(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        command.upgrade(_db.alembic_config(conn), "head")
        command.downgrade(_db.alembic_config(conn), "base")
        assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_unknown_revision_is_refused(tmp_path: Path) -> None:
    Store.open(root=tmp_path).close()
    raw = sqlite3.connect(tmp_path / "shipyard.db")
    raw.execute("UPDATE alembic_version SET version_num = '9999'")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"revision '9999'.*does not know; upgrade Shipyard"):
        Store.open(root=tmp_path)


def test_shipyard_tables_without_a_revision_are_refused(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "shipyard.db")
    raw.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=r"Shipyard tables \(runs\) but no alembic_version"):
        Store.open(root=tmp_path)


def test_unrelated_tables_do_not_block_creation(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "shipyard.db")
    raw.execute("CREATE TABLE other_app (id INTEGER PRIMARY KEY)")
    raw.commit()
    raw.close()
    with Store.open(root=tmp_path) as store:
        diff = schema_diff(store.engine)
    assert [(op[0], op[1].name) for op in diff] == [("remove_table", "other_app")]


def _open_new_store(root: str, queue: mp.Queue[str]) -> None:
    try:
        Store.open(root=root).close()
        queue.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(repr(exc))


@needs_fork
def test_concurrent_first_open_creates_the_schema_once(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    queue: mp.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_open_new_store, args=(str(tmp_path), queue)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert sorted(queue.get(timeout=5) for _ in procs) == ["ok"] * 3
    with Store.open(root=tmp_path) as store:
        assert schema_diff(store.engine) == []


# --- errors and URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://me:s3cret@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
        ("sqlite:///a/b.db", "sqlite:///a/b.db"),
        ("postgresql://me@db/x", "postgresql://me@db/x"),
        ("::not a url me:s3cret@host", "::not a url me:s3cret@host"),
        ("postgresql://me:s3cret@h:notaport/db", "postgresql://me:***@h:notaport/db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y", "mysql://u:pw@h/db"])
def test_bad_urls_raise_store_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot use the metadata store URL") as info:
        Store.open(url, root=tmp_path)
    assert "pw@" not in str(info.value)
    assert info.value.__cause__ is not None


def test_unreachable_database_names_the_redacted_url(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://me:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StoreError, match=r"cannot connect.*me:\*\*\*@127\.0\.0\.1:1") as info:
        Store.open(url, root=tmp_path)
    assert "s3cret" not in str(info.value)
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)


def test_unwritable_sqlite_location_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot connect to the metadata store"):
        Store.open(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", root=tmp_path)


# --- SQLite settings and transactions --------------------------------------------------


def _pragmas(conn: sa.Connection) -> tuple[object, ...]:
    names = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    return tuple(conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names)


def test_sqlite_pragmas_on_every_connection(store: Store) -> None:
    with store.connect() as read, store.begin() as write:
        assert _pragmas(read) == ("wal", 1, 1, 30000)
        assert _pragmas(write) == ("wal", 1, 1, 30000)


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(sa.insert(tables.params).values(run_id="nope", key="k", value="v"))


def test_deleting_a_run_cascades_to_its_params(store: Store) -> None:
    with store.begin() as conn:
        _add_run(conn)
        conn.execute(sa.insert(tables.params).values(run_id="r1", key="k", value="v"))
    with store.begin() as conn:
        conn.execute(sa.delete(tables.runs))
    with store.connect() as conn:
        assert conn.execute(sa.select(tables.params)).all() == []


def _try_write_now(db_file: Path) -> str:
    """Attempt a write from an unrelated connection without waiting for locks."""
    raw = sqlite3.connect(db_file, timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
        return "free"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        raw.close()


def test_begin_takes_the_write_lock_up_front(store: Store, tmp_path: Path) -> None:
    db_file = tmp_path / "sy" / "shipyard.db"
    with store.connect() as conn:
        conn.execute(sa.select(tables.runs)).all()
        assert _try_write_now(db_file) == "free"  # reading does not block writers
    with store.begin() as conn:
        conn.execute(sa.select(tables.runs)).all()  # no write yet, lock already held
        assert _try_write_now(db_file) == "database is locked"
    assert _try_write_now(db_file) == "free"


def test_begin_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.begin() as conn:
        _add_run(conn)
        raise RuntimeError("boom")
    with store.connect() as conn:
        assert conn.execute(sa.select(tables.runs)).all() == []


def test_savepoints_work_inside_begin(store: Store) -> None:
    with store.begin() as conn:
        _add_run(conn, "a")
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            _add_run(conn, "a")
        _add_run(conn, "b")
    with store.connect() as conn:
        assert sorted(conn.execute(sa.select(tables.runs.c.id)).scalars()) == ["a", "b"]


# --- latest_metrics upsert -------------------------------------------------------------


def _latest(store: Store) -> dict[str, tuple[float, int]]:
    with store.connect() as conn:
        rows = conn.execute(sa.select(tables.latest_metrics)).all()
    return {row.key: (row.value, row.step) for row in rows}


def test_upsert_latest_metrics_keeps_the_highest_step(store: Store) -> None:
    def row(key: str, value: float, step: int) -> dict[str, object]:
        return {"run_id": "r1", "key": key, "value": value, "step": step, "timestamp": 1.0}

    with store.begin() as conn:
        _add_run(conn)
        upsert_latest_metrics(conn, [row("loss", 0.9, 0), row("loss", 0.5, 2), row("acc", 0.1, 1)])
    assert _latest(store) == {"loss": (0.5, 2), "acc": (0.1, 1)}
    with store.begin() as conn:
        # An older step never wins; the same step logged again does.
        upsert_latest_metrics(conn, [row("loss", 0.7, 1), row("acc", 0.2, 1)])
        upsert_latest_metrics(conn, [])
    assert _latest(store) == {"loss": (0.5, 2), "acc": (0.2, 1)}
    with store.begin() as conn:
        upsert_latest_metrics(conn, [row("loss", 0.4, 3), row("loss", 0.3, 3)])
    assert _latest(store)["loss"] == (0.3, 3)


# --- locating the store -------------------------------------------------------------------


def test_store_location_arguments_beat_the_environment_beat_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SHIPYARD_STORE_URL", "SHIPYARD_HOME", "SHIPYARD_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    assert store_location() == (None, Path(".shipyard"), None)
    monkeypatch.setenv("SHIPYARD_STORE_URL", "sqlite:///env.db")
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", "memory://env")
    assert store_location() == ("sqlite:///env.db", tmp_path / "home", "memory://env")
    assert store_location("sqlite://", tmp_path / "arg", "memory://arg") == (
        "sqlite://",
        tmp_path / "arg",
        "memory://arg",
    )
    for name in ("SHIPYARD_STORE_URL", "SHIPYARD_HOME", "SHIPYARD_ARTIFACT_ROOT"):
        monkeypatch.setenv(name, "")  # empty is unset
    assert store_location() == (None, Path(".shipyard"), None)


def test_from_env_opens_under_shipyard_home_with_the_artifact_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIPYARD_STORE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", str(tmp_path / "art"))
    monkeypatch.chdir(tmp_path)
    with Store.from_env() as store:
        assert store.url == default_store_url(tmp_path / "home")
        assert store.artifacts.root == str(tmp_path / "art")
    assert not (tmp_path / ".shipyard").exists()


# --- upgrading a store made by an older Shipyard -------------------------------------------


def _check_downgrade_keeps_the_runs(store: Store) -> None:
    """Down to 0001 through the store's own engine (foreign keys on): no cascade deletes."""
    with store.engine.begin() as conn:
        command.downgrade(_db.alembic_config(conn), "0001")
    with store.connect() as conn:
        assert _db.current_revision(conn) == "0001"
        assert "heartbeat_at" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM params")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM metrics")).scalar() == 1


def test_a_revision_0001_store_is_upgraded_in_place_and_keeps_its_runs(tmp_path: Path) -> None:
    engine = sa.create_engine(default_store_url(tmp_path))
    with engine.begin() as conn:
        fill_revision_0001(conn)
    engine.dispose()
    with Store.open(root=tmp_path) as store:
        check_upgraded(store)
    with Store.open(root=tmp_path) as store:  # reopening finds it up to date
        check_upgraded(store)
        _check_downgrade_keeps_the_runs(store)


def test_the_database_clock_is_epoch_seconds(store: Store) -> None:
    with store.connect() as conn:
        now = conn.execute(sa.select(tables.db_epoch(store.dialect))).scalar_one()
    assert isinstance(now, float)
    assert abs(now - time.time()) < 60


def test_run_statuses_include_crashed() -> None:
    assert tables.RUN_STATUSES == ("running", "finished", "failed", "killed", "crashed")

"""Helpers the store tests share (SQLite and PostgreSQL): schema checks and an old store."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shipyard.store import HEAD_REVISION, Store, _db, metadata, tables


def schema_diff(engine: sa.Engine) -> list[object]:
    """What differs between the database and the tables (indexes of another dialect aside)."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diff if not _other_dialects(d, engine.dialect.name)]


def _other_dialects(diff: object, dialect: str) -> bool:
    """Whether ``diff`` adds an index that only another dialect's store has."""
    if not (isinstance(diff, tuple) and diff and diff[0] == "add_index"):
        return False
    wanted = tables.DIALECT_INDEXES.get(diff[1].name)
    return wanted is not None and wanted != dialect


def fill_revision_0001(conn: sa.Connection) -> None:
    """Migrate an empty database to revision 0001 and record a run the way 0001 stored it."""
    command.upgrade(_db.alembic_config(conn), "0001")
    conn.execute(
        sa.text(
            "INSERT INTO runs (id, name, status, start_time, end_time) VALUES "
            "('old1', 'before', 'finished', 1.0, 2.0), ('old2', 'left', 'running', 3.0, NULL)"
        )
    )
    conn.execute(sa.text("INSERT INTO params (run_id, key, value) VALUES ('old1', 'C', '1.0')"))
    conn.execute(
        sa.text(
            "INSERT INTO metrics (run_id, key, value, step, timestamp) "
            "VALUES ('old1', 'acc', 0.9, 0, 1.5)"
        )
    )


def check_upgraded(store: Store) -> None:
    """The store is at HEAD_REVISION with the current schema and still holds the old runs."""
    assert schema_diff(store.engine) == []
    runs = tables.runs
    with store.connect() as conn:
        assert _db.current_revision(conn) == HEAD_REVISION
        rows = conn.execute(
            sa.select(runs.c.id, runs.c.status, runs.c.pid, runs.c.heartbeat_at).order_by(runs.c.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("old1", "finished", None, None),
            ("old2", "running", None, None),
        ]
        assert conn.execute(sa.select(tables.params.c.value)).scalars().all() == ["1.0"]
        assert conn.execute(sa.select(tables.metrics.c.value)).scalars().all() == [0.9]

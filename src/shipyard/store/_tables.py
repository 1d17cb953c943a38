"""The metadata store's tables, as SQLAlchemy Core ``Table`` objects on one ``MetaData``.

These definitions are the schema's *current* shape; the database only ever changes through the
Alembic migrations in ``shipyard/store/migrations`` (a test checks that migrating an empty
database yields exactly these tables). Times are float epoch seconds; free-form structures
(params of a package, metrics, signatures, lineage) are ``JSON``.

Tables: ``runs`` (with ``params``, ``tags``, ``metrics``, ``latest_metrics``), ``datasets``,
``artifacts``, ``registered_models``, ``model_versions``, ``aliases``, ``alias_history``,
``monitor_checks`` (one row per monitoring check of a model version: a time series) and
``monitor_results`` (each check's per-column statistics), ``monitor_performance`` (each
check's estimated and realised metrics), ``monitor_incidents`` (alert rules that fired, from
opening to resolution), ``labels`` (true values that arrived after the
predictions, by prediction id or by a key column) and ``audit_log`` (who did what to personal
data or models, and when: ``forget`` so far).
The helpers at the end build the SQLite/PostgreSQL upserts the store's writers share and read the
database's clock (heartbeats).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.errors import StoreError

__all__ = [
    "DIALECT_INDEXES",
    "RUN_STATUSES",
    "alias_history",
    "aliases",
    "artifacts",
    "audit_log",
    "datasets",
    "db_epoch",
    "dialect_insert",
    "labels",
    "latest_metrics",
    "metadata",
    "metrics",
    "model_versions",
    "monitor_checks",
    "monitor_incidents",
    "monitor_performance",
    "monitor_results",
    "params",
    "registered_models",
    "runs",
    "tags",
    "upsert_latest_metrics",
]

#: ``crashed``: the run's process died without ending it (``kill -9``, a power cut, an OOM
#: kill); the tracking layer detects it from the owner columns and the heartbeat below.
RUN_STATUSES = ("running", "finished", "failed", "killed", "crashed")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _run_fk(*, nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column[str]:
    """A ``run_id`` column referencing ``runs.id`` (children vanish with their run)."""
    return sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete=ondelete), nullable=nullable
    )


def _value_indexes(table: str) -> tuple[sa.Index, sa.Index]:
    """The indexes that find a param's or tag's runs by value, one per dialect.

    SQLite: a B-tree on ``(key, value, run_id)``, so a filter's matches are found and joined
    from the index alone. PostgreSQL: a hash index on ``value``, as its B-tree entries are
    limited to ~2.7 kB and a value may be longer.
    """
    return (
        sa.Index(f"ix_{table}_key_value_run_id", "key", "value", "run_id").ddl_if(dialect="sqlite"),
        sa.Index(f"ix_{table}_value", "value", postgresql_using="hash").ddl_if(
            dialect="postgresql"
        ),
    )


#: Indexes that exist on one dialect only, by name and dialect (checks of the schema skip
#: them on the others).
DIALECT_INDEXES = {
    f"ix_{table}_{suffix}": dialect
    for table in ("params", "tags")
    for suffix, dialect in (("key_value_run_id", "sqlite"), ("value", "postgresql"))
}


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String, nullable=True, index=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column(
        "parent_id",
        sa.String(32),
        sa.ForeignKey("runs.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("start_time", sa.Float, nullable=False, index=True),
    sa.Column("end_time", sa.Float, nullable=True),
    sa.Column("spec_hash", sa.String, nullable=True),
    sa.Column("dataset_fingerprint", sa.String, nullable=True, index=True),
    sa.Column("git_commit", sa.String, nullable=True),
    sa.Column("package_versions", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # The process that owns a running run (revision 0002): its host name, its pid, the pid
    # namespace that pid belongs to (boot and namespace ids), and its start time, so a
    # recycled pid is not mistaken for the owner. NULL for runs recorded before 0002.
    sa.Column("host", sa.String, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("pid_space", sa.String, nullable=True),
    sa.Column("pid_started", sa.String(32), nullable=True),
    # The owner's last sign of life, epoch seconds by the database's clock.
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    # Joining a param's, tag's or metric's matches to the top-level runs from the index
    # alone: counting a filter's matches never reads the run rows (revision 0005).
    sa.Index("ix_runs_id_parent_id", "id", "parent_id"),
)

params = sa.Table(
    "params",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "key"),
    # Finding runs by a param's value (the UI's filters; revision 0005): see _value_indexes.
    *_value_indexes("params"),
)

tags = sa.Table(
    "tags",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "key"),
    *_value_indexes("tags"),  # as params' (revision 0005)
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "key"),
    # Filtering and sorting runs by a metric's value, run ids included so that counting
    # the matches reads the index alone (revision 0005).
    sa.Index("ix_latest_metrics_key_value", "key", "value", "run_id"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_columns", sa.Integer, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _run_fk(nullable=True, ondelete="SET NULL"),
    sa.Column("path", sa.String, nullable=False, unique=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column(
        "name",
        sa.String,
        sa.ForeignKey("registered_models.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
    _run_fk(nullable=True, ondelete="SET NULL"),
    sa.Column("package_path", sa.String, nullable=False),
    sa.Column("task", sa.String(16), nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String, nullable=False),
    sa.PrimaryKeyConstraint("name", "version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column(
        "name",
        sa.String,
        sa.ForeignKey("registered_models.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("name", "alias"),
    # An alias can only point at a version that exists.
    sa.ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        name="fk_aliases_name_version_model_versions",
        ondelete="CASCADE",
    ),
)

alias_history = sa.Table(
    "alias_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("previous_version", sa.Integer, nullable=True),
    sa.Column("moved_at", sa.Float, nullable=False),
    sa.Column("moved_by", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_alias_history_name_alias", "name", "alias"),
)


monitor_checks = sa.Table(
    "monitor_checks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("window_start", sa.Float, nullable=True),
    sa.Column("window_end", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("n_reference", sa.Integer, nullable=False),
    sa.Column("n_current", sa.Integer, nullable=False),
    sa.Column("n_tested", sa.Integer, nullable=False),
    sa.Column("n_drifted", sa.Integer, nullable=False),
    sa.Column("share_drifted", sa.Float, nullable=False),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.ForeignKeyConstraint(
        ["model_name", "model_version"],
        ["model_versions.name", "model_versions.version"],
        name="fk_monitor_checks_model_model_versions",
        ondelete="CASCADE",
    ),
    sa.Index("ix_monitor_checks_model_created", "model_name", "model_version", "created_at"),
)

monitor_results = sa.Table(
    "monitor_results",
    metadata,
    sa.Column(
        "check_id",
        sa.String(32),
        sa.ForeignKey("monitor_checks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("section", sa.String(16), nullable=False),
    sa.Column("column", sa.String, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("method", sa.String(64), nullable=True),
    sa.Column("statistic", sa.String(16), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("drifted", sa.Boolean, nullable=True),
    sa.Column("n_current", sa.Integer, nullable=False),
    sa.Column("missing_current", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("check_id", "section", "column"),
)

monitor_performance = sa.Table(
    "monitor_performance",
    metadata,
    sa.Column(
        "check_id",
        sa.String(32),
        sa.ForeignKey("monitor_checks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("reference", sa.Float, nullable=True),
    sa.Column("estimated", sa.Float, nullable=True),
    sa.Column("realised", sa.Float, nullable=True),
    sa.Column("n_labelled", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("check_id", "metric"),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("key_column", sa.String(128), nullable=False),
    sa.Column("key", sa.String, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("model_name", "key_column", "key"),
)

monitor_incidents = sa.Table(
    "monitor_incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("signal", sa.String(64), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("opened_check_id", sa.String(32), nullable=True),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("resolved_check_id", sa.String(32), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("open_notified", sa.Boolean, nullable=False),
    sa.Column("resolve_notified", sa.Boolean, nullable=False),
    sa.Index("ix_monitor_incidents_model_rule", "model_name", "rule", "resolved_at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # the model the action concerns, when it concerns one (``None``: every model)
    sa.Column("model_name", sa.String, nullable=True),
    # what was done, as the action records it; never a personal value in clear
    sa.Column("details", sa.JSON, nullable=False),
    sa.Index("ix_audit_log_action_created_at", "action", "created_at"),
)

# --- dialect-specific statements --------------------------------------------------------


def db_epoch(dialect: str) -> sa.ColumnElement[float]:
    """The database server's current time in epoch seconds, as a SQL expression.

    Heartbeats are written and judged by this one clock, so hosts whose clocks disagree do
    not take each other's runs for dead.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"`` (``conn.dialect.name``).

    Raises:
        StoreError: for any other dialect.
    """
    if dialect == "sqlite":  # julianday has millisecond precision; 2440587.5 is 1970-01-01
        return sa.cast((sa.func.julianday("now") - 2440587.5) * 86400.0, sa.Float)
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    msg = f"the metadata store's dialect is {dialect!r}; expected 'sqlite' or 'postgresql'"
    raise StoreError(msg)


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """An ``INSERT`` for ``table`` supporting ``on_conflict_do_update/nothing``.

    Args:
        conn: a connection (its dialect chooses the construct).
        table: the target table.

    Returns:
        A SQLite or PostgreSQL ``Insert``.

    Raises:
        StoreError: the dialect is neither SQLite nor PostgreSQL.
    """
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    msg = f"the metadata store's dialect is {name!r}; expected 'sqlite' or 'postgresql'"
    raise StoreError(msg)


def upsert_latest_metrics(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert or update ``latest_metrics`` rows, keeping each metric's highest step.

    A row replaces the stored one when its step is at least the stored step (so a re-logged
    step wins). Rows repeating a ``(run_id, key)`` are reduced in Python first, as one
    statement may not touch the same row twice on PostgreSQL.

    Args:
        conn: a connection inside a write transaction.
        rows: mappings with ``run_id``, ``key``, ``value``, ``step``, ``timestamp``.
    """
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        ident = (row["run_id"], row["key"])
        if ident not in latest or row["step"] >= latest[ident]["step"]:
            latest[ident] = row
    if not latest:
        return
    table = latest_metrics
    stmt = dialect_insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.run_id, table.c.key],
        set_={
            "value": stmt.excluded.value,
            "step": stmt.excluded.step,
            "timestamp": stmt.excluded.timestamp,
        },
        where=stmt.excluded.step >= table.c.step,
    )
    columns = ("run_id", "key", "value", "step", "timestamp")
    conn.execute(stmt, [{c: row[c] for c in columns} for row in latest.values()])

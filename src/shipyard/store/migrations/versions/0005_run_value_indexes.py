"""Indexes for finding runs by value: params, tags and latest metrics.

The web UI filters runs by a param's or tag's value and filters and sorts them by a metric's
latest value; these indexes keep its pages fast at 100,000 runs. Params and tags get a hash
index on their value on PostgreSQL (a B-tree entry is limited to ~2.7 kB and a value may be
longer), a B-tree on ``(key, value, run_id)`` on SQLite. Latest metrics and runs get
covering indexes (with the run id, the parent id) so that counting a filter's matches reads
no table rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    for table in ("params", "tags"):
        if op.get_bind().dialect.name == "postgresql":
            op.create_index(f"ix_{table}_value", table, ["value"], postgresql_using="hash")
        else:
            op.create_index(f"ix_{table}_key_value_run_id", table, ["key", "value", "run_id"])
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value", "run_id"])
    op.create_index("ix_runs_id_parent_id", "runs", ["id", "parent_id"])


def downgrade() -> None:
    """Revert this revision (the indexes are dropped)."""
    op.drop_index("ix_runs_id_parent_id", table_name="runs")
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    for table in ("tags", "params"):
        if op.get_bind().dialect.name == "postgresql":
            op.drop_index(f"ix_{table}_value", table_name=table)
        else:
            op.drop_index(f"ix_{table}_key_value_run_id", table_name=table)

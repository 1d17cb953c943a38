"""Runs record their owner process and a heartbeat, so a killed run can be found crashed.

Adds ``runs.host``, ``runs.pid``, ``runs.pid_space``, ``runs.pid_started`` and
``runs.heartbeat_at`` (all nullable: runs recorded before this revision keep NULL there). The
new ``crashed`` status needs no schema change (``runs.status`` is free text).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# ALTER TABLE in place, never a batch copy of ``runs``: on SQLite with foreign keys on,
# dropping the old copy would cascade-delete every run's params, tags and metrics.
# (ADD COLUMN works everywhere; DROP COLUMN needs SQLite >= 3.35.)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("runs", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pid_space", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("pid_started", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision (crashed runs are kept, with the status text ``crashed``)."""
    with op.batch_alter_table("runs", recreate="never") as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("pid_started")
        batch_op.drop_column("pid_space")
        batch_op.drop_column("pid")
        batch_op.drop_column("host")

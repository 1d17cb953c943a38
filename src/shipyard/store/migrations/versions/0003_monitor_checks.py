"""Monitoring checks and their per-column results, a time series per model version.

Adds ``monitor_checks`` (one row per check: window, verdict, share of drifted columns) and
``monitor_results`` (each check's per-column test, statistic, threshold and verdict).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "monitor_checks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=True),
        sa.Column("window_end", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("n_reference", sa.Integer(), nullable=False),
        sa.Column("n_current", sa.Integer(), nullable=False),
        sa.Column("n_tested", sa.Integer(), nullable=False),
        sa.Column("n_drifted", sa.Integer(), nullable=False),
        sa.Column("share_drifted", sa.Float(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name", "model_version"],
            ["model_versions.name", "model_versions.version"],
            name="fk_monitor_checks_model_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_checks")),
    )
    op.create_index(
        "ix_monitor_checks_model_created",
        "monitor_checks",
        ["model_name", "model_version", "created_at"],
    )
    op.create_table(
        "monitor_results",
        sa.Column("check_id", sa.String(32), nullable=False),
        sa.Column("section", sa.String(16), nullable=False),
        sa.Column("column", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("method", sa.String(64), nullable=True),
        sa.Column("statistic", sa.String(16), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=True),
        sa.Column("n_current", sa.Integer(), nullable=False),
        sa.Column("missing_current", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["monitor_checks.id"],
            name=op.f("fk_monitor_results_check_id_monitor_checks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("check_id", "section", "column", name=op.f("pk_monitor_results")),
    )


def downgrade() -> None:
    """Revert this revision (the checks recorded are dropped)."""
    op.drop_table("monitor_results")
    op.drop_index("ix_monitor_checks_model_created", table_name="monitor_checks")
    op.drop_table("monitor_checks")

"""Monitoring: checks as a time series per model version, and labels that arrive late.

Adds ``monitor_checks`` (one row per check: window, verdict, share of drifted columns),
``monitor_results`` (each check's per-column test, statistic, threshold and verdict),
``monitor_performance`` (each check's reference, estimated and realised metrics),
``monitor_incidents`` (alert rules that fired, from opening to resolution) and ``labels``
(true values by prediction id or key column).

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
    op.create_table(
        "monitor_performance",
        sa.Column("check_id", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("reference", sa.Float(), nullable=True),
        sa.Column("estimated", sa.Float(), nullable=True),
        sa.Column("realised", sa.Float(), nullable=True),
        sa.Column("n_labelled", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["monitor_checks.id"],
            name=op.f("fk_monitor_performance_check_id_monitor_checks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("check_id", "metric", name=op.f("pk_monitor_performance")),
    )
    op.create_table(
        "labels",
        sa.Column("model_name", sa.String(), nullable=False),
        sa.Column("key_column", sa.String(128), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("model_name", "key_column", "key", name=op.f("pk_labels")),
    )
    op.create_table(
        "monitor_incidents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("opened_check_id", sa.String(32), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("resolved_check_id", sa.String(32), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("open_notified", sa.Boolean(), nullable=False),
        sa.Column("resolve_notified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_incidents")),
    )
    op.create_index(
        "ix_monitor_incidents_model_rule",
        "monitor_incidents",
        ["model_name", "rule", "resolved_at"],
    )


def downgrade() -> None:
    """Revert this revision (the checks, incidents and labels recorded are dropped)."""
    op.drop_index("ix_monitor_incidents_model_rule", table_name="monitor_incidents")
    op.drop_table("monitor_incidents")
    op.drop_table("labels")
    op.drop_table("monitor_performance")
    op.drop_table("monitor_results")
    op.drop_index("ix_monitor_checks_model_created", table_name="monitor_checks")
    op.drop_table("monitor_checks")

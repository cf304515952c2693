"""Runs and their files.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``devopsim_runs`` and ``devopsim_blobs``."""
    op.create_table(
        "devopsim_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("scenario", sa.Text, nullable=False),
        sa.Column("scenario_sha256", sa.String(64), nullable=False),
        sa.Column("overrides", sa.JSON, nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("plane", sa.String(16), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("proc_start", sa.String(32), nullable=True),
        sa.Column("summary", sa.JSON, nullable=True),
        sa.Column("alerts", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("n_samples", sa.BigInteger, nullable=True),
        sa.Column("n_events", sa.Integer, nullable=True),
    )
    op.create_index("ix_devopsim_runs_status", "devopsim_runs", ["status"])
    op.create_index("ix_devopsim_runs_scenario_sha256", "devopsim_runs", ["scenario_sha256"])
    op.create_table(
        "devopsim_blobs",
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("devopsim_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("devopsim_blobs")
    op.drop_table("devopsim_runs")

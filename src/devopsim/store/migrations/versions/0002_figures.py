"""Key figures per run for fast listing, and an index on the start time.

Revision ID: 0002
Revises: 0001

``figures`` holds what ``devopsim runs ls`` shows (availability, worst p99,
SLOs met, ...), computed from the summary so listing never loads summaries.
Existing runs are filled in from their stored summary.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from devopsim.store.figures import key_figures

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``figures`` and fill it in; index ``started_at``."""
    op.add_column("devopsim_runs", sa.Column("figures", sa.JSON, nullable=True))
    op.create_index("ix_devopsim_runs_started_at", "devopsim_runs", ["started_at"])
    table = sa.table(
        "devopsim_runs",
        sa.column("id", sa.String),
        sa.column("summary", sa.JSON),
        sa.column("figures", sa.JSON),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(table.c.id, table.c.summary).where(table.c.summary.is_not(None))).all()
    for run_id, summary in rows:
        data: Any = json.loads(summary) if isinstance(summary, str) else summary
        if isinstance(data, dict):
            conn.execute(sa.update(table).where(table.c.id == run_id).values(figures=key_figures(data)))


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ix_devopsim_runs_started_at", "devopsim_runs")
    with op.batch_alter_table("devopsim_runs") as batch:
        batch.drop_column("figures")

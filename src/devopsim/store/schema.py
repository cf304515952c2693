"""The run store's tables (SQLAlchemy Core), as the newest migration leaves them.

Migrations in ``migrations/versions`` are the source of truth for the database;
this module mirrors their result for queries, and a test checks that the two
agree. Tables carry a ``devopsim_`` prefix so the store can share a database.

``devopsim_runs``: one row per run (scenario, seed, status, summary, ...).
``devopsim_blobs``: the run's bulky files in parts of at most :data:`PART_BYTES`:
``metrics.parquet`` (the long-format table, zstd-compressed parquet) and
``events.jsonl.gz`` (the event log, gzip).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["HEAD", "PART_BYTES", "VERSION_TABLE", "blobs", "metadata", "runs"]

HEAD = "0002"  # the newest migration's revision
VERSION_TABLE = "devopsim_alembic_version"
PART_BYTES = 8 * 1024 * 1024

metadata = sa.MetaData()

runs = sa.Table(
    "devopsim_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("scenario", sa.Text, nullable=False),
    sa.Column("scenario_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("overrides", sa.JSON, nullable=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("plane", sa.String(16), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("proc_start", sa.String(32), nullable=True),
    sa.Column("summary", sa.JSON, nullable=True),
    sa.Column("alerts", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("n_samples", sa.BigInteger, nullable=True),
    sa.Column("n_events", sa.Integer, nullable=True),
    sa.Column("figures", sa.JSON, nullable=True),
)

blobs = sa.Table(
    "devopsim_blobs",
    metadata,
    sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("devopsim_runs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

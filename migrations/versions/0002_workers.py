"""Workers: one heartbeat row per daemon.

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-02

Adds the ``workers`` table of ``postscheduler.store.schema`` (``WORKERS``): each ``run``
process writes its row at start, every heartbeat and when it stops, so that ``status``
shows which replicas are alive. Purely additive: the rows of 0001's tables are untouched.
Types are spelled out here, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    """A UTC time: TIMESTAMP WITH TIME ZONE on PostgreSQL, DATETIME (UTC, naive) on SQLite."""
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", timestamp(), nullable=False),
        sa.Column("last_seen_at", timestamp(), nullable=False),
        sa.Column("beat_every_s", sa.Integer(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("campaigns", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_workers"),
    )


def downgrade() -> None:
    op.drop_table("workers")

"""The initial schema: campaigns, accounts, publications, transitions, file versions, servers.

Revision ID: 0001
Revises: (none)
Create Date: 2024-11-26

Creates exactly the schema of ``postscheduler.store.schema`` at the time, with every
constraint and index named as its naming convention names them. Types are spelled out here
(not imported from the models), so that this revision stays what it was when the models
change: ``UTCDateTime`` is stored as ``DateTime(timezone=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def timestamp() -> sa.DateTime:
    """A UTC time: TIMESTAMP WITH TIME ZONE on PostgreSQL, DATETIME (UTC, naive) on SQLite."""
    return sa.DateTime(timezone=True)


def row_id() -> sa.types.TypeEngine[int]:
    """A surrogate key: BIGINT on PostgreSQL; INTEGER on SQLite, where it is the rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("window_start", timestamp(), nullable=False),
        sa.Column("window_end", timestamp(), nullable=False),
        sa.Column("misfire_policy", sa.String(16), nullable=False),
        sa.Column("misfire_grace_s", sa.Integer(), nullable=False),
        sa.Column("min_spacing_s", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )

    op.create_table(
        "accounts",
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("software", sa.String(16), nullable=False),
        sa.Column("token_source", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("held_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "name", name="pk_accounts"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_accounts_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "publications",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("post", sa.String(64), nullable=False),
        sa.Column("occurrence", sa.String(16), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", timestamp(), nullable=False),
        sa.Column("due_at", timestamp(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("spoiler_text", sa.Text(), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("reply_to", sa.String(300), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", timestamp(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", timestamp(), nullable=True),
        sa.Column("remote_id", sa.String(200), nullable=True),
        sa.Column("remote_url", sa.Text(), nullable=True),
        sa.Column("published_at", timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("updated_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_publications"),
        sa.UniqueConstraint("key", name="uq_publications_key"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_publications_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id", "account"],
            ["accounts.campaign_id", "accounts.name"],
            name="fk_publications_campaign_id_account_accounts",
        ),
    )
    op.create_index("ix_publications_state_due_at", "publications", ["state", "due_at"])
    op.create_index(
        "ix_publications_account_state_due_at",
        "publications",
        ["campaign_id", "account", "state", "due_at"],
    )

    op.create_table(
        "transitions",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("publication_id", row_id(), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_transitions"),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name="fk_transitions_publication_id_publications",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_transitions_publication_id", "transitions", ["publication_id"])

    op.create_table(
        "file_versions",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(64), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_file_versions"),
    )
    op.create_index("ix_file_versions_campaign_id", "file_versions", ["campaign_id"])

    op.create_table(
        "server_profiles",
        sa.Column("instance", sa.String(300), nullable=False),
        sa.Column("software", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("fetched_at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("instance", name="pk_server_profiles"),
    )


def downgrade() -> None:
    op.drop_table("server_profiles")
    op.drop_index("ix_file_versions_campaign_id", table_name="file_versions")
    op.drop_table("file_versions")
    op.drop_index("ix_transitions_publication_id", table_name="transitions")
    op.drop_table("transitions")
    op.drop_index("ix_publications_account_state_due_at", table_name="publications")
    op.drop_index("ix_publications_state_due_at", table_name="publications")
    op.drop_table("publications")
    op.drop_table("accounts")
    op.drop_table("campaigns")

"""The database schema, as SQLAlchemy Core tables (one schema for SQLite and PostgreSQL).

Plain :class:`~sqlalchemy.Table` definitions on one :data:`METADATA`, not ORM models: the
store speaks Core only, and ``sqlalchemy.orm`` alone would add several MB to the daemon's
memory. Alembic's migrations in ``migrations/`` create exactly this schema; a test checks
that an upgraded empty database has no difference from these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC-aware in Python, whatever the database keeps.

    Naive datetimes are refused: a time without a zone is a bug waiting for a DST change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value!r} given to the store: times must be UTC-aware"
            )
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Every table, on one MetaData whose naming convention names the constraints (so that
#: migrations can refer to them).
METADATA = MetaData(naming_convention=NAMING)


def _serial() -> BigInteger:
    """A 64-bit integer key (SQLite's INTEGER PRIMARY KEY is already 64-bit: its rowid)."""
    return BigInteger().with_variant(Integer, "sqlite")


#: A campaign, as its file last described it.
CAMPAIGNS = Table(
    "campaigns",
    METADATA,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("misfire_policy", String(16), nullable=False),
    Column("misfire_grace_s", Integer, nullable=False),
    Column("min_spacing_s", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: An account of a campaign; the token itself is never stored, only where it is read.
ACCOUNTS = Table(
    "accounts",
    METADATA,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("instance", Text, nullable=False),
    Column("software", String(16), nullable=False),
    Column("token_source", Text, nullable=False),
    Column("paused", Boolean, nullable=False, default=False),
    Column("held_reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: One status to publish, with where it stands.
PUBLICATIONS = Table(
    "publications",
    METADATA,
    Column("id", _serial(), primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("post", String(64), nullable=False),
    Column("occurrence", String(16), nullable=True),
    Column("account", String(64), nullable=False),
    Column("part", Integer, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    # When it is next due: ``next_attempt_at`` if set, else ``scheduled_at`` (indexed).
    Column("due_at", UTCDateTime, nullable=False),
    Column("text", Text, nullable=False),
    Column("spoiler_text", Text, nullable=False, default=""),
    Column("visibility", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("sensitive", Boolean, nullable=False, default=False),
    Column("media", JSON, nullable=False, default=list),
    Column("reply_to", String(300), nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("remote_id", String(200), nullable=True),
    Column("remote_url", Text, nullable=True),
    Column("published_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("cause", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["campaign_id", "account"], ["accounts.campaign_id", "accounts.name"]),
    Index("ix_publications_state_due_at", "state", "due_at"),
    # Covers status: counts by state and next due time per campaign and account.
    Index("ix_publications_account_state_due_at", "campaign_id", "account", "state", "due_at"),
)

#: The audit trail: every change of state of every publication.
TRANSITIONS = Table(
    "transitions",
    METADATA,
    Column("id", _serial(), primary_key=True, autoincrement=True),
    Column(
        "publication_id",
        ForeignKey("publications.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("cause", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("detail", Text, nullable=True),
)

#: Every reading of a campaign file by sync or the daemon: accepted or refused.
FILE_VERSIONS = Table(
    "file_versions",
    METADATA,
    Column("id", _serial(), primary_key=True, autoincrement=True),
    Column("campaign_id", String(64), nullable=True, index=True),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
)

#: What discovery learnt of a server (software, version, limits), with its age.
SERVER_PROFILES = Table(
    "server_profiles",
    METADATA,
    Column("instance", String(300), primary_key=True),
    Column("software", String(32), nullable=False),
    Column("version", String(64), nullable=False),
    Column("limits", JSON, nullable=False, default=dict),
    Column("fetched_at", UTCDateTime, nullable=False),
)


# -- workers: one heartbeat row per daemon (revision 0002) -------------------------------

#: One row per daemon (``run`` process), keyed by its owner name (``host:pid`` by default):
#: what it runs, since when, and when it last said it was alive (see docs/operations.md).
WORKERS = Table(
    "workers",
    METADATA,
    Column("owner", String(200), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),
    #: running, stopping or stopped (:class:`postscheduler.ports.WorkerState`).
    Column("state", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    #: How often the worker writes its row: a row older than a few beats is late.
    Column("beat_every_s", Integer, nullable=False),
    #: The campaign files it runs, and their campaigns' ids (JSON lists of strings).
    Column("files", JSON, nullable=False),
    Column("campaigns", JSON, nullable=False),
)

"""The database schema, as SQLAlchemy 2 typed mappings (one schema for SQLite and PostgreSQL).

Alembic's migrations in ``migrations/`` create exactly this schema; a test checks that an
upgraded empty database has no difference from these models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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


class Base(DeclarativeBase):
    """Base of every table; names its constraints so that migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class CampaignRow(Base):
    """A campaign, as its file last described it."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    misfire_policy: Mapped[str] = mapped_column(String(16))
    misfire_grace_s: Mapped[int] = mapped_column(Integer)
    min_spacing_s: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AccountRow(Base):
    """An account of a campaign; the token itself is never stored, only where it is read."""

    __tablename__ = "accounts"

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[str] = mapped_column(Text)
    software: Mapped[str] = mapped_column(String(16))
    token_source: Mapped[str] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    held_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class PublicationRow(Base):
    """One status to publish, with where it stands."""

    __tablename__ = "publications"
    __table_args__ = (
        ForeignKeyConstraint(["campaign_id", "account"], ["accounts.campaign_id", "accounts.name"]),
        Index("ix_publications_state_due_at", "state", "due_at"),
        # Covers status: counts by state and next due time per campaign and account.
        Index("ix_publications_account_state_due_at", "campaign_id", "account", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(String(300), unique=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    post: Mapped[str] = mapped_column(String(64))
    occurrence: Mapped[str | None] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    part: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    scheduled_at: Mapped[datetime]
    #: When it is next due: ``next_attempt_at`` if set, else ``scheduled_at`` (indexed).
    due_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    spoiler_text: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    media: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reply_to: Mapped[str | None] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    remote_id: Mapped[str | None] = mapped_column(String(200))
    remote_url: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TransitionRow(Base):
    """The audit trail: every change of state of every publication."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    publication_id: Mapped[int] = mapped_column(
        ForeignKey("publications.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)


class FileVersionRow(Base):
    """Every reading of a campaign file by sync or the daemon: accepted or refused."""

    __tablename__ = "file_versions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[str | None] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    accepted: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class ServerProfileRow(Base):
    """What discovery learnt of a server (software, version, limits), with its age."""

    __tablename__ = "server_profiles"

    instance: Mapped[str] = mapped_column(String(300), primary_key=True)
    software: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fetched_at: Mapped[datetime]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 (declarative models map to tables)
    return table


#: The tables, for Core statements (bulk inserts and updates).
CAMPAIGNS = _table(CampaignRow)
ACCOUNTS = _table(AccountRow)
PUBLICATIONS = _table(PublicationRow)
TRANSITIONS = _table(TransitionRow)
FILE_VERSIONS = _table(FileVersionRow)
SERVER_PROFILES = _table(ServerProfileRow)


# -- workers: one heartbeat row per daemon ----------------------------------------------------
#
# A self-contained block, written as a plain Core table on the models' metadata (revision
# 0002 creates it). Nothing above refers to it.

#: One row per daemon (``run`` process), keyed by its owner name (``host:pid`` by default):
#: what it runs, since when, and when it last said it was alive (see docs/operations.md).
WORKERS = Table(
    "workers",
    Base.metadata,
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

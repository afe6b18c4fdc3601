"""Database tables. PostgreSQL is the source of truth; SQLite serves the embedded default."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonColumn = JSON()
"""`json`, not `jsonb`, on PostgreSQL: jsonb reorders object keys, and the order of a
flag's variants and rollout weights is part of the bucketing contract."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY, so big ids are plain integers there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JsonColumn, datetime: UTCDateTime}  # noqa: RUF012


class Environment(Base):
    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    config_version: Mapped[int] = mapped_column(BigInteger, default=1)
    """Raised by every change that alters what this environment's SDKs see."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlagRow(Base):
    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    definition: Mapped[dict[str, Any]]
    """The flag as in the document (contract 1), without its key."""
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own protocol


class SegmentRow(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    definition: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    """`admin` or `sdk`."""
    role: Mapped[str | None] = mapped_column(String(32))
    environment: Mapped[str | None] = mapped_column(
        String(128), ForeignKey("environments.key", ondelete="RESTRICT")
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32))
    """The token's first characters, to tell tokens apart without the secret."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRow(Base):
    """Append-only: nothing in the product updates or deletes these rows."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_key: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_target", "target_type", "target_key"),
        Index("ix_audit_actor", "actor"),
        Index("ix_audit_at", "at"),
    )


class MetricCountRow(Base):
    """SDK counts in 10-second buckets, for the embedded default (Redis holds them
    otherwise)."""

    __tablename__ = "metric_counts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(128))
    flag: Mapped[str] = mapped_column(String(128))
    bucket: Mapped[int] = mapped_column(BigInteger)
    """Start of the bucket, in Unix seconds."""
    series: Mapped[str] = mapped_column(String(400))
    """What is counted: see `graylane_server.usage.series`."""
    count: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """For the series that hold a float (sums of values, the newest window's end)."""

    __table_args__ = (
        UniqueConstraint("environment", "flag", "bucket", "series", name="uq_metric_counts"),
        Index("ix_metric_counts_window", "environment", "flag", "bucket"),
    )


class RampRow(Base):
    """Where a flag's ramp stands in one environment; the plan itself is the `ramp` block
    of the flag's definition."""

    __tablename__ = "ramps"

    id: Mapped[int] = mapped_column(primary_key=True)
    flag: Mapped[str] = mapped_column(String(128), ForeignKey("flags.key", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[int] = mapped_column(Integer)
    percentage: Mapped[str] = mapped_column(String(16))
    """Exact decimal text, like the document's."""
    stage_started_at: Mapped[datetime]
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (UniqueConstraint("flag", "environment", name="uq_ramps_flag_env"),)


class LeaseRow(Base):
    """A fenced lease: who may act alone (the ramp controller), until when, and a fence
    number that grows with every new holder so a stale holder's writes are refused."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    fence: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]


class GuardAlertRow(Base):
    """Alerts from outside (Alertmanager and the like) that trip webhook guards by name."""

    __tablename__ = "guard_alerts"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    firing: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    """HMAC key for the signature header; shown once, like a token."""
    events: Mapped[dict[str, Any]]
    """{"events": [...]}: which notices to send; empty means all."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class DeliveryRow(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    """pending, delivered or failed (gave up)."""
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)


class UiSessionRow(Base):
    """A signed-in admin UI session. The cookie carries a random secret; only its hash is
    stored, next to the session's CSRF token and a one-shot message for the next page."""

    __tablename__ = "ui_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    flash: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (Index("ix_ui_sessions_expires", "expires_at"),)

"""The database schema as SQLModel tables: what is stored, not what the API shows.

Every change here needs a migration (``symbiosis db revision "what changed"``); a test
compares these tables with the migrated schema on SQLite and PostgreSQL.

Identifiers of things people name and refer to are prefixed strings (``proj_…``,
``key_…``), generated here, so replicas never coordinate to create one. High-volume
rows (request logs, audit entries) use integer ids.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ._types import MONEY, UTCDateTime
from .base import new_id, utcnow

# Stable constraint names, so migrations can name what they change on both backends.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime)


class BusinessUnit(SQLModel, table=True):
    __tablename__ = "business_units"

    id: str = Field(default_factory=lambda: new_id("bu"), primary_key=True, max_length=40)
    name: str = Field(unique=True, max_length=200)
    created_at: datetime = _created()


class Project(SQLModel, table=True):
    __tablename__ = "projects"

    id: str = Field(default_factory=lambda: new_id("proj"), primary_key=True, max_length=40)
    name: str = Field(unique=True, max_length=200)
    business_unit_id: str | None = Field(
        default=None, foreign_key="business_units.id", index=True, max_length=40
    )
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    created_at: datetime = _created()
    updated_at: datetime = _created()


class User(SQLModel, table=True):
    """A person known from an OpenID Connect login, identified by the token's subject."""

    __tablename__ = "users"

    id: str = Field(default_factory=lambda: new_id("user"), primary_key=True, max_length=40)
    subject: str = Field(unique=True, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = _created()
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Membership(SQLModel, table=True):
    """A user's role in a project (``owner``, ``member`` or ``viewer``)."""

    __tablename__ = "memberships"

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="projects.id", primary_key=True, max_length=40)
    role: str = Field(max_length=32)
    created_at: datetime = _created()


class VirtualKey(SQLModel, table=True):
    """An API key of a project. Only the SHA-256 of the secret is stored.

    ``updated_at`` moves on every administrative change (revoke, edit) and is what
    replicas poll to refresh their key caches; ``last_used_at`` is written in batches
    and deliberately does not move ``updated_at``.
    """

    __tablename__ = "virtual_keys"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="projects.id", index=True, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    key_hash: str = Field(unique=True, index=True, max_length=64)
    prefix: str = Field(max_length=16)
    allowed_models: list[str] = Field(default_factory=list, sa_type=JSON)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    budget_usd: Decimal | None = Field(default=None, sa_type=MONEY)
    budget_period: str | None = Field(default=None, max_length=16)
    created_at: datetime = _created()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Budget(SQLModel, table=True):
    """A spending limit on a project or a key, per period, with alert thresholds."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("scope", "scope_id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    scope: str = Field(max_length=16)  # "project" or "key"
    scope_id: str = Field(max_length=40)
    amount_usd: Decimal = Field(sa_type=MONEY)
    period: str = Field(max_length=16)  # "daily", "weekly", "monthly" or "total"
    alert_thresholds: list[float] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class SpendCounter(SQLModel, table=True):
    """Money spent and reserved by one scope in one budget period."""

    __tablename__ = "spend_counters"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "period_start"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    scope: str = Field(max_length=16)
    scope_id: str = Field(max_length=40)
    period_start: datetime = Field(sa_type=UTCDateTime)
    spent_usd: Decimal = Field(default=Decimal(0), sa_type=MONEY)
    reserved_usd: Decimal = Field(default=Decimal(0), sa_type=MONEY)
    updated_at: datetime = _created()


class BudgetLease(SQLModel, table=True):
    """Money one replica may reserve from a budget period without asking again.

    A lease whose ``heartbeat_at`` is older than the lease TTL belongs to a replica that
    stopped: it no longer counts against the budget.
    """

    __tablename__ = "budget_leases"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "period_start", "replica"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    scope: str = Field(max_length=16)
    scope_id: str = Field(max_length=40)
    period_start: datetime = Field(sa_type=UTCDateTime)
    replica: str = Field(max_length=64)
    amount_usd: Decimal = Field(default=Decimal(0), sa_type=MONEY)
    heartbeat_at: datetime = _created()


class BudgetAlert(SQLModel, table=True):
    """A threshold alert already sent for a budget period: each fires once."""

    __tablename__ = "budget_alerts"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "period_start", "threshold"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    scope: str = Field(max_length=16)
    scope_id: str = Field(max_length=40)
    period_start: datetime = Field(sa_type=UTCDateTime)
    threshold: float
    fired_at: datetime = _created()


class RequestLog(SQLModel, table=True):
    """One finished request, successful or not. Bodies only when configured, redacted."""

    __tablename__ = "request_logs"
    # A replayed batch inserts nothing; a client reusing its x-request-id (a retry) is
    # a new request at a new time, so it gets its own row.
    __table_args__ = (UniqueConstraint("request_id", "at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    request_id: str = Field(max_length=128)
    key_id: str | None = Field(default=None, index=True, max_length=40)
    project_id: str | None = Field(default=None, index=True, max_length=40)
    end_user: str | None = Field(default=None, max_length=256)
    client: str | None = Field(default=None, max_length=128)
    user_agent: str | None = Field(default=None, max_length=512)
    model: str = Field(max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    upstream_model: str | None = Field(default=None, max_length=200)
    status: int
    latency_ms: float
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal | None = Field(default=None, sa_type=MONEY)
    error_type: str | None = Field(default=None, max_length=64)
    request_body: str | None = Field(default=None, sa_type=Text)
    response_body: str | None = Field(default=None, sa_type=Text)


class AuditLog(SQLModel, table=True):
    """Who did which administrative action to what, and when."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True, sa_type=_ROW_ID)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=255)
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str | None = Field(default=None, max_length=40)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

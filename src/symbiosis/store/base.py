"""What the key service needs from storage: records, the ``KeyStore`` protocol, its errors.

Two implementations: ``SqlKeyStore`` (``store.sql``, SQLite or PostgreSQL) and
``MemoryKeyStore`` (``store.memory``, one process, for tests and embedding). Every
administrative write also appends an audit entry, in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..exceptions import InvalidRequestError, SymbiosisError

BudgetPeriod = Literal["daily", "weekly", "monthly", "total"]
BUDGET_PERIODS: tuple[str, ...] = get_args(BudgetPeriod)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random, prefixed identifier such as ``key_3f9c…`` (96 random bits)."""
    return f"{prefix}_{secrets.token_hex(12)}"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class _WithBudget(_Record):
    budget_usd: Decimal | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod | None = None

    @model_validator(mode="after")
    def _monthly_by_default(self) -> Self:
        if self.budget_usd is not None and self.budget_period is None:
            object.__setattr__(self, "budget_period", "monthly")
        return self


class NewProject(_WithBudget):
    """A project to create; a budget without a period is monthly.

    ``rpm_limit`` and ``tpm_limit`` cap the project as a whole, on top of its keys' own.
    ``business_unit`` names the unit the project belongs to; a unit of that name is
    created along with the project when there is none yet.
    """

    name: str = Field(min_length=1, max_length=200)
    business_unit: str | None = Field(default=None, min_length=1, max_length=200)
    rpm_limit: int | None = Field(default=None, ge=1)
    tpm_limit: int | None = Field(default=None, ge=1)


class ProjectRecord(_Record):
    id: str
    name: str
    business_unit: str | None = None
    business_unit_id: str | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    budget_usd: Decimal | None = None
    budget_period: BudgetPeriod | None = None
    created_at: datetime


class BusinessUnitRecord(_Record):
    """A business unit: a group of projects whose usage reports roll up together."""

    id: str
    name: str
    project_count: int = 0
    created_at: datetime


class NewKey(_WithBudget):
    """A key to store: its secret is already reduced to ``key_hash`` and ``prefix``."""

    project: str
    key_hash: str = Field(min_length=64, max_length=64)
    prefix: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=200)
    allowed_models: tuple[str, ...] = ()
    expires_at: datetime | None = None
    rpm_limit: int | None = Field(default=None, ge=1)
    tpm_limit: int | None = Field(default=None, ge=1)


class KeyRecord(_Record):
    """A stored key as the service and the admin tools see it (never with its secret)."""

    id: str
    project_id: str
    project_name: str
    name: str | None = None
    key_hash: str = Field(exclude=True, repr=False)
    prefix: str
    allowed_models: tuple[str, ...] = ()
    expires_at: datetime | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    budget_usd: Decimal | None = None
    budget_period: BudgetPeriod | None = None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    project_rpm_limit: int | None = None
    project_tpm_limit: int | None = None
    project_budget_usd: Decimal | None = None
    project_budget_period: BudgetPeriod | None = None


class AuditEntry(_Record):
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None = None
    details: Mapping[str, Any] = Field(default_factory=dict)


class KeyStore(Protocol):
    """Projects and keys, persisted. Every call is one short transaction."""

    async def create_project(self, project: NewProject, *, actor: str) -> ProjectRecord:
        """Create a project, and its business unit too when that does not exist yet."""
        ...

    async def list_projects(self, *, actor: str) -> list[ProjectRecord]: ...

    async def list_business_units(self, *, actor: str) -> list[BusinessUnitRecord]:
        """Every business unit, by name, with how many projects it has."""
        ...

    async def create_key(self, key: NewKey, *, actor: str) -> KeyRecord: ...

    async def list_keys(self, *, project: str | None, actor: str) -> list[KeyRecord]: ...

    async def revoke_key(self, key_id: str, *, actor: str) -> KeyRecord:
        """Revoke a key (idempotent: revoking a revoked key changes nothing)."""
        ...

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None: ...

    async def keys_changed_since(self, since: datetime) -> list[KeyRecord]:
        """Keys whose ``updated_at`` is later than ``since``, oldest change first."""
        ...

    async def latest_key_change(self) -> datetime | None: ...

    async def mark_used(self, used: Mapping[str, datetime]) -> None:
        """Set ``last_used_at`` of each key id; does not move ``updated_at``."""
        ...

    async def recent_audit(self, limit: int = 100) -> Sequence[AuditEntry]: ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the store answers and has its schema."""
        ...

    async def aclose(self) -> None: ...


class StoreUnavailableError(SymbiosisError):
    """The database cannot be reached, or has no schema yet (``symbiosis db migrate``)."""

    status_code = 503
    error_type = "api_error"
    default_code = "database_unavailable"


class ProjectExistsError(InvalidRequestError):
    status_code = 409
    default_code = "project_exists"


class ProjectNotFoundError(InvalidRequestError):
    status_code = 404
    default_code = "project_not_found"


class KeyNotFoundError(InvalidRequestError):
    status_code = 404
    default_code = "key_not_found"


def project_not_found(name: str) -> ProjectNotFoundError:
    return ProjectNotFoundError(f"unknown project {name!r}", param="project")


def key_not_found(key_id: str) -> KeyNotFoundError:
    return KeyNotFoundError(f"unknown key {key_id!r}", param="key_id")


def project_exists(name: str) -> ProjectExistsError:
    return ProjectExistsError(f"project {name!r} already exists", param="name")

"""``SqlKeyStore``: projects, keys and the audit log in SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col, select

from ._errors import translate_db_errors
from ._types import UTCDateTime
from ._upsert import insert_for
from .base import (
    AuditEntry,
    BusinessUnitRecord,
    KeyRecord,
    NewKey,
    NewProject,
    ProjectRecord,
    key_not_found,
    new_id,
    project_exists,
    project_not_found,
    utcnow,
)
from .engine import create_engine, create_sessionmaker
from .tables import AuditLog, Budget, BusinessUnit, Project, VirtualKey

_PROJECT_BUDGET = and_(col(Budget.scope) == "project", col(Budget.scope_id) == col(Project.id))


def _keys() -> Any:
    """Keys with their project and its budget: what a ``KeyRecord`` carries."""
    return (
        select(VirtualKey, Project, Budget)
        .join(Project, col(VirtualKey.project_id) == col(Project.id))
        .outerjoin(Budget, _PROJECT_BUDGET)
    )


class SqlKeyStore:
    """The ``KeyStore`` over an async SQLAlchemy engine; owns the engine it builds."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=True)
        self._sessions = create_sessionmaker(engine)
        self._owns_engine = owns_engine

    @classmethod
    def from_url(cls, url: str, **engine_options: Any) -> SqlKeyStore:
        return cls(create_engine(url, **engine_options), owns_engine=True)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        with translate_db_errors(self._url):
            async with self._sessions.begin() as session:
                yield session

    async def create_project(self, project: NewProject, *, actor: str) -> ProjectRecord:
        row = Project(name=project.name, rpm_limit=project.rpm_limit, tpm_limit=project.tpm_limit)
        budget = None
        try:
            async with self._transaction() as session:
                if project.business_unit is not None:
                    row.business_unit_id = await _business_unit(
                        session, project.business_unit, actor
                    )
                session.add(row)
                await session.flush()
                if project.budget_usd is not None:
                    budget = Budget(
                        scope="project",
                        scope_id=row.id,
                        amount_usd=project.budget_usd,
                        period=project.budget_period or "monthly",
                    )
                    session.add(budget)
                details = project.model_dump(mode="json", exclude_none=True)
                session.add(_audit(actor, "project.create", "project", row.id, details))
        except IntegrityError:
            raise project_exists(project.name) from None
        return _project_record(row, budget, project.business_unit)

    async def list_projects(self, *, actor: str) -> list[ProjectRecord]:
        query = (
            select(Project, Budget, col(BusinessUnit.name))
            .outerjoin(Budget, _PROJECT_BUDGET)
            .outerjoin(BusinessUnit, col(BusinessUnit.id) == col(Project.business_unit_id))
            .order_by(col(Project.name))
        )
        async with self._transaction() as session:
            rows = (await session.execute(query)).all()
            session.add(_audit(actor, "project.list", "project", None, {"count": len(rows)}))
        return [_project_record(*row) for row in rows]

    async def list_business_units(self, *, actor: str) -> list[BusinessUnitRecord]:
        projects = func.count(col(Project.id)).label("project_count")
        query = (
            select(BusinessUnit, projects)
            .outerjoin(Project, col(Project.business_unit_id) == col(BusinessUnit.id))
            .group_by(col(BusinessUnit.id), col(BusinessUnit.name), col(BusinessUnit.created_at))
            .order_by(col(BusinessUnit.name))
        )
        async with self._transaction() as session:
            rows = (await session.execute(query)).all()
            details = {"count": len(rows)}
            session.add(_audit(actor, "business_unit.list", "business_unit", None, details))
        return [
            BusinessUnitRecord(
                id=unit.id, name=unit.name, project_count=count, created_at=unit.created_at
            )
            for unit, count in rows
        ]

    async def create_key(self, key: NewKey, *, actor: str) -> KeyRecord:
        async with self._transaction() as session:
            project = await _project_named(session, key.project)
            values = key.model_dump(exclude={"project"})
            row = VirtualKey(project_id=project.id, **values)
            row.allowed_models = list(key.allowed_models)
            session.add(row)
            await session.flush()
            details = {"project": project.name, "name": key.name, "prefix": key.prefix}
            session.add(_audit(actor, "key.create", "key", row.id, details))
            budget = await session.scalar(
                select(Budget).where(Budget.scope == "project", Budget.scope_id == project.id)
            )
        return _key_record(row, project, budget)

    async def list_keys(self, *, project: str | None, actor: str) -> list[KeyRecord]:
        query = _keys().order_by(col(VirtualKey.created_at))
        async with self._transaction() as session:
            if project is not None:
                query = query.where(
                    col(VirtualKey.project_id) == (await _project_named(session, project)).id
                )
            rows = (await session.execute(query)).all()
            details = {"project": project, "count": len(rows)}
            session.add(_audit(actor, "key.list", "key", None, details))
        return [_key_record(*row) for row in rows]

    async def revoke_key(self, key_id: str, *, actor: str) -> KeyRecord:
        query = _keys().where(col(VirtualKey.id) == key_id)
        async with self._transaction() as session:
            found = (await session.execute(query)).first()
            if found is None:
                raise key_not_found(key_id)
            row, project, budget = found
            details: dict[str, Any] = {"project": project.name}
            if row.revoked_at is None:
                row.revoked_at = row.updated_at = utcnow()
            else:
                details["already_revoked"] = True
            session.add(_audit(actor, "key.revoke", "key", row.id, details))
        return _key_record(row, project, budget)

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        query = _keys().where(col(VirtualKey.key_hash) == key_hash)
        async with self._transaction() as session:
            found = (await session.execute(query)).first()
        return None if found is None else _key_record(*found)

    async def keys_changed_since(self, since: datetime) -> list[KeyRecord]:
        query = (
            _keys().where(col(VirtualKey.updated_at) > since).order_by(col(VirtualKey.updated_at))
        )
        async with self._transaction() as session:
            rows = (await session.execute(query)).all()
        return [_key_record(*row) for row in rows]

    async def latest_key_change(self) -> datetime | None:
        async with self._transaction() as session:
            return await session.scalar(select(func.max(VirtualKey.updated_at)))

    async def mark_used(self, used: Mapping[str, datetime]) -> None:
        if not used:
            return
        table = VirtualKey.__table__  # type: ignore[attr-defined]
        statement = (
            update(table)
            .where(table.c.id == bindparam("key_id"))
            .values(last_used_at=bindparam("used_at", type_=UTCDateTime()))
        )
        rows = [{"key_id": key_id, "used_at": at} for key_id, at in used.items()]
        async with self._transaction() as session:
            connection = await session.connection()
            await connection.execute(statement, rows)

    async def recent_audit(self, limit: int = 100) -> Sequence[AuditEntry]:
        query = select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit)
        async with self._transaction() as session:
            rows = (await session.execute(query)).scalars().all()
        return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]

    async def ping(self) -> None:
        async with self._transaction() as session:
            await session.execute(select(VirtualKey.id).limit(1))

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


async def _business_unit(session: AsyncSession, name: str, actor: str) -> str:
    """The id of the business unit ``name``, created (and audited) when there is none yet.

    ``ON CONFLICT DO NOTHING`` makes concurrent creators of one unit agree on one row,
    without failing the transaction of the one that loses the race.
    """
    values = {"id": new_id("bu"), "name": name, "created_at": utcnow()}
    insert = insert_for(session, BusinessUnit).values(**values)
    created = await session.scalar(
        insert.on_conflict_do_nothing(index_elements=["name"]).returning(col(BusinessUnit.id))
    )
    if created is not None:
        session.add(_audit(actor, "business_unit.create", "business_unit", created, {"name": name}))
        return created
    # The insert waited for the conflicting row to commit, so this new statement sees it.
    existing = await session.execute(select(BusinessUnit.id).where(BusinessUnit.name == name))
    return existing.scalar_one()


async def _project_named(session: AsyncSession, name: str) -> Project:
    project = (await session.execute(select(Project).where(Project.name == name))).scalar()
    if project is None:
        raise project_not_found(name)
    return project


def _audit(
    actor: str, action: str, target_type: str, target_id: str | None, details: dict[str, Any]
) -> AuditLog:
    return AuditLog(
        actor=actor, action=action, target_type=target_type, target_id=target_id, details=details
    )


def _project_record(
    project: Project, budget: Budget | None, business_unit: str | None
) -> ProjectRecord:
    return ProjectRecord(
        id=project.id,
        name=project.name,
        business_unit=business_unit,
        business_unit_id=project.business_unit_id,
        rpm_limit=project.rpm_limit,
        tpm_limit=project.tpm_limit,
        budget_usd=budget.amount_usd if budget else None,
        budget_period=budget.period if budget else None,  # type: ignore[arg-type]
        created_at=project.created_at,
    )


def _key_record(row: VirtualKey, project: Project, budget: Budget | None) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        project_id=row.project_id,
        project_name=project.name,
        name=row.name,
        key_hash=row.key_hash,
        prefix=row.prefix,
        allowed_models=tuple(row.allowed_models),
        expires_at=row.expires_at,
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        budget_usd=row.budget_usd,
        budget_period=row.budget_period,  # type: ignore[arg-type]
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        project_rpm_limit=project.rpm_limit,
        project_tpm_limit=project.tpm_limit,
        project_budget_usd=budget.amount_usd if budget else None,
        project_budget_period=budget.period if budget else None,  # type: ignore[arg-type]
    )

"""``MemoryKeyStore``: the ``KeyStore`` in one process's memory, for tests and embedding.

Nothing survives a restart and nothing is shared between processes; use
``SqlKeyStore`` for a gateway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

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


class MemoryKeyStore:
    """Projects, keys and audit entries in dictionaries; same rules as ``SqlKeyStore``."""

    def __init__(
        self, *, projects: Iterable[ProjectRecord] = (), keys: Iterable[KeyRecord] = ()
    ) -> None:
        """Start empty, or with fixed ``projects`` and ``keys`` (an app's own static keys)."""
        self._projects: dict[str, ProjectRecord] = {p.name: p for p in projects}  # by name
        self._units: dict[str, BusinessUnitRecord] = {  # by name
            p.business_unit: BusinessUnitRecord(
                id=p.business_unit_id, name=p.business_unit, created_at=p.created_at
            )
            for p in self._projects.values()
            if p.business_unit is not None and p.business_unit_id is not None
        }
        self._keys: dict[str, KeyRecord] = {k.id: k for k in keys}
        self._audit: list[AuditEntry] = []

    async def create_project(self, project: NewProject, *, actor: str) -> ProjectRecord:
        if project.name in self._projects:
            raise project_exists(project.name)
        unit = None if project.business_unit is None else self._unit(project.business_unit, actor)
        record = ProjectRecord(
            id=new_id("proj"),
            name=project.name,
            business_unit=unit.name if unit else None,
            business_unit_id=unit.id if unit else None,
            rpm_limit=project.rpm_limit,
            tpm_limit=project.tpm_limit,
            budget_usd=project.budget_usd,
            budget_period=project.budget_period,
            created_at=utcnow(),
        )
        self._projects[project.name] = record
        details = project.model_dump(mode="json", exclude_none=True)
        self._log(actor, "project.create", "project", record.id, details)
        return record

    async def list_projects(self, *, actor: str) -> list[ProjectRecord]:
        projects = sorted(self._projects.values(), key=lambda p: p.name)
        self._log(actor, "project.list", "project", None, {"count": len(projects)})
        return projects

    async def list_business_units(self, *, actor: str) -> list[BusinessUnitRecord]:
        counts = Counter(p.business_unit_id for p in self._projects.values())
        units = [
            unit.model_copy(update={"project_count": counts[unit.id]})
            for unit in sorted(self._units.values(), key=lambda u: u.name)
        ]
        self._log(actor, "business_unit.list", "business_unit", None, {"count": len(units)})
        return units

    async def create_key(self, key: NewKey, *, actor: str) -> KeyRecord:
        project = self._project(key.project)
        if any(k.key_hash == key.key_hash for k in self._keys.values()):
            raise ValueError("a key with this hash already exists")
        now = utcnow()
        record = KeyRecord(
            id=new_id("key"),
            project_id=project.id,
            project_name=project.name,
            created_at=now,
            updated_at=now,
            project_rpm_limit=project.rpm_limit,
            project_tpm_limit=project.tpm_limit,
            project_budget_usd=project.budget_usd,
            project_budget_period=project.budget_period,
            **key.model_dump(exclude={"project"}),
        )
        self._keys[record.id] = record
        details = {"project": project.name, "name": key.name, "prefix": key.prefix}
        self._log(actor, "key.create", "key", record.id, details)
        return record

    async def list_keys(self, *, project: str | None, actor: str) -> list[KeyRecord]:
        keys = list(self._keys.values())
        if project is not None:
            owner = self._project(project)
            keys = [k for k in keys if k.project_id == owner.id]
        self._log(actor, "key.list", "key", None, {"project": project, "count": len(keys)})
        return sorted(keys, key=lambda k: k.created_at)

    async def revoke_key(self, key_id: str, *, actor: str) -> KeyRecord:
        record = self._keys.get(key_id)
        if record is None:
            raise key_not_found(key_id)
        details: dict[str, Any] = {"project": record.project_name}
        if record.revoked_at is None:
            now = utcnow()
            record = self._keys[key_id] = record.model_copy(
                update={"revoked_at": now, "updated_at": now}
            )
        else:
            details["already_revoked"] = True
        self._log(actor, "key.revoke", "key", key_id, details)
        return record

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        return next((k for k in self._keys.values() if k.key_hash == key_hash), None)

    async def keys_changed_since(self, since: datetime) -> list[KeyRecord]:
        changed = [k for k in self._keys.values() if k.updated_at > since]
        return sorted(changed, key=lambda k: k.updated_at)

    async def latest_key_change(self) -> datetime | None:
        return max((k.updated_at for k in self._keys.values()), default=None)

    async def mark_used(self, used: Mapping[str, datetime]) -> None:
        for key_id, at in used.items():
            if (record := self._keys.get(key_id)) is not None:
                self._keys[key_id] = record.model_copy(update={"last_used_at": at})

    async def recent_audit(self, limit: int = 100) -> Sequence[AuditEntry]:
        return self._audit[::-1][:limit]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _unit(self, name: str, actor: str) -> BusinessUnitRecord:
        unit = self._units.get(name)
        if unit is None:
            unit = self._units[name] = BusinessUnitRecord(
                id=new_id("bu"), name=name, created_at=utcnow()
            )
            self._log(actor, "business_unit.create", "business_unit", unit.id, {"name": name})
        return unit

    def _project(self, name: str) -> ProjectRecord:
        project = self._projects.get(name)
        if project is None:
            raise project_not_found(name)
        return project

    def _log(
        self, actor: str, action: str, target_type: str, target_id: str | None, details: Any
    ) -> None:
        self._audit.append(
            AuditEntry(
                at=utcnow(),
                actor=actor,
                action=action,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
        )

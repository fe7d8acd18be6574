"""Usage reports over the request log: totals and breakdowns for a time range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ._errors import translate_db_errors
from .base import project_not_found
from .engine import create_sessionmaker
from .tables import BusinessUnit, Project, RequestLog, VirtualKey

GroupBy = Literal["project", "key", "model", "day", "business_unit"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)
MEASURES = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")


@dataclass(slots=True)
class UsageReport:
    """Totals for ``since``..``until`` and, with ``group_by``, one row per group.

    ``fields`` names the columns of a row, group fields first, then ``MEASURES``; it
    is known even when there are no rows (a CSV header needs it).
    """

    since: datetime
    until: datetime
    group_by: str | None
    total: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    fields: tuple[str, ...] = MEASURES

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "group_by": self.group_by,
            "total": self.total,
            "rows": self.rows,
        }


def _measures() -> list[Any]:
    return [
        func.count().label("requests"),
        func.coalesce(func.sum(case((RequestLog.status >= 400, 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(RequestLog.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(RequestLog.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(RequestLog.cost_usd), 0).label("cost_usd"),
    ]


def _day(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", RequestLog.at), "YYYY-MM-DD")
    return func.substr(RequestLog.at, 1, 10)  # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS'


def _grouped(query: Select[Any], group_by: str, dialect: str) -> tuple[Select[Any], list[str]]:
    """``query`` broken down by ``group_by``, and the names of the group fields."""
    if group_by == "model":
        return query.add_columns(RequestLog.model).group_by(RequestLog.model), ["model"]
    if group_by == "day":
        day = _day(dialect).label("day")
        return query.add_columns(day).group_by(day), ["day"]
    if group_by == "project":
        query = query.outerjoin(BusinessUnit, BusinessUnit.id == Project.business_unit_id)
        query = query.add_columns(
            Project.name.label("project"),
            Project.id.label("project_id"),
            BusinessUnit.name.label("business_unit"),
        )
        query = query.group_by(Project.id, Project.name, BusinessUnit.name)
        return query, ["project", "project_id", "business_unit"]
    if group_by == "key":
        query = query.outerjoin(VirtualKey, VirtualKey.id == RequestLog.key_id).add_columns(
            RequestLog.key_id, VirtualKey.name.label("key_name"), Project.name.label("project")
        )
        return query.group_by(RequestLog.key_id, VirtualKey.name, Project.name), [
            "key_id",
            "key_name",
            "project",
        ]
    if group_by == "business_unit":
        query = query.outerjoin(BusinessUnit, BusinessUnit.id == Project.business_unit_id)
        query = query.add_columns(BusinessUnit.name.label("business_unit"))
        return query.group_by(BusinessUnit.name), ["business_unit"]
    raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}")


async def usage_report(
    engine: AsyncEngine,
    *,
    since: datetime,
    until: datetime,
    group_by: str | None = None,
    project: str | None = None,
) -> UsageReport:
    """Requests, errors, tokens and cost from ``since`` (inclusive) to ``until`` (exclusive).

    Failed requests count in ``requests`` and ``errors``; requests of unknown price
    add nothing to ``cost_usd``. Rows come sorted by their first group field, the
    group of requests without one (no project, no business unit) last. An unknown
    ``project`` raises ``ProjectNotFoundError``; an unreachable database
    ``StoreUnavailableError``.
    """
    dialect = engine.dialect.name
    base = (
        select(*_measures())
        .select_from(RequestLog)
        .outerjoin(Project, Project.id == RequestLog.project_id)
        .where(RequestLog.at >= since, RequestLog.at < until)
    )
    if project is not None:
        base = base.where(Project.name == project)
    sessions = create_sessionmaker(engine)
    rows: list[dict[str, Any]] = []
    fields: list[str] = []
    with translate_db_errors(engine.url.render_as_string(hide_password=True)):
        async with sessions() as session:
            if project is not None and not await session.scalar(
                select(func.count()).select_from(Project).where(Project.name == project)
            ):
                raise project_not_found(project)
            total = _measure_dict((await session.execute(base)).one())
            if group_by is not None:
                query, fields = _grouped(base, group_by, dialect)
                for row in await session.execute(query):
                    mapping = row._mapping
                    rows.append({**{f: mapping[f] for f in fields}, **_measure_dict(row)})
    if fields:
        first = fields[0]
        rows.sort(key=lambda row: (row[first] is None, row[first] or ""))
    return UsageReport(since, until, group_by, total, rows, (*fields, *MEASURES))


def _measure_dict(row: Any) -> dict[str, Any]:
    mapping = row._mapping
    return {
        "requests": int(mapping["requests"]),
        "errors": int(mapping["errors"]),
        "input_tokens": int(mapping["input_tokens"]),
        "output_tokens": int(mapping["output_tokens"]),
        "cost_usd": Decimal(mapping["cost_usd"]).normalize(),
    }

"""Usage reports over the request log: totals and breakdowns for a time range."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import create_sessionmaker
from .tables import BusinessUnit, Project, RequestLog, VirtualKey

GroupBy = Literal["project", "key", "model", "day", "business_unit"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)
MEASURES = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")


@dataclass(slots=True)
class UsageReport:
    since: datetime
    until: datetime
    group_by: str | None
    total: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

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
    if group_by == "model":
        return query.add_columns(RequestLog.model).group_by(RequestLog.model), ["model"]
    if group_by == "day":
        day = _day(dialect).label("day")
        return query.add_columns(day).group_by(day), ["day"]
    if group_by == "project":
        query = query.add_columns(Project.name.label("project"), Project.id.label("project_id"))
        return query.group_by(Project.id, Project.name), ["project", "project_id"]
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
    add nothing to ``cost_usd``.
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
    async with sessions() as session:
        total_row = (await session.execute(base)).one()
        total = _measure_dict(total_row)
        rows: list[dict[str, Any]] = []
        if group_by is not None:
            query, fields = _grouped(base, group_by, dialect)
            result = await session.execute(query.order_by(*(f for f in fields[:1])))
            for row in result:
                mapping = row._mapping
                rows.append({**{f: mapping[f] for f in fields}, **_measure_dict(row)})
    return UsageReport(since, until, group_by, total, rows)


def _measure_dict(row: Any) -> dict[str, Any]:
    mapping = row._mapping
    return {
        "requests": int(mapping["requests"]),
        "errors": int(mapping["errors"]),
        "input_tokens": int(mapping["input_tokens"]),
        "output_tokens": int(mapping["output_tokens"]),
        "cost_usd": Decimal(mapping["cost_usd"]).normalize(),
    }

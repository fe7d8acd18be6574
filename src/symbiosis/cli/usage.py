"""``symbiosis usage``: spend and tokens per project, key, model, day or business unit."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..settings import Settings
from ._output import fail, print_json, print_table
from .db import migrate_quietly, run

if TYPE_CHECKING:  # SQLAlchemy is imported only when the command runs
    from ..store.reports import UsageReport

FORMATS = ("table", "json", "csv")


def _moment(text: str, option: str, *, end_of_day: bool) -> datetime:
    """A date (``2026-11-01``) or an ISO-8601 date/time, in UTC; dates are whole UTC days.

    With ``end_of_day`` a date means the end of that day, so ``--until`` includes it.
    """
    try:
        if len(text) == 10:
            day = datetime.combine(datetime.fromisoformat(text).date(), time(), tzinfo=UTC)
            return day + timedelta(days=1) if end_of_day else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} takes a date like 2026-11-01 or an ISO-8601 time, not {text!r}")
    except OverflowError:
        fail(f"{option} {text!r} is out of range")
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def usage(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this date/time, inclusive (default: month start)")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Up to this date, inclusive, or this time, exclusive (default: now)"),
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by", metavar="project|key|model|day|business_unit", help="Break down by"
        ),
    ] = None,
    output: Annotated[
        str, typer.Option("--format", metavar="table|json|csv", help="Output format")
    ] = "table",
    json_output: Annotated[bool, typer.Option("--json", help="Same as --format json")] = False,
) -> None:
    """Report requests, errors, tokens and cost for a time range (UTC).

    Failed requests count in requests and errors. Business-unit rows add up the
    unit's projects.
    """
    from ..store.engine import create_engine
    from ..store.reports import GROUP_BYS, usage_report

    if json_output:
        output = "json"
    if output not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {output!r}")
    if group_by is not None and group_by not in GROUP_BYS:
        fail(f"--group-by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}")
    now = datetime.now(UTC)
    start = (
        _moment(since, "--since", end_of_day=False)
        if since
        else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    end = _moment(until, "--until", end_of_day=True) if until else now
    if end <= start:
        fail("--until must be after --since")
    url = Settings.from_env().database_url
    migrate_quietly(url)

    async def work() -> Any:
        engine = create_engine(url)
        try:
            return await usage_report(
                engine, since=start, until=end, group_by=group_by, project=project
            )
        finally:
            await engine.dispose()

    report = run(work())
    if output == "json":
        print_json(report.as_dict())
    elif output == "csv":
        _csv(report)
    else:
        _table(report)


def _csv(report: UsageReport) -> None:
    """A header row, then one row per group (or the total alone); numbers written plainly."""
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(report.fields)
    for row in report.rows if report.group_by else [report.total]:
        writer.writerow(["" if row[f] is None else _plain(row[f]) for f in report.fields])


def _table(report: UsageReport) -> None:
    typer.echo(
        f"usage from {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
        + (f", by {report.group_by}" if report.group_by else "")
    )
    groups = [f for f in report.fields if f not in report.total]
    rows = [[_plain(row[f]) for f in report.fields] for row in report.rows]
    total = [_plain(report.total[f]) for f in report.fields if f in report.total]
    rows.append(["TOTAL", *[""] * (len(groups) - 1), *total] if groups else total)
    print_table([f.upper() for f in report.fields], rows)


def _plain(value: Any) -> Any:
    """Decimals in positional notation (``100``, not ``1E+2``); the rest unchanged."""
    return format(value, "f") if isinstance(value, Decimal) else value

"""``symbiosis usage``: spend and tokens per project, key, model or day."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

import typer

from ..settings import Settings
from ._output import fail, print_json, print_table
from .db import migrate_quietly, run

FORMATS = ("table", "json", "csv")


def _moment(text: str, option: str, *, end_of_day: bool) -> datetime:
    """A date (``2026-11-01``) or an ISO-8601 date/time; dates are whole UTC days."""
    try:
        if len(text) == 10:
            day = datetime.combine(datetime.fromisoformat(text).date(), time(), tzinfo=UTC)
            return day + timedelta(days=1) if end_of_day else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} takes a date like 2026-11-01 or an ISO-8601 time, not {text!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def usage(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this date/time, inclusive (default: month start)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="To this date (inclusive) or time (default: now)")
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
    """Report requests, errors, tokens and cost for a time range (UTC)."""
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


def _csv(report: Any) -> None:
    fields = list(report.rows[0]) if report.rows else ["requests", "errors", "input_tokens",
                                                       "output_tokens", "cost_usd"]  # fmt: skip
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(fields)
    for row in report.rows or [report.total]:
        writer.writerow([_plain(row.get(f)) for f in fields])


def _table(report: Any) -> None:
    typer.echo(
        f"usage from {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
        + (f", by {report.group_by}" if report.group_by else "")
    )
    measures = ["requests", "errors", "input_tokens", "output_tokens", "cost_usd"]
    fields = [f for f in (report.rows[0] if report.rows else {}) if f not in measures]
    rows = [[_plain(r.get(f)) for f in fields + measures] for r in report.rows]
    rows.append(["TOTAL", *[""] * (len(fields) - 1), *(_plain(report.total[m]) for m in measures)]
                if fields else [_plain(report.total[m]) for m in measures])  # fmt: skip
    print_table([f.upper() for f in fields + measures], rows)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    return "" if value is None else value

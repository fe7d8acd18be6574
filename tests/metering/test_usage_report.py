"""Usage reports over request-log rows: totals, every breakdown, and `symbiosis usage`.

The rows are written straight into the request log (no gateway), with fixed times, so
every number below can be checked by hand: four projects, two in the business unit
``retail``, one in ``research``, one in none; one failed request; and rows just outside
the reported range on both sides.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from symbiosis.cli import app
from symbiosis.services.keys import KeyService
from symbiosis.services.usage import UsageEvent
from symbiosis.store.base import ProjectNotFoundError
from symbiosis.store.engine import create_engine
from symbiosis.store.reports import MEASURES, UsageReport, usage_report
from symbiosis.store.request_logs import SqlRequestLogSink

UNITS = {"shop": "retail", "search": "retail", "lab": "research", "solo": None}
SINCE = datetime(2026, 10, 31, tzinfo=UTC)
UNTIL = datetime(2026, 11, 2, tzinfo=UTC)  # exclusive: what `--until 2026-11-01` means


@dataclass(frozen=True)
class Row:
    project: str
    model: str
    at: datetime
    status: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


ROWS = [
    Row("shop", "gpt", _at("2026-10-30T23:59:59"), 200, 9, 9, Decimal(9)),  # before SINCE
    Row("shop", "gpt", _at("2026-10-31T10:00:00"), 200, 100, 50, Decimal("0.25")),
    Row("lab", "claude", _at("2026-10-31T00:00:00"), 200, 1000, 500, Decimal(2)),
    Row("shop", "claude", _at("2026-11-01T09:00:00"), 200, 200, 100, Decimal("0.5")),
    Row("search", "gpt", _at("2026-11-01T12:00:00"), 502, 12, 0, None),  # failed, unpriced
    Row("search", "gpt", _at("2026-11-01T23:59:59"), 200, 10, 5, Decimal("0.0125")),
    Row("solo", "gpt", _at("2026-11-01T08:00:00"), 200, 1, 1, Decimal("0.001")),
    Row("lab", "gpt", _at("2026-11-02T00:00:00"), 200, 7, 7, Decimal(1)),  # at UNTIL
]
IN_RANGE = [row for row in ROWS if SINCE <= row.at < UNTIL]
TOTAL = {
    "requests": 6,
    "errors": 1,
    "input_tokens": 1323,
    "output_tokens": 656,
    "cost_usd": Decimal("2.7635"),
}


@dataclass(frozen=True)
class Seeded:
    url: str
    project_ids: dict[str, str]
    key_ids: dict[str, str]


async def _seed(url: str) -> Seeded:
    keys = KeyService.from_url(url)
    try:
        projects = {
            name: await keys.create_project(name, business_unit=unit, actor="test")
            for name, unit in UNITS.items()
        }
        created = {
            name: await keys.create_key(name, name=f"{name}-ci", actor="test") for name in UNITS
        }
    finally:
        await keys.aclose()
    project_ids = {name: project.id for name, project in projects.items()}
    key_ids = {name: made.key.id for name, made in created.items()}
    events = [
        UsageEvent(
            request_id=f"req-{number}",
            model=row.model,
            at=row.at,
            key_id=key_ids[row.project],
            project_id=project_ids[row.project],
            status=row.status,
            error_type="upstream_error" if row.status >= 400 else None,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.cost_usd,
        )
        for number, row in enumerate(ROWS)
    ]
    engine = create_engine(url)
    try:
        await SqlRequestLogSink(engine).write(events)
    finally:
        await engine.dispose()
    return Seeded(url, project_ids, key_ids)


@pytest.fixture
def seeded(migrated_url: str) -> Seeded:
    return asyncio.run(_seed(migrated_url))


async def _report(url: str, **options: Any) -> UsageReport:
    engine = create_engine(url)
    try:
        return await usage_report(engine, **{"since": SINCE, "until": UNTIL, **options})
    finally:
        await engine.dispose()


def _measures(row: dict[str, Any]) -> dict[str, Any]:
    return {m: row[m] for m in MEASURES}


def _expected(group: Callable[[Row], str | None]) -> dict[str | None, dict[str, Any]]:
    """The breakdown computed here, row by row, to hold the SQL one against."""
    out: dict[str | None, dict[str, Any]] = {}
    for row in IN_RANGE:
        sums = out.setdefault(group(row), dict.fromkeys(MEASURES, 0))
        sums["requests"] += 1
        sums["errors"] += row.status >= 400
        sums["input_tokens"] += row.input_tokens
        sums["output_tokens"] += row.output_tokens
        sums["cost_usd"] += row.cost_usd or 0
    return out


def _by(report: UsageReport, field: str) -> dict[str | None, dict[str, Any]]:
    return {row[field]: _measures(row) for row in report.rows}


# -- store.reports.usage_report -------------------------------------------------------


async def test_totals_count_failed_requests_and_skip_rows_outside_the_range(
    seeded: Seeded,
) -> None:
    report = await _report(seeded.url)
    assert report.total == TOTAL
    assert (report.since, report.until, report.group_by, report.rows) == (SINCE, UNTIL, None, [])
    assert report.fields == MEASURES


async def test_by_project_each_row_carries_its_business_unit(seeded: Seeded) -> None:
    report = await _report(seeded.url, group_by="project")
    assert report.fields == ("project", "project_id", "business_unit", *MEASURES)
    assert [row["project"] for row in report.rows] == ["lab", "search", "shop", "solo"]
    assert _by(report, "project") == _expected(lambda row: row.project)
    for row in report.rows:
        assert row["project_id"] == seeded.project_ids[row["project"]]
        assert row["business_unit"] == UNITS[row["project"]]
    assert _by(report, "project")["search"]["errors"] == 1


async def test_business_unit_totals_roll_up_their_projects(seeded: Seeded) -> None:
    by_unit = await _report(seeded.url, group_by="business_unit")
    by_project = await _report(seeded.url, group_by="project")
    assert by_unit.fields == ("business_unit", *MEASURES)
    assert [row["business_unit"] for row in by_unit.rows] == ["research", "retail", None]
    assert _by(by_unit, "business_unit") == _expected(lambda row: UNITS[row.project])

    for unit in ("research", "retail", None):
        members = [_measures(r) for r in by_project.rows if r["business_unit"] == unit]
        summed = {m: sum(member[m] for member in members) for m in MEASURES}
        assert _by(by_unit, "business_unit")[unit] == summed
    assert _by(by_unit, "business_unit")["retail"] == {
        "requests": 4,
        "errors": 1,
        "input_tokens": 322,
        "output_tokens": 155,
        "cost_usd": Decimal("0.7625"),
    }
    assert by_unit.total == by_project.total == TOTAL


async def test_by_key_model_and_day(seeded: Seeded) -> None:
    by_key = await _report(seeded.url, group_by="key")
    assert by_key.fields == ("key_id", "key_name", "project", *MEASURES)
    owner = {key_id: project for project, key_id in seeded.key_ids.items()}
    assert _by(by_key, "key_id") == _expected(lambda row: seeded.key_ids[row.project])
    for row in by_key.rows:
        assert (row["project"], row["key_name"]) == (
            owner[row["key_id"]],
            f"{owner[row['key_id']]}-ci",
        )

    by_model = await _report(seeded.url, group_by="model")
    assert [row["model"] for row in by_model.rows] == ["claude", "gpt"]
    assert _by(by_model, "model") == _expected(lambda row: row.model)

    by_day = await _report(seeded.url, group_by="day")
    assert [row["day"] for row in by_day.rows] == ["2026-10-31", "2026-11-01"]
    assert _by(by_day, "day") == _expected(lambda row: row.at.date().isoformat())
    assert _by(by_day, "day")["2026-11-01"]["requests"] == 4  # 23:59:59 is still that day


async def test_one_project_and_an_unknown_one(seeded: Seeded) -> None:
    report = await _report(seeded.url, project="search", group_by="business_unit")
    assert report.total == {
        "requests": 2,
        "errors": 1,
        "input_tokens": 22,
        "output_tokens": 5,
        "cost_usd": Decimal("0.0125"),
    }
    assert [row["business_unit"] for row in report.rows] == ["retail"]
    with pytest.raises(ProjectNotFoundError, match="unknown project 'nope'"):
        await _report(seeded.url, project="nope")


# -- symbiosis usage ------------------------------------------------------------------

runner = CliRunner()
RANGE = ("--since", "2026-10-31", "--until", "2026-11-01")


def usage(url: str, *args: str) -> Result:
    return runner.invoke(app, ["usage", *args], env={"SYMBIOSIS_DATABASE_URL": url})


def ok(url: str, *args: str) -> str:
    result = usage(url, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--format", "json"))


def _decimal_measures(row: dict[str, Any]) -> dict[str, Any]:
    return {**_measures(row), "cost_usd": Decimal(str(row["cost_usd"]))}


def test_json_is_one_object_with_total_and_rows(seeded: Seeded) -> None:
    report = as_json(seeded.url, *RANGE, "--group-by", "business_unit")
    assert list(report) == ["since", "until", "group_by", "total", "rows"]
    assert (report["since"], report["until"]) == (SINCE.isoformat(), UNTIL.isoformat())
    assert report["group_by"] == "business_unit"
    assert _decimal_measures(report["total"]) == TOTAL
    assert [row["business_unit"] for row in report["rows"]] == ["research", "retail", None]
    rows = {row["business_unit"]: _decimal_measures(row) for row in report["rows"]}
    assert rows == _expected(lambda row: UNITS[row.project])

    plain = as_json(seeded.url, *RANGE)
    assert (plain["group_by"], plain["rows"]) == (None, [])
    assert _decimal_measures(plain["total"]) == TOTAL
    assert ok(seeded.url, *RANGE, "--json") == ok(seeded.url, *RANGE, "--format", "json")


def test_csv_has_a_header_then_one_plain_row_per_group(seeded: Seeded) -> None:
    text = ok(seeded.url, *RANGE, "--group-by", "project", "--format", "csv")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    assert header == ["project", "project_id", "business_unit", *MEASURES]
    ids = seeded.project_ids
    assert rows == [
        ["lab", ids["lab"], "research", "1", "0", "1000", "500", "2"],
        ["search", ids["search"], "retail", "2", "1", "22", "5", "0.0125"],
        ["shop", ids["shop"], "retail", "2", "0", "300", "150", "0.75"],
        ["solo", ids["solo"], "", "1", "0", "1", "1", "0.001"],
    ]

    header, *rows = list(csv.reader(io.StringIO(ok(seeded.url, *RANGE, "--format", "csv"))))
    assert header == list(MEASURES)
    assert rows == [["6", "1", "1323", "656", "2.7635"]]


def test_table_has_a_row_per_group_and_a_total(seeded: Seeded) -> None:
    lines = ok(seeded.url, *RANGE, "--group-by", "business_unit").splitlines()
    assert lines[0] == "usage from 2026-10-31 00:00 to 2026-11-02 00:00 UTC, by business_unit"
    assert lines[1].split() == [
        "BUSINESS_UNIT", "REQUESTS", "ERRORS", "INPUT_TOKENS", "OUTPUT_TOKENS", "COST_USD"
    ]  # fmt: skip
    assert [line.split() for line in lines[2:]] == [
        ["research", "1", "0", "1000", "500", "2"],
        ["retail", "4", "1", "322", "155", "0.7625"],
        ["-", "1", "0", "1", "1", "0.001"],
        ["TOTAL", "6", "1", "1323", "656", "2.7635"],
    ]
    lines = ok(seeded.url, *RANGE).splitlines()
    assert lines[1].split() == [m.upper() for m in MEASURES]
    assert lines[2].split() == ["6", "1", "1323", "656", "2.7635"]


@pytest.mark.parametrize(
    ("args", "requests"),
    [
        # --until DAY includes the whole day: 23:59:59 in, the next midnight out.
        (("--since", "2026-11-01", "--until", "2026-11-01"), 4),
        (("--since", "2026-10-31", "--until", "2026-10-31"), 2),
        (("--since", "2026-10-30", "--until", "2026-11-02"), 8),
        # A time is exact: from 12:00 inclusive, to just after the next midnight.
        (("--since", "2026-11-01T12:00:00Z", "--until", "2026-11-02T00:00:01Z"), 3),
        (("--since", "2026-11-01T13:00:00+01:00", "--until", "2026-11-02T00:00:00"), 2),
        ((*RANGE, "--project", "search"), 2),
    ],
)
def test_since_and_until_select_the_rows(
    seeded: Seeded, args: tuple[str, ...], requests: int
) -> None:
    assert as_json(seeded.url, *args)["total"]["requests"] == requests


def test_since_and_until_are_reported_in_utc(seeded: Seeded) -> None:
    report = as_json(seeded.url, "--since", "2026-11-01T13:00:00+01:00", "--until", "2026-11-02")
    assert (report["since"], report["until"]) == (
        "2026-11-01T12:00:00+00:00",
        "2026-11-03T00:00:00+00:00",
    )


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--group-by", "nope"],
            "--group-by must be one of project, key, model, day, business_unit, not 'nope'",
        ),
        (["--since", "yesterday"], "--since takes a date like 2026-11-01"),
        (["--until", "2026-13-01"], "--until takes a date like 2026-11-01"),
        (["--until", "9999-12-31"], "--until '9999-12-31' is out of range"),
        (["--format", "xml"], "--format must be one of table, json, csv, not 'xml'"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "--until must be after --since"),
    ],
)
def test_bad_input_is_one_line_before_the_database(
    tmp_path: Path, args: list[str], message: str
) -> None:
    database = tmp_path / "untouched.db"
    assert message in _one_line_error(usage(f"sqlite+aiosqlite:///{database}", *args))
    assert not database.exists()


def test_an_unknown_project_is_one_line(seeded: Seeded) -> None:
    line = _one_line_error(usage(seeded.url, *RANGE, "--project", "nope"))
    assert line == "error: unknown project 'nope'"

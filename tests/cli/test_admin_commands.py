"""`symbiosis db`, `projects` and `keys` against real databases, as an operator types them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from symbiosis.cli import app
from symbiosis.cli.keys import parse_expiry
from symbiosis.exceptions import AuthenticationError
from symbiosis.services.keys import KeyService
from symbiosis.store.migrate import head_revision

runner = CliRunner()
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/symbiosis"


def cli(url: str, *args: str) -> Result:
    return runner.invoke(app, list(args), env={"SYMBIOSIS_DATABASE_URL": url})


def ok(url: str, *args: str) -> Result:
    result = cli(url, *args)
    assert result.exit_code == 0, result.output
    return result


def json_of(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json").stdout)


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


async def _verify(url: str, secret: str) -> str:
    keys = KeyService.from_url(url)
    try:
        return (await keys.verify(secret)).project_name
    finally:
        await keys.aclose()


def test_db_migrate_once_then_up_to_date(database_url: str) -> None:
    head = head_revision()
    assert f"from empty to {head}" in ok(database_url, "db", "migrate").stdout
    assert f"is up to date (revision {head})" in ok(database_url, "db", "migrate").stdout
    report = json_of(database_url, "db", "migrate")
    assert (report["before"], report["after"]) == (head, head)


def test_projects_and_keys_from_create_to_revoke(database_url: str) -> None:
    # The first command finds an empty database and migrates it on the way.
    project = json_of(database_url, "projects", "create", "alpha", "--budget", "100")
    assert project["name"] == "alpha"
    assert (project["budget_usd"], project["budget_period"]) == (100, "monthly")
    created = ok(database_url, "projects", "create", "beta", "--budget", "12.5",
                 "--budget-period", "weekly")  # fmt: skip
    assert "created project beta" in created.stdout
    assert "$12.5 weekly" in created.stdout
    assert [p["name"] for p in json_of(database_url, "projects", "list")] == ["alpha", "beta"]
    table = ok(database_url, "projects", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "BUSINESS", "UNIT", "ID", "RPM", "TPM", "BUDGET", "CREATED"]
    assert table[1].startswith("alpha")
    assert "$100 monthly" in table[1]

    key = json_of(database_url, "keys", "create", "--project", "alpha", "--name", "ci",
                  "--models", "a, b", "--rpm", "10", "--tpm", "1000", "--budget", "5",
                  "--expires-in", "30d")  # fmt: skip
    assert key["project"] == "alpha"
    assert key["id"].startswith("key_")
    assert key["key"].startswith("sk-sym-")
    assert key["allowed_models"] == ["a", "b"]
    assert (key["rpm_limit"], key["tpm_limit"], key["budget_usd"]) == (10, 1000, 5)
    expires = datetime.fromisoformat(key["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert asyncio.run(_verify(database_url, key["key"])) == "alpha"

    human = ok(database_url, "keys", "create", "--project", "beta").stdout
    assert "shown only now" in human
    other_secret = human.strip().splitlines()[-1].strip()
    assert other_secret.startswith("sk-sym-")

    listed = ok(database_url, "keys", "list", "--project", "alpha", "--json").stdout
    assert key["key"] not in listed
    assert other_secret not in ok(database_url, "keys", "list").stdout
    (entry,) = json.loads(listed)
    assert (entry["id"], entry["status"], entry["prefix"]) == (key["id"], "active", key["key"][:12])
    assert "key_hash" not in entry
    assert len(json_of(database_url, "keys", "list")) == 2

    revoked = json_of(database_url, "keys", "revoke", key["id"])
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None
    assert "revoked key" in ok(database_url, "keys", "revoke", key["id"]).stdout  # idempotent
    with pytest.raises(AuthenticationError, match="revoked"):
        asyncio.run(_verify(database_url, key["key"]))
    rows = ok(database_url, "keys", "list").stdout.splitlines()
    assert rows[0].split()[-1] == "STATUS"
    assert {row.split()[-1] for row in rows[1:]} == {"revoked", "active"}


def test_every_command_is_audited_with_the_operator(migrated_url: str) -> None:
    ok(migrated_url, "projects", "create", "p")
    ok(migrated_url, "keys", "create", "--project", "p")
    ok(migrated_url, "keys", "list")

    async def audit() -> list[tuple[str, str]]:
        keys = KeyService.from_url(migrated_url)
        try:
            return [(e.action, e.actor) for e in await keys.recent_audit()]
        finally:
            await keys.aclose()

    entries = asyncio.run(audit())
    assert [action for action, _ in entries] == ["key.list", "key.create", "project.create"]
    assert all(actor.startswith("cli") for _, actor in entries)


def test_projects_take_rate_limits(migrated_url: str) -> None:
    project = json_of(migrated_url, "projects", "create", "alpha", "--rpm", "600",
                      "--tpm", "2000000")  # fmt: skip
    assert (project["rpm_limit"], project["tpm_limit"]) == (600, 2_000_000)
    created = ok(migrated_url, "projects", "create", "beta", "--rpm", "30").stdout
    assert created.startswith("created project beta (proj_")
    assert created.rstrip().endswith(", 30 rpm")
    listed = {p["name"]: p for p in json_of(migrated_url, "projects", "list")}
    assert (listed["alpha"]["rpm_limit"], listed["alpha"]["tpm_limit"]) == (600, 2_000_000)
    assert (listed["beta"]["rpm_limit"], listed["beta"]["tpm_limit"]) == (30, None)
    table = ok(migrated_url, "projects", "list").stdout.splitlines()
    assert table[0].split()[:6] == ["NAME", "BUSINESS", "UNIT", "ID", "RPM", "TPM"]
    assert table[1].split()[3:6] == ["600", "2000000", "-"]
    assert table[2].split()[3:6] == ["30", "-", "-"]

    key = json_of(migrated_url, "keys", "create", "--project", "alpha")
    assert (key["project_rpm_limit"], key["project_tpm_limit"]) == (600, 2_000_000)
    assert cli(migrated_url, "projects", "create", "gamma", "--rpm", "0").exit_code == 1


def test_projects_belong_to_business_units(migrated_url: str) -> None:
    shop = json_of(migrated_url, "projects", "create", "shop", "--business-unit", "retail")
    assert shop["business_unit"] == "retail"
    assert shop["business_unit_id"].startswith("bu_")
    created = ok(migrated_url, "projects", "create", "search", "--business-unit", "retail",
                 "--rpm", "30").stdout  # fmt: skip
    assert created.startswith("created project search (proj_")
    assert created.rstrip().endswith(") in business unit retail, 30 rpm")
    ok(migrated_url, "projects", "create", "lab", "--business-unit", "research")
    ok(migrated_url, "projects", "create", "solo")

    listed = {p["name"]: p for p in json_of(migrated_url, "projects", "list")}
    assert {name: p["business_unit"] for name, p in listed.items()} == {
        "lab": "research",
        "search": "retail",
        "shop": "retail",
        "solo": None,
    }
    assert listed["search"]["business_unit_id"] == shop["business_unit_id"]
    table = ok(migrated_url, "projects", "list").stdout.splitlines()
    assert [row.split()[:2] for row in table[1:]] == [
        ["lab", "research"],
        ["search", "retail"],
        ["shop", "retail"],
        ["solo", "-"],
    ]

    units = json_of(migrated_url, "business-units", "list")
    assert [(u["name"], u["project_count"]) for u in units] == [("research", 1), ("retail", 2)]
    assert units[1]["id"] == shop["business_unit_id"]
    assert set(units[0]) == {"id", "name", "project_count", "created_at"}
    table = ok(migrated_url, "business-units", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "ID", "PROJECTS", "CREATED"]
    assert table[2].split()[:3] == ["retail", shop["business_unit_id"], "2"]


def test_no_business_units_yet_is_an_empty_listing(migrated_url: str) -> None:
    assert json_of(migrated_url, "business-units", "list") == []
    assert ok(migrated_url, "business-units", "list").stdout.split() == [
        "NAME", "ID", "PROJECTS", "CREATED"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["projects", "create", "taken"], "project 'taken' already exists"),
        (["projects", "create", "taken", "--business-unit", "bu"], "'taken' already exists"),
        (["projects", "create", "x", "--business-unit", ""], "invalid business_unit"),
        (["projects", "create", "x", "--rpm", "0"], "--rpm must be at least 1, not '0'"),
        (["projects", "create", "x", "--tpm", "-5"], "--tpm must be at least 1, not '-5'"),
        (["projects", "create", "x", "--rpm", "lots"], "--rpm must be a whole number"),
        (["projects", "create", "x", "--tpm", "1.5"], "--tpm must be a whole number"),
        (["keys", "create", "--project", "taken", "--rpm", "0"], "--rpm must be at least 1"),
        (["keys", "create", "--project", "taken", "--tpm", "many"], "--tpm must be a whole"),
        (["keys", "create", "--project", "nope"], "unknown project 'nope'"),
        (["keys", "list", "--project", "nope"], "unknown project 'nope'"),
        (["keys", "revoke", "key_nope"], "unknown key 'key_nope'"),
        (["keys", "create", "--project", "taken", "--expires-in", "2x"], "takes a duration"),
        (["keys", "create", "--project", "taken", "--expires-in", "2001-01-01"], "in the past"),
        (["keys", "create", "--project", "taken", "--expires-in", "0d"], "longer than zero"),
        (["projects", "create", "x", "--budget", "lots"], "amount in US dollars"),
        (["projects", "create", "x", "--budget", "-3"], "positive amount"),
        (["projects", "create", "x", "--budget", "3", "--budget-period", "hourly"], "one of"),
        (["projects", "create", "x", "--budget-period", "daily"], "needs --budget"),
    ],
)
def test_mistakes_are_one_line(
    sqlite_template: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    (tmp_path / "cli.db").write_bytes(sqlite_template.read_bytes())
    ok(url, "projects", "create", "taken")
    assert message in one_line_error(cli(url, *args))


@pytest.mark.parametrize(
    "args",
    [["db", "migrate"], ["projects", "list"], ["keys", "list"], ["business-units", "list"]],
)
def test_an_unreachable_database_is_one_line(args: list[str]) -> None:
    line = one_line_error(cli(UNREACHABLE, *args))
    assert "cannot reach the database at postgresql+asyncpg://postgres@127.0.0.1:1" in line


def test_the_real_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "SYMBIOSIS_DATABASE_URL": UNREACHABLE}
    result = subprocess.run(
        [sys.executable, "-m", "symbiosis", "keys", "create", "--project", "p"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cannot reach the database")


def test_serve_no_migrate_leaves_the_schema_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'untouched.db'}"
    env = {**os.environ, "SYMBIOSIS_DATABASE_URL": url, "SYMBIOSIS_CONFIG": ""}
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "symbiosis", "serve", "--no-migrate", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        response = _get_when_up(f"http://127.0.0.1:{port}/health/ready")
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert response.status_code == 503
    assert "symbiosis db migrate" in response.json()["problems"]["database"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_when_up(url: str, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry(text, now) == now + expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2031-02-03", datetime(2031, 2, 3, tzinfo=UTC)),
        ("2031-02-03T04:05:06Z", datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)),
        ("2031-02-03T04:05:06+02:00", datetime(2031, 2, 3, 2, 5, 6, tzinfo=UTC)),
        ("2031-02-03 04:05", datetime(2031, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_iso_dates_are_utc_unless_they_say(text: str, expected: datetime) -> None:
    assert parse_expiry(text, datetime(2030, 1, 1, tzinfo=UTC)) == expected

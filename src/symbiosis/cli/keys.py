"""``symbiosis keys``: create, list and revoke virtual keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from ..services.keys import CreatedKey, KeyService
from ..store.base import KeyRecord
from ._output import fail, money, print_json, print_table, when
from .db import administer
from .projects import BudgetOption, JsonOption, PeriodOption, parse_budget, parse_limit

app = typer.Typer(help="Virtual keys: create, list and revoke them.", no_args_is_help=True)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@app.command("create")
def create(
    project: Annotated[str, typer.Option("--project", help="Project the key belongs to")],
    name: Annotated[str | None, typer.Option("--name", help="A label for people")] = None,
    models: Annotated[
        str | None,
        typer.Option("--models", metavar="A,B", help="Allowed models (default: all)"),
    ] = None,
    rpm: Annotated[str | None, typer.Option("--rpm", help="Requests per minute")] = None,
    tpm: Annotated[str | None, typer.Option("--tpm", help="Tokens per minute")] = None,
    budget: BudgetOption = None,
    budget_period: PeriodOption = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            metavar="DURATION|DATE",
            help="90s, 15m, 12h, 30d, or an ISO-8601 date/time (UTC unless it says)",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a key; its secret is printed this once and cannot be shown again."""
    amount, period = parse_budget(budget, budget_period)
    rpm_limit, tpm_limit = parse_limit("--rpm", rpm), parse_limit("--tpm", tpm)
    expires_at = parse_expiry(expires_in, datetime.now(UTC)) if expires_in else None
    allowed = [m.strip() for m in (models or "").split(",") if m.strip()]

    async def work(keys: KeyService, actor: str) -> CreatedKey:
        return await keys.create_key(
            project,
            name=name,
            models=allowed,
            rpm_limit=rpm_limit,
            tpm_limit=tpm_limit,
            budget_usd=amount,
            budget_period=period,
            expires_at=expires_at,
            actor=actor,
        )

    created = administer(work)
    if json_output:
        print_json({"key": created.secret, "project": project, **_public(created.key)})
        return
    record = created.key
    label = f" '{record.name}'" if record.name else ""
    typer.echo(f"created key {record.id}{label} for project {record.project_name}")
    typer.echo(f"  models:  {', '.join(record.allowed_models) or 'all of the project'}")
    if record.expires_at:
        typer.echo(f"  expires: {when(record.expires_at)}")
    typer.echo("")
    typer.echo("Secret (shown only now; store it safely):")
    typer.echo(f"  {created.secret}")


@app.command("list")
def list_(
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project's keys")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List keys (never their secrets)."""

    async def work(keys: KeyService, actor: str) -> list[KeyRecord]:
        return await keys.list_keys(project=project, actor=actor)

    records = administer(work)
    if json_output:
        print_json([_public(r) for r in records])
        return
    print_table(
        ["ID", "PROJECT", "NAME", "PREFIX", "MODELS", "LIMITS", "EXPIRES", "LAST USED", "STATUS"],
        [
            [
                r.id,
                r.project_name,
                r.name,
                f"{r.prefix}…",
                ",".join(r.allowed_models) or "all",
                _limits(r),
                r.expires_at,
                r.last_used_at,
                _status(r),
            ]
            for r in records
        ],
    )


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key id (key_…)")],
    json_output: JsonOption = False,
) -> None:
    """Revoke a key: every gateway replica refuses it within seconds."""

    async def work(keys: KeyService, actor: str) -> KeyRecord:
        return await keys.revoke_key(key_id, actor=actor)

    record = administer(work)
    if json_output:
        print_json(_public(record))
    else:
        typer.echo(f"revoked key {record.id} of project {record.project_name}")


def parse_expiry(text: str, now: datetime) -> datetime:
    """``90s``, ``15m``, ``12h``, ``30d`` from ``now``, or an ISO-8601 date or date-time.

    A date or time without a zone is taken as UTC. The result must lie in the future.
    """
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0:
            fail(f"--expires-in must be longer than zero, not {text!r}")
        try:
            moment = now + timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            fail(f"--expires-in {text!r} is too far in the future")
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            fail(
                f"--expires-in takes a duration (90s, 15m, 12h, 30d) or an ISO-8601 "
                f"date/time (2030-01-31 or 2030-01-31T18:00:00Z), not {text!r}"
            )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        fail(f"--expires-in {text!r} is in the past")
    return moment.astimezone(UTC)


def _public(record: KeyRecord) -> dict[str, Any]:
    return {**record.model_dump(), "status": _status(record)}


def _status(record: KeyRecord) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


def _limits(record: KeyRecord) -> str | None:
    parts = [
        f"{record.rpm_limit} rpm" if record.rpm_limit else None,
        f"{record.tpm_limit} tpm" if record.tpm_limit else None,
        money(record.budget_usd, record.budget_period),
    ]
    return ", ".join(p for p in parts if p) or None

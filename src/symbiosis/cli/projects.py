"""``symbiosis projects``: the projects that keys and budgets belong to."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from ..services.keys import KeyService
from ..store.base import BUDGET_PERIODS, ProjectRecord
from ._output import fail, money, print_json, print_table
from .db import administer

app = typer.Typer(
    help="Projects: create and list them, each optionally in a business unit.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
BudgetOption = Annotated[
    str | None, typer.Option("--budget", metavar="USD", help="Spending limit in US dollars")
]
PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--budget-period",
        metavar="|".join(BUDGET_PERIODS),
        help="Period the budget applies to (default: monthly)",
    ),
]
RpmOption = Annotated[
    str | None,
    typer.Option("--rpm", metavar="N", help="Requests per minute, all the project's keys together"),
]
TpmOption = Annotated[
    str | None,
    typer.Option("--tpm", metavar="N", help="Tokens per minute, all the project's keys together"),
]
BusinessUnitOption = Annotated[
    str | None,
    typer.Option(
        "--business-unit",
        metavar="NAME",
        help="Business unit the project belongs to (created if new)",
    ),
]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Unique project name")],
    business_unit: BusinessUnitOption = None,
    budget: BudgetOption = None,
    budget_period: PeriodOption = None,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a project."""
    amount, period = parse_budget(budget, budget_period)
    rpm_limit, tpm_limit = parse_limit("--rpm", rpm), parse_limit("--tpm", tpm)

    async def work(keys: KeyService, actor: str) -> ProjectRecord:
        return await keys.create_project(
            name,
            business_unit=business_unit,
            rpm_limit=rpm_limit,
            tpm_limit=tpm_limit,
            budget_usd=amount,
            budget_period=period,
            actor=actor,
        )

    project = administer(work)
    if json_output:
        print_json(project.model_dump())
        return
    budget_text = money(project.budget_usd, project.budget_period)
    parts = [
        f"{project.rpm_limit} rpm" if project.rpm_limit else None,
        f"{project.tpm_limit} tpm" if project.tpm_limit else None,
        f"budget {budget_text}" if budget_text else None,
    ]
    suffix = "".join(f", {part}" for part in parts if part)
    unit = f" in business unit {project.business_unit}" if project.business_unit else ""
    typer.echo(f"created project {project.name} ({project.id}){unit}{suffix}")


@app.command("list")
def list_(json_output: JsonOption = False) -> None:
    """List the projects."""

    async def work(keys: KeyService, actor: str) -> list[ProjectRecord]:
        return await keys.list_projects(actor=actor)

    projects = administer(work)
    if json_output:
        print_json([p.model_dump() for p in projects])
        return
    print_table(
        ["NAME", "BUSINESS UNIT", "ID", "RPM", "TPM", "BUDGET", "CREATED"],
        [
            [
                p.name,
                p.business_unit,
                p.id,
                p.rpm_limit,
                p.tpm_limit,
                money(p.budget_usd, p.budget_period),
                p.created_at,
            ]
            for p in projects
        ],
    )


def parse_limit(option: str, text: str | None) -> int | None:
    """A per-minute limit such as ``--rpm 60``: a whole number of at least 1."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        fail(f"{option} must be a whole number, such as 60, not {text!r}")
    if value < 1:
        fail(f"{option} must be at least 1, not {text!r}")
    return value


def parse_budget(budget: str | None, period: str | None) -> tuple[Decimal | None, str | None]:
    """``--budget`` and ``--budget-period`` checked, with one-line errors."""
    if period is not None and period not in BUDGET_PERIODS:
        fail(f"--budget-period must be one of {', '.join(BUDGET_PERIODS)}, not {period!r}")
    if budget is None:
        if period is not None:
            fail("--budget-period needs --budget")
        return None, None
    try:
        amount = Decimal(budget.removeprefix("$"))
    except InvalidOperation:
        fail(f"--budget must be an amount in US dollars, such as 250 or 12.50, not {budget!r}")
    if not amount.is_finite() or amount < 0:
        fail(f"--budget must be a positive amount in US dollars, not {budget!r}")
    return amount, period

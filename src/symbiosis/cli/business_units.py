"""``symbiosis business-units``: the groups of projects that usage reports roll up."""

from __future__ import annotations

import typer

from ..services.keys import KeyService
from ..store.base import BusinessUnitRecord
from ._output import print_json, print_table
from .db import administer
from .projects import JsonOption

app = typer.Typer(
    help="Business units: list them (projects create --business-unit makes them).",
    no_args_is_help=True,
)


@app.command("list")
def list_(json_output: JsonOption = False) -> None:
    """List the business units and how many projects each has."""

    async def work(keys: KeyService, actor: str) -> list[BusinessUnitRecord]:
        return await keys.list_business_units(actor=actor)

    units = administer(work)
    if json_output:
        print_json([unit.model_dump() for unit in units])
        return
    print_table(
        ["NAME", "ID", "PROJECTS", "CREATED"],
        [[unit.name, unit.id, unit.project_count, unit.created_at] for unit in units],
    )

"""``symbiosis db``: the database schema; and how admin commands reach the database."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..exceptions import ConfigError, SymbiosisError
from ..services.keys import KeyService
from ..settings import Settings
from ._output import fail, print_json

T = TypeVar("T")

app = typer.Typer(help="The database: schema migrations.", no_args_is_help=True)


@app.command("migrate")
def migrate(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Bring the database ($SYMBIOSIS_DATABASE_URL) to the newest schema."""
    from ..store.engine import redact

    url = Settings.from_env().database_url
    result = run(_upgrade(url))
    if json_output:
        print_json({"database": redact(url), "before": result.before, "after": result.after})
    elif result.changed:
        typer.echo(f"migrated {redact(url)} from {result.before or 'empty'} to {result.after}")
    else:
        typer.echo(f"{redact(url)} is up to date (revision {result.after})")


@app.command("revision", hidden=True)
def revision(
    message: Annotated[str, typer.Argument(help="What the change does")],
) -> None:
    """(Developers) write a migration for the table changes, from a source tree."""
    from ..store.migrate import revision as write_revision

    url = Settings.from_env().database_url
    run(_upgrade(url))
    path: Path = run(write_revision(url, message))
    typer.echo(f"wrote {path}")


async def _upgrade(url: str) -> Any:
    from ..store.migrate import upgrade

    return await upgrade(url)


def migrate_quietly(url: str) -> None:
    """Migrate before serving or administering; says something only when it changed."""
    from ..store.engine import redact
    from ..store.schema_version import is_current

    if run(is_current(url)):
        return
    result = run(_upgrade(url))
    if result.changed:
        typer.echo(
            f"migrated {redact(url)} from {result.before or 'empty'} to {result.after}", err=True
        )


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a configuration or service error ends the command with one line."""
    try:
        return asyncio.run(work)
    except (ConfigError, SymbiosisError) as exc:
        fail(exc.message if isinstance(exc, SymbiosisError) else str(exc))


def administer(work: Callable[[KeyService, str], Awaitable[T]]) -> T:
    """Run an administrative action against $SYMBIOSIS_DATABASE_URL, migrated first.

    ``work`` gets the key service and the actor the audit log records (``cli:<user>``).
    """
    url = Settings.from_env().database_url
    migrate_quietly(url)

    async def session() -> T:
        keys = KeyService.from_url(url)
        try:
            return await work(keys, _actor())
        finally:
            await keys.aclose()

    return run(session())


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"

"""The ``symbiosis`` command line: a thin Typer layer over the gateway and services."""

from __future__ import annotations

import sys

import typer

from ..exceptions import ConfigError, SymbiosisError
from . import business_units, db, demo, keys, projects, serve, usage

app = typer.Typer(
    name="symbiosis",
    help="Symbiosis: an OpenAI-compatible LLM gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.add_typer(db.app, name="db")
app.add_typer(projects.app, name="projects")
app.add_typer(business_units.app, name="business-units")
app.add_typer(keys.app, name="keys")
app.command("usage")(usage.usage)


def main() -> None:
    """Entry point: every failure is one line on stderr and a non-zero exit code."""
    try:
        app(standalone_mode=True)
    except (ConfigError, SymbiosisError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)

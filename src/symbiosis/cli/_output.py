"""How admin commands print: aligned tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

import orjson
import typer


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Pretty JSON on stdout; decimals become numbers, datetimes ISO-8601 strings."""
    typer.echo(orjson.dumps(data, default=_json_default, option=orjson.OPT_INDENT_2).decode())


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; None shows as ``-``."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        typer.echo("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))


def money(amount: Decimal | None, period: str | None = None) -> str | None:
    if amount is None:
        return None
    text = f"${amount.normalize():f}"
    return f"{text} {period}" if period else text


def when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value) or "-"
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")

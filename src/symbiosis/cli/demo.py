"""``symbiosis demo``."""

from __future__ import annotations

import typer


def demo() -> None:
    """Run a gateway against a built-in fake provider and send it real OpenAI SDK requests."""
    from ..demo.runner import run_demo

    run_demo(typer.echo)

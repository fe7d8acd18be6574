"""The command line: help everywhere, a demo that completes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from symbiosis.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["serve"], ["demo"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_demo_round_trip() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "symbiosis", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Round trip OK" in result.stdout
    assert "Chat completion in" in result.stdout
    assert "Traceback" not in result.stderr

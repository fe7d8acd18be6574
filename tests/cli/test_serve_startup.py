"""What ``symbiosis serve`` loads before it serves: only what serving needs.

On a database already at the newest schema the migration check must not import Alembic
(about a second and several MB), and a gateway on SQLite must not load SQLAlchemy's
PostgreSQL dialect. Checked in a fresh interpreter, whose ``sys.modules`` is its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

_SERVE_START = """
import sys
from symbiosis.cli.db import migrate_quietly
from symbiosis.gateway import create_app
from symbiosis.settings import Settings
migrate_quietly(sys.argv[1])
create_app(Settings(database_url=sys.argv[1]))
print(" ".join(m for m in ("alembic", "sqlalchemy.dialects.postgresql") if m in sys.modules))
"""


def test_a_current_sqlite_gateway_loads_neither_alembic_nor_postgresql(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "current.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite+aiosqlite:///{database}"
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_START, url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""

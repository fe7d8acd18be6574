"""Turn driver errors into ``StoreUnavailableError`` with a one-line reason, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .base import StoreUnavailableError
from .engine import redact

_UNDEFINED_TABLE = "42P01"  # PostgreSQL SQLSTATE
_MIGRATE_HINT = "run `symbiosis db migrate`"


@contextmanager
def translate_db_errors(url: str) -> Iterator[None]:
    """Connection failures and a missing schema become ``StoreUnavailableError``.

    Anything else (a constraint violation, a bug in a query) passes through unchanged.
    """
    where = redact(url)
    try:
        yield
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreUnavailableError(
            f"cannot reach the database at {where}: {reason or type(exc).__name__}"
        ) from exc
    except DBAPIError as exc:
        reason = _first_line(exc)
        if _is_missing_table(exc, reason):
            raise StoreUnavailableError(
                f"the database at {where} has no Symbiosis schema yet ({reason}): {_MIGRATE_HINT}"
            ) from exc
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            raise StoreUnavailableError(f"cannot use the database at {where}: {reason}") from exc
        if "does not exist" in reason and "database" in reason:
            raise StoreUnavailableError(f"cannot use the database at {where}: {reason}") from exc
        raise


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _is_missing_table(exc: DBAPIError, reason: str) -> bool:
    return getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE or reason.startswith(
        "no such table"
    )

"""The SQL sink of the request-log writer: one multi-row insert per batch, idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncEngine

from ..services.usage import UsageEvent
from ._upsert import insert_for
from .engine import create_sessionmaker
from .tables import RequestLog

_COLUMNS = frozenset(RequestLog.__table__.columns.keys()) - {"id"}


class SqlRequestLogSink:
    """Writes batches; a ``request_id`` already stored is skipped, so replays are safe."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = create_sessionmaker(engine)

    async def write(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        rows = [_row(event) for event in events]
        async with self._sessions() as session, session.begin():
            await session.execute(
                insert_for(session, RequestLog)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["request_id"])
            )


def _row(event: UsageEvent) -> dict[str, object]:
    return {k: v for k, v in asdict(event).items() if k in _COLUMNS}

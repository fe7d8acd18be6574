"""The request-log sink stores what clients send, however long, on both databases."""

from __future__ import annotations

from sqlalchemy import select

from symbiosis.services.usage import UsageEvent
from symbiosis.store.engine import create_engine, create_sessionmaker
from symbiosis.store.request_logs import SqlRequestLogSink
from symbiosis.store.tables import RequestLog


async def test_overlong_client_strings_are_cut_not_refused(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        event = UsageEvent(
            "req_1", "chat-model", user_agent="a" * 2000, end_user="u" * 2000, client="c" * 500
        )
        await SqlRequestLogSink(engine).write([event, UsageEvent("req_2", "chat-model")])
        async with create_sessionmaker(engine)() as session:
            rows = list((await session.execute(select(RequestLog))).scalars())
    finally:
        await engine.dispose()
    assert sorted(r.request_id for r in rows) == ["req_1", "req_2"]  # the batch went in
    long = next(r for r in rows if r.request_id == "req_1")
    assert (len(long.user_agent), len(long.end_user), len(long.client)) == (512, 256, 128)

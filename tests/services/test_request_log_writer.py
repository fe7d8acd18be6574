"""The request-log writer batches: a steady trickle of requests makes few transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from symbiosis.services.request_log import RequestLogWriter
from symbiosis.services.spool import DiskSpool
from symbiosis.services.usage import UsageEvent


class SlowSink:
    """Takes 20 ms per batch, as a database commit might."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.stored: list[str] = []

    async def write(self, events: Sequence[UsageEvent]) -> None:
        await asyncio.sleep(0.02)
        self.batches.append(len(events))
        self.stored += [e.request_id for e in events]


async def test_records_arriving_during_a_write_wait_for_the_next_flush(tmp_path: Path) -> None:
    sink = SlowSink()
    writer = RequestLogWriter(sink, DiskSpool(tmp_path, max_bytes=1 << 20), interval=0.25)
    await writer.start()
    sent = 0
    for _ in range(100):  # 100 requests over ~0.6 s, one every ~6 ms
        writer.record(UsageEvent(f"req_{sent}", "m"))
        sent += 1
        await asyncio.sleep(0.006)
    await writer.stop()
    assert sink.stored == [f"req_{i}" for i in range(sent)]  # all of them, once, in order
    # About one transaction per interval, not one per 20 ms write.
    assert len(sink.batches) <= 6, sink.batches


class GatedSink:
    """A database commit that takes until the test lets it finish."""

    def __init__(self) -> None:
        self.writing = asyncio.Event()
        self.release = asyncio.Event()
        self.stored: list[str] = []

    async def write(self, events: Sequence[UsageEvent]) -> None:
        self.writing.set()
        await self.release.wait()
        self.stored += [e.request_id for e in events]


async def test_stop_during_a_write_loses_nothing(tmp_path: Path) -> None:
    """Shutdown (SIGTERM) while a periodic flush is writing: its batch is not dropped."""
    sink = GatedSink()
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    writer = RequestLogWriter(sink, spool, interval=0.01)
    await writer.start()
    for i in range(5):
        writer.record(UsageEvent(f"req_{i}", "m"))
    await asyncio.wait_for(sink.writing.wait(), 5)  # the flush has taken the batch
    stopping = asyncio.create_task(writer.stop())
    await asyncio.sleep(0.05)
    writer.record(UsageEvent("req_5", "m"))  # finished while the gateway was stopping
    sink.release.set()
    await asyncio.wait_for(stopping, 5)
    assert sink.stored == [f"req_{i}" for i in range(6)]
    assert not spool.files()

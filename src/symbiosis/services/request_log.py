"""Write request logs in batches, off the request path, losing none.

``record`` only appends to memory. A background task flushes every ``interval``
seconds (or sooner when a batch fills) to a sink, such as the SQL request-log table.
When the sink fails the batch goes to a disk spool, replayed oldest first once the sink
answers again. On ``stop`` everything left in memory is flushed, or spooled. Sinks must
be idempotent by ``request_id`` so a batch replayed after a partial failure is never
written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from ._background import STOP_GRACE_SECONDS, BackgroundTask
from .spool import DiskSpool, SpoolFullError
from .usage import UsageEvent

log = logging.getLogger("symbiosis.metering")


class RequestLogSink(Protocol):
    async def write(self, events: Sequence[UsageEvent]) -> None:
        """Store the events; an event whose ``request_id`` is already stored is skipped."""


class RequestLogWriter:
    """The ``UsageRecorder`` of a production gateway: batched, spooled, drained on stop."""

    def __init__(
        self,
        sink: RequestLogSink,
        spool: DiskSpool,
        *,
        interval: float = 1.0,
        batch_size: int = 500,
        max_memory: int = 50_000,
    ) -> None:
        self._sink = sink
        self._spool = spool
        self._interval = interval
        self._batch_size = batch_size
        self._max_memory = max_memory
        self._pending: deque[UsageEvent] = deque()
        self._wake = asyncio.Event()
        self._task = BackgroundTask("symbiosis-request-log", self._run)
        self._sink_healthy = True
        self._stopping = False

    def record(self, event: UsageEvent) -> None:
        self._pending.append(event)
        if len(self._pending) >= self._batch_size:
            self._wake.set()
        if len(self._pending) > self._max_memory:
            self._spill()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        """Drain: write (or spool) every record still in memory.

        A flush under way is let finish rather than cancelled: the batch it took from
        memory would otherwise be in neither the database nor the spool.
        """
        self._stopping = True
        self._wake.set()
        await self._task.finish(STOP_GRACE_SECONDS)
        await self.flush()
        if self._pending:  # finished while the first flush was writing
            await self.flush()
        if self._pending:
            self._spill()

    async def flush(self) -> None:
        """Replay the spool, then write what is in memory now, batch by batch.

        Records that arrive while a batch is being written wait for the next flush:
        chasing them would turn a steady trickle of requests into a stream of tiny
        transactions, each costing milliseconds of CPU.
        """
        if not await self._replay_spool():
            self._spill()
            return
        left = len(self._pending)
        while left > 0 and self._pending:
            size = min(self._batch_size, left, self.pending)
            batch = [self._pending.popleft() for _ in range(size)]
            left -= size
            try:
                written = await self._write(batch)
            except asyncio.CancelledError:
                # Back to memory, first in line; the sink skips rows it already has.
                self._pending.extendleft(reversed(batch))
                raise
            if not written:
                self._spool_batch(batch)
                self._spill()
                return

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            if self._stopping:
                return  # stop() drains
            try:
                await self.flush()
            except Exception:  # never let the writer die; the records are spooled
                log.exception("request-log flush failed")

    async def _write(self, batch: Sequence[UsageEvent]) -> bool:
        try:
            await self._sink.write(batch)
        except Exception as exc:
            if self._sink_healthy:
                log.warning("request-log database unavailable, spooling to disk: %s", exc)
            self._sink_healthy = False
            return False
        if not self._sink_healthy:
            log.warning("request-log database is back; replaying the spool")
        self._sink_healthy = True
        return True

    async def _replay_spool(self) -> bool:
        for path in self._spool.files():
            events = self._spool.read(path)
            if events and not await self._write(events):
                return False
            path.unlink()
        return True

    def _spill(self) -> None:
        """Move everything in memory to the disk spool."""
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(self._batch_size, self.pending))]
            self._spool_batch(batch)

    def _spool_batch(self, batch: Sequence[UsageEvent]) -> None:
        try:
            self._spool.put(batch)
        except (SpoolFullError, OSError) as exc:
            log.error("dropping %d request-log records: %s", len(batch), exc)

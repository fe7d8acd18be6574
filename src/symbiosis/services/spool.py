"""A bounded on-disk queue of request-log batches, for when the database is away.

Each batch is one JSON-lines file written atomically (temporary name, fsync, rename),
so a crash leaves either a whole batch or none. Files are replayed oldest first.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import orjson

from .usage import UsageEvent

log = logging.getLogger("symbiosis.metering")

DEFAULT_MAX_BYTES = 512 * 1024 * 1024


class SpoolFullError(RuntimeError):
    """The spool reached its size bound; the batch was not written."""


class DiskSpool:
    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._sequence = 0

    def put(self, events: Sequence[UsageEvent]) -> Path:
        """Persist a batch; raises ``SpoolFullError`` past ``max_bytes``."""
        data = b"".join(orjson.dumps(asdict(e), default=str) + b"\n" for e in events)
        if self.size() + len(data) > self.max_bytes:
            raise SpoolFullError(f"request-log spool {self.directory} is full ({self.max_bytes} B)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence:06d}.jsonl"
        temporary = self.directory / f".{name}.tmp"
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        final = self.directory / name
        temporary.rename(final)
        return final

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.jsonl"))

    def read(self, path: Path) -> list[UsageEvent]:
        events = []
        for line in path.read_bytes().splitlines():
            if line.strip():
                events.append(UsageEvent.from_dict(orjson.loads(line)))
        return events

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files())

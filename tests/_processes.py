"""Real ``symbiosis serve`` processes for tests that need several replicas or signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> bool:
        """Send ``sig``, wait for the process to end; whether it shut down cleanly.

        uvicorn re-raises the signal once its graceful shutdown is done, so a clean
        stop ends with ``-SIGTERM`` (or 0 on older versions).
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            return False
        return code in (0, -sig)


@contextmanager
def replica(env: dict[str, str], config: Path, log: Path) -> Iterator[Replica]:
    """A ``symbiosis serve`` process; yields it at once (see ``wait_ready``)."""
    port = free_port()
    command = [sys.executable, "-m", "symbiosis", "serve", "--config", str(config)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    running = Replica(f"http://127.0.0.1:{port}", process, log)
    try:
        yield running
    finally:
        running.stop(timeout=15)


def wait_ready(replicas: list[Replica]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    pending = {r.url for r in replicas}
    while pending:
        for url in list(pending):
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    pending.discard(url)
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            output = "\n".join(r.log.read_text(errors="replace")[-2000:] for r in replicas)
            pytest.fail(f"replicas not ready after {STARTUP_TIMEOUT:.0f} s:\n{output}")
        time.sleep(0.1)

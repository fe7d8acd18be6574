"""Child processes of the benchmark: start them, read their cost from /proc, always stop them.

Every number about the gateway comes from the kernel's own accounting (``/proc/<pid>/stat``
and ``/proc/<pid>/status``), summed over the process, its threads and its live
descendants, so a server that forks workers (granian) is measured as a whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it if the benchmark dies (even -9)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it, found through ``/proc/*/task/*/children``."""
    found = [pid]
    index = 0
    while index < len(found):
        tasks = Path(f"/proc/{found[index]}/task")
        with contextlib.suppress(OSError):
            for task in tasks.iterdir():
                with contextlib.suppress(OSError):
                    found.extend(int(c) for c in (task / "children").read_text().split())
        index += 1
    return found


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may contain spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid``'s tree (all threads, live descendants, reaped children)."""
    ticks = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            fields = _stat_fields(member)
            # Fields 14-17 of stat(5): utime, stime, cutime, cstime (index 11.. after pid, comm).
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / _CLOCK_TICKS


def rss_mib(pid: int) -> float:
    """VmRSS of ``pid``'s tree in MiB (shared pages of forked workers count once per process)."""
    total_kib = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    break
    return total_kib / 1024


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy or stolen by the hypervisor since boot (/proc/stat).

    The benchmark subtracts its own processes from the delta of this over a run, which
    tells how much *other* work (a test suite, a build) competed for the cores.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


@dataclass
class Child:
    """A started process and when it was started (for the time-to-ready figure)."""

    name: str
    process: subprocess.Popen[bytes]
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid


class Children:
    """Owns every process the benchmark starts; ``close`` stops them all, by pid only.

    Use it as a context manager so Ctrl-C, SIGTERM or an exception still stop the
    servers: SIGTERM first (uvicorn and granian shut down cleanly on it, and unlike
    SIGINT a background shell cannot have set it to be ignored), SIGKILL for whatever
    is left of the tree after a grace period.
    """

    def __init__(self) -> None:
        self._children: list[Child] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stdout: int | None = subprocess.DEVNULL,
        stderr: int | None = None,
    ) -> Child:
        """Start ``argv``; the child dies with us even if we are killed."""
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=die_with_parent,
        )
        child = Child(name, process, started)
        self._children.append(child)
        return child

    def stop(self, child: Child, grace: float = 5.0) -> None:
        """Ask ``child`` to stop, then kill what is left of its tree."""
        tree = descendants(child.pid) if child.process.poll() is None else []
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=grace)
        for pid in reversed(tree):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=grace)
        if child in self._children:
            self._children.remove(child)

    def close(self) -> None:
        for child in reversed(list(self._children)):
            self.stop(child)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def http_get_status(port: int, path: str, timeout: float = 0.5) -> int | None:
    """The status of one ``GET`` on 127.0.0.1, or None when nothing answers yet."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def wait_ready(child: Child, port: int, path: str, timeout: float = 30.0) -> float:
    """Seconds from ``child``'s start until ``GET path`` answers 200; fails if it dies."""
    deadline = child.started + timeout
    while time.perf_counter() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited with status {child.process.returncode}")
        if http_get_status(port, path) == 200:
            return time.perf_counter() - child.started
        time.sleep(0.005)
    raise RuntimeError(f"{child.name} did not answer {path} within {timeout:.0f}s")

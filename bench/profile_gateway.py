"""Profile the gateway's hot path under load with py-spy, and say where each request's CPU goes.

It starts the fake upstream and the gateway as ``run.py`` does, drives one scenario at one
concurrency, attaches ``py-spy record`` to the gateway for the measured window, and
prints the top functions by self and by inclusive time, and self time per layer
(uvicorn, starlette, fastapi, pydantic, httpx, httpcore, anyio, h11, symbiosis, ...).
Shares of samples are turned into milliseconds per request with the CPU per request
read from ``/proc`` over the same window. Only the thread holding the GIL is sampled
(``--gil``), so threads waiting in C (aiosqlite's worker) do not count as busy. Self
times are exact; inclusive times of outer frames are low, because uvloop resumes
coroutines from C and py-spy then sees only the task's own chain of frames.

py-spy is not a project dependency; install it once, outside the project's venv so
``uv sync`` keeps it: ``uv tool install py-spy``.

    uv run python bench/profile_gateway.py [--scenario chat|stream|messages] [--concurrency 32]
                                   [--duration 8] [--server uvicorn|granian] [--top 25]
                                   [--profiler py-spy|perf]

``--profiler perf`` samples only time on the CPU (Linux ``perf`` with Python's perf
trampolines): on a small VM, py-spy's wall-clock samples also land on socket writes
while the gateway waits, preempted by the process the write woke.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from _procs import Children, cpu_seconds
from run import (
    DEFAULT_APP,
    SCENARIOS,
    gateway_env,
    loadgen_argv,
    provision,
    request_body,
    scenario_api,
    start_fake,
    start_gateway,
    write_config,
)

LAYERS = (
    ("symbiosis/", "symbiosis"),
    ("uvicorn/", "uvicorn"),
    ("granian/", "granian"),
    ("starlette/", "starlette"),
    ("fastapi/", "fastapi"),
    ("pydantic", "pydantic"),
    ("httpx_aiohttp/", "aiohttp"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("httpx/", "httpx"),
    ("httpcore/", "httpcore"),
    ("h11/", "h11"),
    ("anyio/", "anyio"),
    ("asyncio/", "asyncio"),
    ("aiosqlite/", "database"),
    ("sqlalchemy/", "database"),
    ("logging/", "logging"),
    ("typer/", "cli (start-up)"),
)


def find_py_spy() -> str:
    for candidate in (
        shutil.which("py-spy"),
        str(Path(sys.executable).parent / "py-spy"),
        str(Path.home() / ".local/bin/py-spy"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("py-spy not found: install it with `uv tool install py-spy`")


def layer_of(frame: str) -> str:
    """The package a py-spy frame ``func (path/file.py:line)`` belongs to."""
    location = frame.rsplit("(", 1)[-1]
    for prefix, layer in LAYERS:
        if prefix in location:
            return layer
    return "other (stdlib, C, event loop)"


def read_samples(path: Path) -> Iterable[tuple[list[str], int]]:
    """Collapsed stacks, one ``frame;frame;... count`` per line (py-spy ``--format raw``)."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def perf_to_collapsed(perf_data: Path, out: Path) -> float:
    """``perf script`` samples as py-spy-style collapsed stacks of Python frames.

    With ``PYTHONPERFSUPPORT=1`` every Python frame leaves a ``py::func:path``
    trampoline symbol on the native stack, so perf's on-CPU samples (user and kernel
    time, nothing while the process is off the CPU) name the Python functions. The
    innermost Python frame gets the sample, whatever C or kernel code ran below it.
    Returns the share of samples that were in the kernel.
    """
    script = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "ip,sym,dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stacks: collections.Counter[str] = collections.Counter()
    kernel = total = 0
    for sample in script.split("\n\n"):
        lines = [line.strip() for line in sample.strip().splitlines() if line.strip()]
        if not lines:
            continue
        total += 1
        kernel += "kernel" in lines[0]
        frames = []
        for line in lines:
            if "py::" in line:
                name, _, location = line.split("py::", 1)[1].split(" (")[0].rpartition(":")
                frames.append(f"{name} ({location})")
        stacks[";".join(reversed(frames)) or "<no Python frame> (C)"] += 1
    out.write_text("".join(f"{stack} {n}\n" for stack, n in stacks.items()))
    return kernel / max(total, 1)


def summarize(path: Path, cpu_ms_per_request: float, top: int) -> str:
    """Top self and inclusive functions and self time per layer, in ms per request."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in read_samples(path):
        total += count
        self_time[frames[-1]] += count
        layers[layer_of(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "py-spy recorded no samples"

    def rows(counter: collections.Counter[str], limit: int) -> list[str]:
        return [
            f"  {n / total * 100:5.1f}%  {n / total * cpu_ms_per_request:7.3f} ms  {name}"
            for name, n in counter.most_common(limit)
        ]

    return "\n".join(
        [
            f"{total} samples; gateway CPU {cpu_ms_per_request:.3f} ms per request",
            "",
            "self time by layer (share, ms per request):",
            *rows(layers, len(layers)),
            "",
            f"top {top} functions by self time:",
            *rows(self_time, top),
            "",
            f"top {top} functions by inclusive time:",
            *rows(inclusive, top),
        ]
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Profile the gateway under load with py-spy.")
    parser.add_argument("--scenario", choices=list(SCENARIOS), default="chat")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--app", default=DEFAULT_APP)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--profiler",
        choices=["py-spy", "perf"],
        default="py-spy",
        help="perf samples on-CPU time only (needs Linux perf and Python >= 3.12); "
        "py-spy samples wall time of the GIL holder, which also counts time the gateway "
        "waits off the CPU after a write wakes another process",
    )
    args = parser.parse_args()
    args.fake, args.chunk_delay_ms = "raw", 0.0
    return args


def main() -> int:
    args = parse_args()
    use_perf = args.profiler == "perf"
    if use_perf:
        if not shutil.which("perf"):
            sys.exit("perf not found: install the linux-perf package, or use --profiler py-spy")
        args.env.append("PYTHONPERFSUPPORT=1")
    py_spy = "" if use_perf else find_py_spy()
    with tempfile.TemporaryDirectory(prefix="symbiosis-profile-") as tmp, Children() as children:
        workdir = Path(tmp)
        raw = args.raw or workdir / "stacks.txt"
        _, fake_port = start_fake(children, args)
        env = gateway_env(write_config(workdir, fake_port), workdir, args.env, args.app)
        api_key = provision(env, workdir)
        gateway, port, _ = start_gateway(children, args, env, workdir)
        body = request_body("gateway", args.scenario)
        api = scenario_api(args.scenario)
        argv = loadgen_argv(port, body, api_key, args.concurrency, args, api)
        loader = children.start("load generator", argv, stdout=subprocess.PIPE)
        assert loader.process.stdout is not None
        assert b'"start"' in loader.process.stdout.readline()
        before = cpu_seconds(gateway.pid)
        perf_data = workdir / "perf.data"
        spy = children.start(
            "perf" if use_perf else "py-spy",
            [
                "perf",
                "record",
                "-e",
                "cpu-clock",
                "-F",
                str(args.rate),
                "--call-graph",
                "dwarf,16384",
                "-p",
                str(gateway.pid),
                "-o",
                str(perf_data),
                "--",
                "sleep",
                str(int(args.duration)),
            ]
            if use_perf
            else [
                py_spy,
                "record",
                "--pid",
                str(gateway.pid),
                "--rate",
                str(args.rate),
                "--duration",
                str(int(args.duration)),
                "--gil",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stderr=subprocess.DEVNULL,
        )
        assert b'"stop"' in loader.process.stdout.readline()
        cpu = cpu_seconds(gateway.pid) - before
        result = loader.process.stdout.readline()
        spy.process.wait(timeout=args.duration + 30)
        time.sleep(0.1)
        requests = int(result.split(b'"requests":')[1].split(b",")[0])
        print(f"{args.scenario}, c={args.concurrency}, {args.server}: {requests} requests")
        if use_perf:
            kernel = perf_to_collapsed(perf_data, raw)
            print(f"{args.profiler}: {kernel:.1%} of on-CPU samples in the kernel")
        print(summarize(raw, cpu / max(requests, 1) * 1000, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Turn measured runs into the tables ``run.py`` prints, and check them against the targets.

The targets are the foundation issue's; a figure that misses one is shown as MISS, never
rounded into a pass.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Streamed scenarios: a time to first chunk is reported and compared for these.
STREAMS = frozenset({"stream", "messages", "translated"})


@dataclass
class RunResult:
    """One load run: a scenario (chat, stream or messages) against one target at one
    concurrency."""

    scenario: str
    target: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    ttfb_p50_ms: float | None
    gateway_cpu_ms: float | None
    upstream_cpu_ms: float | None
    client_cpu_ms: float | None
    other_load_cores: float
    error_samples: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GatewayFacts:
    """Start-up cost and footprint of the gateway process tree."""

    server: str
    ready_s: float
    idle_rss_mb: float
    loaded_rss_mb: float | None = None
    ready_cpu_s: float | None = None  # CPU seconds the gateway used until ready
    settled_rss_mb: float | None = None  # --startup-only: a few seconds after ready
    first_request_ms: float | None = None  # --startup-only: the first chat request


@dataclass
class TargetCheck:
    name: str
    limit: str
    measured: float | None
    unit: str
    passed: bool | None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain, aligned text table (first column left, the rest right)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def runs_table(runs: Sequence[RunResult]) -> str:
    header = [
        "scenario",
        "target",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "TTFT p50 ms",
        "gw CPU ms/req",
        "upstream CPU ms/req",
        "client CPU ms/req",
        "other load",
        "errors",
    ]
    rows = [
        [
            run.scenario,
            run.target,
            str(run.concurrency),
            f"{run.rps:.0f}",
            _fmt(run.p50_ms, 3),
            _fmt(run.p99_ms, 3),
            _fmt(run.ttfb_p50_ms, 3) if run.scenario in STREAMS else "-",
            _fmt(run.gateway_cpu_ms, 3),
            _fmt(run.upstream_cpu_ms, 3),
            _fmt(run.client_cpu_ms, 3),
            _fmt(run.other_load_cores, 2),
            str(run.errors),
        ]
        for run in runs
    ]
    return render_table(header, rows)


@dataclass
class Comparison:
    """The gateway against the fake called directly, same scenario and concurrency."""

    scenario: str
    concurrency: int
    p50_added_ms: float | None
    ttft_added_ms: float | None
    throughput_ratio: float | None
    gateway_cpu_ms: float | None


def compare(runs: Sequence[RunResult]) -> list[Comparison]:
    by_key = {(r.scenario, r.target, r.concurrency): r for r in runs}
    comparisons = []
    for run in runs:
        if run.target != "gateway":
            continue
        direct = by_key.get((run.scenario, "direct", run.concurrency))
        if direct is None:
            continue
        comparisons.append(
            Comparison(
                scenario=run.scenario,
                concurrency=run.concurrency,
                p50_added_ms=_diff(run.p50_ms, direct.p50_ms),
                ttft_added_ms=(
                    _diff(run.ttfb_p50_ms, direct.ttfb_p50_ms) if run.scenario in STREAMS else None
                ),
                throughput_ratio=run.rps / direct.rps if direct.rps else None,
                gateway_cpu_ms=run.gateway_cpu_ms,
            )
        )
    return comparisons


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def comparison_table(comparisons: Sequence[Comparison]) -> str:
    header = [
        "scenario",
        "conc",
        "p50 added ms",
        "TTFT added ms",
        "req/s gateway/direct",
        "gw CPU ms/req",
    ]
    rows = [
        [
            c.scenario,
            str(c.concurrency),
            _fmt(c.p50_added_ms, 3),
            _fmt(c.ttft_added_ms, 3),
            _fmt(c.throughput_ratio, 3),
            _fmt(c.gateway_cpu_ms, 3),
        ]
        for c in comparisons
    ]
    return render_table(header, rows)


def _worst(
    values: Sequence[float | None], pick: Callable[[Sequence[float]], float]
) -> float | None:
    known = [v for v in values if v is not None]
    return pick(known) if known else None


def check_targets(runs: Sequence[RunResult], facts: GatewayFacts) -> list[TargetCheck]:
    """The issue's targets; CPU is judged on the worst concurrency measured.

    The Anthropic stream (``messages``) and the translated one are held to the 20-chunk
    stream's CPU target, each on a line of its own, when it ran.
    """
    gateway = [r for r in runs if r.target == "gateway"]
    comparisons = compare(runs)

    def cpu(scenario: str) -> float | None:
        return _worst([r.gateway_cpu_ms for r in gateway if r.scenario == scenario], max)

    def at(concurrency: int, scenario: str, field: str) -> float | None:
        for c in comparisons:
            if c.concurrency == concurrency and c.scenario == scenario:
                return getattr(c, field)
        return None

    chat_rps_32 = next(
        (r.rps for r in gateway if r.scenario == "chat" and r.concurrency == 32), None
    )
    checks = [
        ("gateway CPU per chat request", "<= 0.5", cpu("chat"), "ms", 0.5, False),
        ("gateway CPU per 20-chunk stream", "<= 1.5", cpu("stream"), "ms", 1.5, False),
        ("added p50 latency, chat, c=1", "<= 1", at(1, "chat", "p50_added_ms"), "ms", 1.0, False),
        ("added TTFT p50, stream, c=1", "<= 1", at(1, "stream", "ttft_added_ms"), "ms", 1.0, False),
        ("chat throughput, c=32, one process", ">= 1500", chat_rps_32, "req/s", 1500, True),
        ("idle RSS", "<= 120", facts.idle_rss_mb, "MB", 120, False),
        ("start to ready", "<= 2", facts.ready_s, "s", 2.0, False),
    ]
    if any(r.scenario == "messages" for r in runs):
        name = "gateway CPU per 20-delta Anthropic stream"
        checks.insert(2, (name, "<= 1.5", cpu("messages"), "ms", 1.5, False))
    if any(r.scenario == "translated" for r in runs):
        name = "gateway CPU per 20-chunk stream from Anthropic"
        checks.insert(2, (name, "<= 1.5", cpu("translated"), "ms", 1.5, False))
    return [
        TargetCheck(
            name,
            limit,
            value,
            unit,
            None if value is None else (value >= bound if at_least else value <= bound),
        )
        for name, limit, value, unit, bound, at_least in checks
    ]


def startup_table(measured: Sequence[GatewayFacts]) -> str:
    """Median, min and max of each start-up figure over repeated start-ups."""
    figures = [
        ("start to ready (s)", "ready_s", 2),
        ("CPU until ready (s)", "ready_cpu_s", 2),
        ("idle RSS, ready + 0.5 s (MB)", "idle_rss_mb", 1),
        ("settled RSS, ready + 3 s (MB)", "settled_rss_mb", 1),
        ("first chat request (ms)", "first_request_ms", 1),
        ("RSS after it (MB)", "loaded_rss_mb", 1),
    ]
    rows = []
    for label, name, digits in figures:
        values = [v for v in (getattr(f, name) for f in measured) if v is not None]
        if values:
            stats = (statistics.median(values), min(values), max(values))
            rows.append([label, *(_fmt(v, digits) for v in stats)])
    return render_table([f"{len(measured)} start-ups", "median", "min", "max"], rows)


def targets_table(checks: Sequence[TargetCheck]) -> str:
    header = ["target", "limit", "measured", "result"]
    rows = [
        [
            f"{c.name} ({c.unit})",
            c.limit,
            _fmt(c.measured, 3),
            "n/a" if c.passed is None else ("ok" if c.passed else "MISS"),
        ]
        for c in checks
    ]
    return render_table(header, rows)

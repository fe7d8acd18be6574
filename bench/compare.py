"""Compare gateway set-ups (servers, httpx client settings) fairly on a shared, noisy machine.

One ``run.py`` measurement is disturbed by whatever else runs on the 2 cores (a test
suite, a build). So each variant runs several rounds, interleaved (A B C, A B C, ...),
and the table shows for each the least-disturbed round: the lowest CPU per request
and the highest throughput, with the median CPU per request beside it and the largest
"other load" seen, to judge how much noise there was.

    uv run --with granian --with httpx-aiohttp python bench/compare.py --suite servers
    uv run --with granian --with httpx-aiohttp python bench/compare.py --suite httpx
    uv run --with httpx-aiohttp python bench/compare.py --suite streams --scenarios stream

Suites compare like with like: every variant is built by a ``variants.py`` factory that
sets logging up as ``symbiosis serve`` does, so only the named change differs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence

import orjson
from _report import RunResult, render_table
from run import benchmark, parse_args

SUITES: dict[str, dict[str, list[str]]] = {
    "servers": {
        "uvicorn (uvloop+httptools)": ["--server", "uvicorn", "--app", "variants:baseline"],
        "granian (asgi, 1 worker)": ["--server", "granian", "--app", "variants:baseline"],
    },
    "httpx": {
        "product client (INFO httpx log)": ["--app", "variants:baseline"],
        "httpx log off": ["--app", "variants:quiet_httpx_log"],
        "pool 100/20 (httpx defaults), log off": [
            "--app",
            "variants:httpx_pool",
            "--env",
            "BENCH_MAX_CONNECTIONS=100",
            "--env",
            "BENCH_MAX_KEEPALIVE=20",
        ],
        "aiohttp transport, log off": ["--app", "variants:aiohttp_transport"],
    },
    "streams": {
        "product (new connection per stream)": ["--app", "variants:baseline"],
        "streams read to the end": ["--app", "variants:streams_drained"],
        "aiohttp transport": ["--app", "variants:aiohttp_transport"],
        "aiohttp transport + streams read to the end": [
            "--app",
            "variants:aiohttp_streams_drained",
        ],
    },
}


def _run_variant(argv: Sequence[str]) -> list[RunResult]:
    args = parse_args(argv)
    return benchmark(args)["runs"]


def summarize(results: dict[str, list[RunResult]]) -> str:
    header = [
        "variant",
        "scenario",
        "conc",
        "best req/s",
        "p50 ms (best)",
        "CPU ms/req min",
        "CPU ms/req median",
        "max other load",
    ]
    rows = []
    for variant, runs in results.items():
        groups: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
        for run in runs:
            groups[(run.scenario, run.concurrency)].append(run)
        for (scenario, concurrency), group in groups.items():
            cpu = [r.gateway_cpu_ms for r in group if r.gateway_cpu_ms is not None]
            best = max(group, key=lambda r: r.rps)
            rows.append(
                [
                    variant,
                    scenario,
                    str(concurrency),
                    f"{best.rps:.0f}",
                    f"{best.p50_ms or 0:.3f}",
                    f"{min(cpu):.3f}" if cpu else "-",
                    f"{statistics.median(cpu):.3f}" if cpu else "-",
                    f"{max(r.other_load_cores for r in group):.2f}",
                ]
            )
    return render_table(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description="Compare gateway variants, interleaved.")
    parser.add_argument("--suite", choices=sorted(SUITES), required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--scenarios", default="chat,stream")
    parser.add_argument("--json", help="also write every run to this file")
    args = parser.parse_args()
    common = [
        "--gateway-only",
        "--duration",
        str(args.duration),
        "--warmup",
        "1.5",
        "--concurrency",
        args.concurrency,
        "--scenarios",
        args.scenarios,
    ]
    results: dict[str, list[RunResult]] = defaultdict(list)
    for round_number in range(1, args.rounds + 1):
        for variant, extra in SUITES[args.suite].items():
            print(f"round {round_number}/{args.rounds}: {variant}", file=sys.stderr)
            results[variant].extend(_run_variant([*common, *extra]))
    print()
    print(summarize(results))
    if args.json:
        payload = {v: [r.to_json() for r in runs] for v, runs in results.items()}
        with open(args.json, "wb") as out:
            out.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

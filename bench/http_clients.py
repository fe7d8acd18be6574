"""CPU per upstream call of the providers' HTTP clients, against the lean fake upstream.

Each client makes the call ``HTTPProvider`` makes (``shortcut.post`` / ``shortcut.stream``
with the bytes of a chat request), in this process, on uvloop as under ``symbiosis
serve``. The fake upstream runs in its own process, so ``time.process_time()`` here is
the client's own cost. Clients alternate within each round (A B, then B A), so a
disturbance on the shared cores hits both; the table keeps the best and the median
round.

    uv run python bench/http_clients.py                      # 3 rounds, 20k requests each
    uv run python bench/http_clients.py --requests 5000 --rounds 1 --loop asyncio
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop
from _procs import Children, free_port, wait_ready

from symbiosis.providers._aiohttp import shortcut_for
from symbiosis.providers._h1 import H1Pool
from symbiosis.providers._http import _LIMITS, build_timeout

HERE = Path(__file__).parent
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark, briefly please."}]
CHAT = orjson.dumps({"model": "fake", "messages": MESSAGES})
STREAM = orjson.dumps(
    {"model": "fake", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": 1}}
)


def make_client(name: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """The shortcut object a provider would hold, and how to close it."""
    if name == "native":
        pool = H1Pool(600.0)
        return pool, pool.aclose
    import httpx
    from httpx_aiohttp import AiohttpTransport

    client = httpx.AsyncClient(
        transport=AiohttpTransport(limits=_LIMITS), timeout=build_timeout(600.0), limits=_LIMITS
    )
    return shortcut_for(client, 600.0), client.aclose


async def _one(client: Any, url: str, stream: bool) -> None:
    if stream:
        async for _ in client.stream("fake", url, STREAM, HEADERS):
            pass
    else:
        await client.post("fake", url, CHAT, HEADERS)


async def measure(client: Any, url: str, stream: bool, requests: int, concurrency: int) -> dict:
    """CPU µs and wall µs per request over ``requests`` calls by ``concurrency`` workers."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await _one(client, url, stream)

    share = requests // concurrency
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(share) for _ in range(concurrency)))
    done = share * concurrency
    return {
        "cpu_us": (time.process_time() - cpu) / done * 1e6,
        "rps": done / (time.perf_counter() - wall),
    }


async def run(args: argparse.Namespace, port: int) -> list[dict]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    clients = {name: make_client(name) for name in args.clients}
    scenarios = [("chat", False, c) for c in args.concurrency]
    scenarios += [("stream", True, c) for c in args.concurrency if args.stream]
    for client, _ in clients.values():  # warm up: connections, caches
        await asyncio.gather(*(_one(client, url, s) for _, s, c in scenarios for _ in range(c)))
    rows: dict[tuple[str, str, int], list[dict]] = {}
    for round_index in range(args.rounds):
        order = list(clients) if round_index % 2 == 0 else list(reversed(clients))
        for scenario, stream, concurrency in scenarios:
            count = args.requests if not stream else args.requests // 4
            for name in order:
                result = await measure(clients[name][0], url, stream, count, concurrency)
                rows.setdefault((name, scenario, concurrency), []).append(result)
                print(
                    f"round {round_index + 1} {name:7} {scenario:6} c={concurrency:<3} "
                    f"{result['cpu_us']:7.1f} µs CPU/req  {result['rps']:8.0f} req/s",
                    file=sys.stderr,
                )
    for _, close in clients.values():
        await close()
    return [
        {
            "client": name,
            "scenario": scenario,
            "concurrency": concurrency,
            "cpu_us_min": min(r["cpu_us"] for r in results),
            "cpu_us_median": statistics.median(r["cpu_us"] for r in results),
            "rps_best": max(r["rps"] for r in results),
        }
        for (name, scenario, concurrency), results in sorted(rows.items(), key=_row_order)
    ]


def _row_order(item: tuple[tuple[str, str, int], list[dict]]) -> tuple[str, int, str]:
    (name, scenario, concurrency), _ = item
    return scenario, concurrency, name


def render(rows: list[dict]) -> str:
    lines = [
        "| client | scenario | conc | CPU µs/req min | median | best req/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['client']} | {r['scenario']} | {r['concurrency']} | {r['cpu_us_min']:.1f} "
        f"| {r['cpu_us_median']:.1f} | {r['rps_best']:.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="chat requests per cell")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--clients", nargs="+", default=["native", "aiohttp"])
    parser.add_argument("--stream", action="store_true", help="also streams (requests / 4)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    with Children() as children:
        port = free_port()
        fake = [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)]
        wait_ready(children.start("fake upstream", fake), port, "/v1/models", timeout=15)
        runner = uvloop.run if args.loop == "uvloop" else asyncio.run
        rows = runner(run(args, port))
    print(render(rows))


if __name__ == "__main__":
    main()

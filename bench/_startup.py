"""``run.py --startup-only``: start the gateway again and again; ready, CPU, RSS, first request.

Cheap beside the full run (seconds per start-up, no load): for work on start-up time
and idle memory. The gateway is started exactly as the full run starts it.

    uv run python bench/run.py --startup-only [--startups 5] [--cold] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from pathlib import Path

import orjson
from _procs import Children, rss_mib
from _report import GatewayFacts, startup_table
from run import _MIB_TO_MB, GATEWAY_MODEL, _environment, chat_body, prepare, start_gateway

SETTLED_AFTER_S = 3.0


def first_request_ms(port: int, api_key: str) -> float:
    """Milliseconds of the first chat request a fresh gateway serves (prices, pools, caches).

    It is sent once the settled RSS is read, so it also shows whether anything the
    gateway defers to first use stalls a caller.
    """
    body = chat_body(GATEWAY_MODEL, "chat").encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.perf_counter()
        connection.request("POST", "/v1/chat/completions", body, headers)
        response = connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"first request answered {response.status}")
    return elapsed


def startups(args: argparse.Namespace) -> list[GatewayFacts]:
    """Start the gateway ``--startups`` times on one provisioned database; stop it each time.

    Each start-up records ready (spawn to ``/health/live``) and the CPU it took, idle RSS
    0.5 s later (as the full run does), RSS after ``SETTLED_AFTER_S`` seconds (anything
    started in the background has finished by then), the first request's latency and
    RSS after it. Unless ``--cold``, one unmeasured start-up fills the bytecode cache.
    """
    measured: list[GatewayFacts] = []
    with tempfile.TemporaryDirectory(prefix="symbiosis-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        _fake, _fake_port, env, api_key = prepare(children, args, workdir)
        for attempt in range(args.startups):
            gateway, port, facts = start_gateway(children, args, env, workdir)
            time.sleep(max(0.0, SETTLED_AFTER_S - 0.5))
            facts.settled_rss_mb = rss_mib(gateway.pid) * _MIB_TO_MB
            try:
                facts.first_request_ms = first_request_ms(port, api_key)
            except (OSError, RuntimeError) as exc:  # a start-up figure needs no answer
                print(f"  first request failed: {exc} (see the gateway log)", file=sys.stderr)
            facts.loaded_rss_mb = rss_mib(gateway.pid) * _MIB_TO_MB
            children.stop(gateway)
            print(
                f"  start-up {attempt + 1}: ready {facts.ready_s:.2f} s "
                f"(CPU {facts.ready_cpu_s or 0:.2f} s), idle RSS {facts.idle_rss_mb:.1f} MB, "
                f"settled {facts.settled_rss_mb:.1f} MB, "
                f"first request {facts.first_request_ms or 0:.1f} ms",
                file=sys.stderr,
            )
            measured.append(facts)
    return measured


def report_startups(args: argparse.Namespace, measured: list[GatewayFacts]) -> None:
    cache = "cold: compiled from source each time" if args.cold else "warm bytecode cache"
    print(f"\ngateway ({args.server}) start-ups, {cache}")
    print(startup_table(measured))
    if args.json:
        payload = {
            "environment": _environment(args),
            "startups": [facts.__dict__ for facts in measured],
        }
        args.json.write_bytes(
            orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str) + b"\n"
        )
        print(f"\nwrote {args.json}")

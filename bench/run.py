"""Gateway overhead benchmark: the fake upstream called directly vs. through the gateway.

One run starts three kinds of process, all on 127.0.0.1: the fake upstream
(``fake_upstream.py``), the gateway (``symbiosis serve`` on uvicorn, or granian) in front
of it, and, per measurement, a load generator (``loadgen.py``). For each concurrency and
each scenario (non-streaming chat, 20-chunk SSE stream; on request an Anthropic-native
``/v1/messages`` stream of 20 text deltas, or an OpenAI chat stream translated to and
from an ``anthropic`` provider) it measures the fake directly, then the
gateway, and prints throughput, latency percentiles, time to first chunk, the
gateway's CPU per request (from ``/proc/<pid>/stat``), its idle RSS and its start-up
time, then checks them against the foundation issue's targets.

    uv run python bench/run.py [--duration S] [--concurrency 1,32]
                               [--scenarios chat,stream,messages,translated]
                               [--server uvicorn|granian] [--json out.json]
    uv run python bench/run.py --startup-only [--startups 5] [--cold]   # start-up only

``docs/benchmarks.md`` explains every number. Every process started here is stopped on
exit, on Ctrl-C and on SIGTERM; if this process is killed outright, the kernel stops
them (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson
from _procs import (
    Child,
    Children,
    cpu_seconds,
    die_with_parent,
    free_port,
    machine_busy_seconds,
    rss_mib,
    wait_ready,
)
from _report import (
    GatewayFacts,
    RunResult,
    check_targets,
    compare,
    comparison_table,
    runs_table,
    targets_table,
)

HERE = Path(__file__).resolve().parent
GATEWAY_MODEL = "bench-model"
UPSTREAM_MODEL = "fake-model"
CLAUDE_GATEWAY_MODEL = "bench-claude"  # routed to the anthropic provider
CLAUDE_UPSTREAM_MODEL = "fake-claude"
DEFAULT_APP = "symbiosis.gateway:create_app"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "Say hello to the benchmark in a few words, please."},
]
SCENARIOS = ("chat", "stream", "messages", "translated")
# messages and translated are left out of the default so that a default run stays
# about 2 minutes.
DEFAULT_SCENARIOS = ("chat", "stream")
_MIB_TO_MB = 1024 * 1024 / 1_000_000


def chat_body(model: str, scenario: str) -> str:
    """A typical small chat request; the stream asks for the usage chunk, as SDKs do."""
    body: dict[str, Any] = {
        "model": model,
        "messages": MESSAGES,
        "max_tokens": 64,
        "temperature": 0.2,
    }
    if scenario == "stream":
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body).decode()


def messages_body(model: str) -> str:
    """The same conversation as an Anthropic Messages stream (system prompt on its own)."""
    system, user = MESSAGES
    body = {
        "model": model,
        "system": system["content"],
        "messages": [user],
        "max_tokens": 64,
        "temperature": 0.2,
        "stream": True,
    }
    return orjson.dumps(body).decode()


def request_body(target: str, scenario: str) -> str:
    """What the load generator sends for ``scenario``, named as ``target`` knows the model.

    ``translated`` is an OpenAI chat stream that the gateway turns into an Anthropic
    one; its direct run is the Anthropic stream the upstream serves for it.
    """
    gateway = target == "gateway"
    if scenario == "translated" and gateway:
        return chat_body(CLAUDE_GATEWAY_MODEL, "stream")
    if scenario in ("messages", "translated"):
        return messages_body(CLAUDE_GATEWAY_MODEL if gateway else CLAUDE_UPSTREAM_MODEL)
    return chat_body(GATEWAY_MODEL if gateway else UPSTREAM_MODEL, scenario)


def scenario_api(scenario: str, target: str = "gateway") -> str:
    """The load generator's ``--api``: Anthropic's wire format where the call is one."""
    if scenario == "messages" or (scenario == "translated" and target == "direct"):
        return "anthropic"
    return "openai"


def write_config(directory: Path, upstream_port: int) -> Path:
    """The gateway config: the fake as an OpenAI-compatible and as an Anthropic provider,
    one model on each (the anthropic one serves ``/v1/messages`` natively)."""
    path = directory / "bench.toml"
    path.write_text(
        "[providers.fake]\n"
        'type = "openai_compatible"\n'
        f'base_url = "http://127.0.0.1:{upstream_port}/v1"\n'
        'api_key = "sk-upstream-fake"\n'
        "timeout = 60\n\n"
        "[providers.fake_anthropic]\n"
        'type = "anthropic"\n'
        f'base_url = "http://127.0.0.1:{upstream_port}"\n'
        'api_key = "sk-ant-upstream-fake"\n'
        "timeout = 60\n\n"
        "[[models]]\n"
        f'name = "{GATEWAY_MODEL}"\n'
        'provider = "fake"\n'
        f'model = "{UPSTREAM_MODEL}"\n'
        "input_cost_per_mtok = 0.15\n"
        "output_cost_per_mtok = 0.60\n\n"
        "[[models]]\n"
        f'name = "{CLAUDE_GATEWAY_MODEL}"\n'
        'provider = "fake_anthropic"\n'
        f'model = "{CLAUDE_UPSTREAM_MODEL}"\n'
        "input_cost_per_mtok = 3.00\n"
        "output_cost_per_mtok = 15.00\n",
        encoding="utf-8",
    )
    return path


def gateway_env(
    config: Path, workdir: Path, extra: Sequence[str] = (), app: str = DEFAULT_APP
) -> dict[str, str]:
    """The environment the gateway sees: our config, a throw-away database, no proxies.

    Proxy variables are dropped because httpx honours them and every byte of this
    benchmark must stay on 127.0.0.1. An experimental ``--app`` from ``bench/`` (such as
    ``variants:...``) is importable because ``bench/`` goes on ``PYTHONPATH``.
    """
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["SYMBIOSIS_CONFIG"] = str(config)
    env["SYMBIOSIS_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    if app != DEFAULT_APP:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    for item in extra:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def bytecode_env(env: dict[str, str], workdir: Path, cold: bool) -> dict[str, str]:
    """The gateway's environment with a bytecode cache of its own, or with none (``cold``).

    Without it the figures depend on the machine: with ``PYTHONDONTWRITEBYTECODE=1`` and
    no ``.pyc`` in the virtual environment (``uv sync`` compiles none by default) every
    start compiles about 800 modules from source: 3.5-4 times the CPU, and tens of MB
    more for a while. Deployments run with bytecode (``pip`` compiles by default, ``uv
    sync --compile-bytecode``), so that is what the figures describe unless ``--cold``.
    """
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "no-pycache")  # stays empty
    else:
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def prepare(
    children: Children, args: argparse.Namespace, workdir: Path
) -> tuple[Child, int, dict[str, str], str]:
    """The fake upstream, a provisioned database, the gateway's environment and key.

    Unless ``--cold``, one unmeasured start of the gateway fills its bytecode cache.
    """
    fake, fake_port = start_fake(children, args)
    env = gateway_env(write_config(workdir, fake_port), workdir, args.env, args.app)
    api_key = provision({**env, "BENCH_METERED": "1" if args.metered else "0"}, workdir)
    env = bytecode_env(env, workdir, args.cold)
    if not args.cold:
        gateway, _, _ = start_gateway(children, args, env, workdir)
        children.stop(gateway)
    return fake, fake_port, env, api_key


SYMBIOSIS_CLI = "import sys; from symbiosis.cli import main; sys.argv[0] = 'symbiosis'; main()"


def gateway_argv(server: str, port: int, app: str) -> list[str]:
    """How the gateway is started: the product's own ``symbiosis serve`` for uvicorn.

    Everything runs through ``sys.executable`` so that ``uv run --with granian ...``
    works: such an overlay environment has no console scripts of the project.
    """
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "granian":
        granian = ["--interface", "asgi", "--factory", "--workers", "1", "--loop", "uvloop"]
        quiet = ["--no-ws", "--log-level", "warning"]
        return [sys.executable, "-m", "granian", *granian, *host, *quiet, app]
    if app != DEFAULT_APP:
        uvicorn = ["--factory", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        return [sys.executable, "-m", "uvicorn", *uvicorn, *host, "--log-level", "info", app]
    return [sys.executable, "-c", SYMBIOSIS_CLI, "serve", *host]


def _check_server(server: str) -> None:
    if (
        server == "granian"
        and subprocess.run(
            [sys.executable, "-c", "import granian"], capture_output=True, check=False
        ).returncode
    ):
        sys.exit("granian is not installed: uv run --with granian python bench/run.py ...")


def start_fake(children: Children, args: argparse.Namespace) -> tuple[Child, int]:
    port = free_port()
    argv = [
        sys.executable,
        str(HERE / "fake_upstream.py"),
        "--port",
        str(port),
        "--impl",
        args.fake,
        "--chunk-delay-ms",
        str(args.chunk_delay_ms),
    ]
    child = children.start("fake upstream", argv)
    wait_ready(child, port, "/v1/models", timeout=15)
    return child, port


def provision(env: dict[str, str], workdir: Path) -> str:
    """A virtual key for the load generator (empty when the gateway checks no keys)."""
    done = subprocess.run(
        [sys.executable, str(HERE / "provision.py")],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=die_with_parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not create a virtual key: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def start_gateway(
    children: Children, args: argparse.Namespace, env: dict[str, str], workdir: Path
) -> tuple[Child, int, GatewayFacts]:
    port = free_port()
    log = (workdir / "gateway.log").open("wb")
    argv = gateway_argv(args.server, port, args.app)
    child = children.start(
        "gateway",
        argv,
        env=env,
        cwd=workdir,
        stdout=log.fileno(),
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        ready = wait_ready(child, port, "/health/live")
    except RuntimeError:
        sys.stderr.write((workdir / "gateway.log").read_text(errors="replace")[-4000:])
        raise
    ready_cpu = cpu_seconds(child.pid)
    time.sleep(0.5)  # let start-up allocations settle before reading the idle footprint
    facts = GatewayFacts(args.server, ready, rss_mib(child.pid) * _MIB_TO_MB, ready_cpu_s=ready_cpu)
    return child, port, facts


def loadgen_argv(
    port: int,
    body: str,
    api_key: str,
    concurrency: int,
    args: argparse.Namespace,
    api: str = "openai",
) -> list[str]:
    """The command line of one load-generator run (``--duration``/``--warmup`` from args)."""
    timing = ["-d", str(args.duration), "-w", str(args.warmup)]
    target = ["--port", str(port), "--body", body, "--api-key", api_key, "--api", api]
    return [sys.executable, str(HERE / "loadgen.py"), *target, "-c", str(concurrency), *timing]


def _read_event(process: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    """The next JSON line of the load generator, or an error past ``deadline``."""
    assert process.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError("load generator did not finish in time")
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"load generator exited ({process.wait()})")
            return orjson.loads(line)


def measure(
    children: Children,
    args: argparse.Namespace,
    *,
    scenario: str,
    target: str,
    port: int,
    concurrency: int,
    gateway: Child | None,
    idle_gateway: Child,
    fake: Child,
    api_key: str,
) -> RunResult:
    """One load run; the gateway's and the fake's CPU are sampled on the window's edges.

    ``gateway`` is the process under load (None for direct runs); ``idle_gateway`` is
    the gateway process either way, so that its CPU is not counted as other load.
    """
    body = request_body(target, scenario)
    argv = loadgen_argv(port, body, api_key, concurrency, args, scenario_api(scenario, target))
    loader = children.start(f"load generator ({scenario}, {target})", argv, stdout=subprocess.PIPE)
    deadline = time.monotonic() + args.warmup + args.duration + 30
    watched = [fake.pid, idle_gateway.pid]
    try:
        start_event = _read_event(loader.process, deadline)
        assert start_event["event"] == "start", start_event
        before = {pid: cpu_seconds(pid) for pid in watched}
        busy_before = machine_busy_seconds()
        stop_event = _read_event(loader.process, deadline)
        assert stop_event["event"] == "stop", stop_event
        busy = machine_busy_seconds() - busy_before
        after = {pid: cpu_seconds(pid) for pid in watched}
        result = _read_event(loader.process, deadline)
    finally:
        children.stop(loader)
    count = result["requests"]
    ours = sum(after[pid] - before[pid] for pid in watched) + result["client_cpu_s"]

    def per_request(pid: int | None) -> float | None:
        if pid is None or not count:
            return None
        return (after[pid] - before[pid]) / count * 1000

    return RunResult(
        scenario=scenario,
        target=target,
        concurrency=concurrency,
        requests=count,
        errors=result["errors"],
        rps=result["rps"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        ttfb_p50_ms=result["ttfb_p50_ms"],
        gateway_cpu_ms=per_request(gateway.pid if gateway is not None else None),
        upstream_cpu_ms=per_request(fake.pid),
        client_cpu_ms=result["client_cpu_ms"],
        other_load_cores=max(0.0, busy - ours) / result["seconds"],
        error_samples=result["error_samples"],
    )


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    packages = {}
    for name in ("uvicorn", "granian", "uvloop", "httptools", "httpx", "fastapi", "starlette"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            continue
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "revision": _git_revision(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "packages": packages,
        "options": vars(args),
    }


def _git_revision() -> str | None:
    """The commit measured, with ``+dirty`` when the working tree had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}+dirty" if head and dirty else head or None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the gateway against calling the fake upstream directly."
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per run")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[1, 32],
        help="comma-separated connection counts (default 1,32)",
    )
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument(
        "--scenarios",
        type=lambda text: [part for part in text.split(",") if part],
        default=list(DEFAULT_SCENARIOS),
        help="comma-separated subset of chat,stream,messages,translated (default chat,stream)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--fake",
        choices=["raw", "uvicorn"],
        default="raw",
        help="raw asyncio fake (default) or the demo FakeUpstream under uvicorn",
    )
    parser.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="pause between stream chunks"
    )
    parser.add_argument(
        "--app",
        default=DEFAULT_APP,
        help="ASGI app factory to serve (for experiments; default the real gateway)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway, e.g. SYMBIOSIS_LOG_LEVEL=WARNING (repeatable)",
    )
    parser.add_argument(
        "--gateway-only", action="store_true", help="skip the direct runs (not comparable)"
    )
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="only start the gateway --startups times: ready, idle RSS, first request",
    )
    parser.add_argument(
        "--startups", type=int, default=5, help="start-ups with --startup-only (default 5)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start the gateway without bytecode: compile every module from source each time",
    )
    parser.add_argument(
        "--metered",
        action="store_true",
        help="give the key and its project budgets and RPM/TPM limits (never reached)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if {"messages", "translated"} & set(args.scenarios) and args.fake == "uvicorn":
        parser.error("the demo fake (--fake uvicorn) has no /v1/messages; use --fake raw")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    if args.startups < 1:
        parser.error("--startups must be at least 1")
    return args


def _signals_unwind() -> None:
    """Ctrl-C and SIGTERM unwind, so the ``with Children()`` block stops the servers.

    SIGINT gets Python's handler back explicitly: a shell that starts us in the
    background hands SIGINT down as ignored, and Python would keep ignoring it.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="symbiosis-bench-") as tmp, Children() as children:
        workdir = Path(tmp)
        fake, fake_port, env, api_key = prepare(children, args, workdir)
        gateway, gateway_port, facts = start_gateway(children, args, env, workdir)
        print(
            f"gateway ({args.server}) ready in {facts.ready_s:.2f}s, "
            f"idle RSS {facts.idle_rss_mb:.1f} MB",
            file=sys.stderr,
        )
        targets = [("gateway", gateway_port)]
        if not args.gateway_only:
            targets.insert(0, ("direct", fake_port))
        for concurrency in args.concurrency:
            for scenario in args.scenarios:
                for target, port in targets:
                    run = measure(
                        children,
                        args,
                        scenario=scenario,
                        target=target,
                        port=port,
                        concurrency=concurrency,
                        gateway=gateway if target == "gateway" else None,
                        idle_gateway=gateway,
                        fake=fake,
                        api_key=api_key,
                    )
                    print(
                        f"  {scenario:<10} {target:<7} c={concurrency:<3} {run.rps:>8.0f} req/s"
                        f"  p50 {run.p50_ms or 0:.3f} ms  errors {run.errors}",
                        file=sys.stderr,
                    )
                    runs.append(run)
        facts.loaded_rss_mb = rss_mib(gateway.pid) * _MIB_TO_MB
        if any(run.errors for run in runs):
            log_tail = (workdir / "gateway.log").read_text(errors="replace")[-3000:]
            print(f"--- gateway log (tail) ---\n{log_tail}\n---", file=sys.stderr)
    return {"runs": runs, "facts": facts}


def report(args: argparse.Namespace, runs: list[RunResult], facts: GatewayFacts) -> None:
    print()
    print(runs_table(runs))
    comparisons = compare(runs)
    if comparisons:
        print()
        print(comparison_table(comparisons))
    print()
    print(
        f"gateway: {facts.server}; start to /health/live: {facts.ready_s:.2f} s; "
        f"RSS idle {facts.idle_rss_mb:.1f} MB, after load {facts.loaded_rss_mb or 0:.1f} MB"
    )
    checks = check_targets(runs, facts)
    print()
    print(targets_table(checks))
    failed = [r for r in runs if r.errors]
    for run in failed:
        print(f"errors in {run.scenario}/{run.target}/c={run.concurrency}: {run.error_samples}")
    if args.json:
        payload = {
            "environment": _environment(args),
            "gateway": facts.__dict__,
            "runs": [r.to_json() for r in runs],
            "comparisons": [c.__dict__ for c in comparisons],
            "targets": [c.__dict__ for c in checks],
        }
        args.json.write_bytes(
            orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str) + b"\n"
        )
        print(f"\nwrote {args.json}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _check_server(args.server)
    _signals_unwind()
    if args.startup_only:
        from _startup import report_startups, startups

        try:
            facts = startups(args)
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped", file=sys.stderr)
            return 130
        report_startups(args, facts)
        return 0
    try:
        measured = benchmark(args)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    report(args, measured["runs"], measured["facts"])
    return 1 if any(r.errors for r in measured["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())

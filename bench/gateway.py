"""Benchmark what imagegate adds in front of an upstream: the small, large and hold scenarios.

Usage: ``.venv/bin/python bench/gateway.py [--scenarios small,large,hold] [--seconds 8]
[--rounds 3] [--json PATH] [--pool N] [--peer litellm] [--workers 1,2]``

Each scenario starts, as separate processes on loopback, a fake OpenAI upstream
(``python -m imagegate.providers.fakes openai``, answering every generation with one
precomputed body) and one imagegate worker (``bench/_gateway_server.py``: uvloop, httptools,
storage on, the built-in ``gpt-image-1`` deployment pointed at the fake through
``OPENAI_API_KEY``/``OPENAI_BASE_URL``). Load comes from ``wrk`` (``apt-get install wrk``).
Direct-to-fake and through-imagegate runs are interleaved round by round after a discarded
warm-up; overhead = through − direct, per round; medians and spreads are reported.

* **small**: ~1 KB upstream body, ``wrk -t1 -c16``: req/s, added p50/p99; then, one
  connection alone (``-c1``), direct and through: ``alone_added_p50_ms``/``p99``, what one
  request costs with no queue in front of it.
* **large**: ~1.5 MB ``b64_json`` body, every image stored: req/s, MB/s, added p50/p99, and the
  same ``-c1`` figures.
* **hold**: upstream answers after 2 s, 1,000 connections: RSS per in-flight request (peak −
  idle), event-loop lag (a 10 ms probe inside the worker: p99 of all its samples, the worst
  one-second window's p99 and the maximum) and ``/healthz`` p99 from a separate client
  polling every 10 ms. ``--pool N`` also runs it with an N-connection
  upstream pool (``IMAGEGATE_UPSTREAM_MAX_CONNECTIONS``; the shipped default is 1,000).

``--peer litellm`` also starts LiteLLM's proxy (one worker) on the same fake and runs it in the
same interleaved rounds of small and large: ``peer_rps`` and ``ratio`` (imagegate / LiteLLM) are
reported beside direct and imagegate. LiteLLM is not a project dependency: it is installed once
into its own virtual environment under ``~/.cache/imagegate-bench`` (``IMAGEGATE_BENCH_CACHE``).

``--workers 1,2`` runs small and large once per worker count; a count above one is the
production command itself, ``imagegate serve --workers N`` (no lag probe), and its row gives
``scaling``: its req/s over the first count's. The peer runs only beside one worker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ADMIN = "bench-admin-" + secrets.token_hex(8)
UPSTREAM_KEY = "sk-fake-openai"
PEER_KEY = "sk-bench-peer-" + secrets.token_hex(8)
LITELLM = "litellm[proxy]==1.108.7"
CACHE = Path(os.environ.get("IMAGEGATE_BENCH_CACHE", Path.home() / ".cache" / "imagegate-bench"))
BODY = '{"model": "gpt-image-1", "prompt": "a lighthouse at dusk", "size": "1024x1024"}'


@dataclass(frozen=True)
class Scenario:
    name: str
    b64_bytes: int
    delay: float
    threads: int
    connections: int


SCENARIOS = {
    "small": Scenario("small", 0, 0.0, 1, 16),
    "large": Scenario("large", 1_500_000, 0.0, 1, 16),
    "hold": Scenario("hold", 0, 2.0, 2, 1000),
}


@dataclass
class Wrk:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    transfer_mb_s: float


@dataclass
class Result:
    scenario: str
    direct: list[Wrk] = field(default_factory=list)
    gateway: list[Wrk] = field(default_factory=list)
    peer: list[Wrk] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env=env, cwd=ROOT, preexec_fn=_raise_fd_limit, stdout=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def scratch_database(admin_url: str | None) -> Iterator[str | None]:
    """A new, empty PostgreSQL database's SQLAlchemy URL for one run, dropped afterwards
    (``admin_url``: any database on that server); None without one."""
    if admin_url is None:
        yield None
        return
    import asyncio

    import asyncpg

    name = "imagegate_bench_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def litellm_binary() -> Path:
    """LiteLLM's proxy in its own virtual environment under the cache folder, installed once."""
    venv = CACHE / "litellm-venv"
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", LITELLM], check=True)
    return binary


@contextlib.contextmanager
def litellm_peer(fake_port: int, workdir: Path) -> Iterator[str]:
    """LiteLLM's proxy, one worker, serving ``gpt-image-1`` from the same fake; its base URL."""
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-image-1\n"
        "    litellm_params:\n"
        "      model: openai/gpt-image-1\n"
        f"      api_base: http://127.0.0.1:{fake_port}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "general_settings:\n"
        f"  master_key: {PEER_KEY}\n"
    )
    args = [str(litellm_binary()), "--config", str(config), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--num_workers", "1"]
    env = {**os.environ, "LITELLM_LOG": "ERROR"}
    with process(args, env):
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/health/liveliness", seconds=120)
        yield url


def wait_ready(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def lua(path: Path, key: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_SIZES = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, script: Path, scenario: Scenario, seconds: float) -> Wrk:
    timeout = "30s" if scenario.delay else "10s"
    out = subprocess.run(
        [
            "wrk",
            f"-t{scenario.threads}",
            f"-c{scenario.connections}",
            f"-d{seconds:g}s",
            f"--timeout={timeout}",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=_raise_fd_limit,
    ).stdout
    if "Latency Distribution" not in out:
        raise RuntimeError(f"wrk measured nothing:\n{out}")
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Wrk(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(percentiles["50"]),
        p90_ms=_ms(percentiles["90"]),
        p99_ms=_ms(percentiles["99"]),
        errors=errors,
        transfer_mb_s=float(transfer.group(1)) * _SIZES[transfer.group(2)] if transfer else 0.0,
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def stack(
    scenario: Scenario,
    workdir: Path,
    pool: int | None,
    postgres: str | None = None,
    peer: str | None = None,
    workers: int = 1,
) -> Iterator[dict[str, object]]:
    """The fake upstream and imagegate (one bench worker, or ``serve --workers N``), ready,
    with a client key."""
    fake_port, gw_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    fake_args = [
        PYTHON,
        "-m",
        "imagegate.providers.fakes",
        "openai",
        "--port",
        str(fake_port),
        "--b64-bytes",
        str(scenario.b64_bytes),
        "--delay",
        str(scenario.delay),
    ]
    data_dir = workdir / f"data-{scenario.name}-{pool or 'default'}"
    lag_file = workdir / f"lag-{scenario.name}-{pool or 'default'}.jsonl"
    gw_env = {
        **env,
        "BENCH_PORT": str(gw_port),
        "BENCH_LAG_FILE": str(lag_file),
        "IMAGEGATE_DATA_DIR": str(data_dir),
        "IMAGEGATE_ADMIN_KEY": ADMIN,
        "IMAGEGATE_DEFAULT_RPM": "100000000",
        "IMAGEGATE_LOG_LEVEL": "warning",
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
    }
    if pool:
        gw_env["IMAGEGATE_UPSTREAM_MAX_CONNECTIONS"] = str(pool)
    gw_args = [PYTHON, str(ROOT / "bench/_gateway_server.py")]
    if workers > 1:
        gw_args = [str(Path(PYTHON).with_name("imagegate")), "serve", "--port", str(gw_port)]
        gw_args += ["--workers", str(workers)]
    with (
        scratch_database(postgres) as database,
        process(fake_args, env) as fake,
        process(gw_args, gw_env | ({"IMAGEGATE_DATABASE_URL": database} if database else {})) as gw,
    ):
        direct, gateway = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{gw_port}"
        wait_ready(f"{direct}/v1/models/x")
        wait_ready(f"{gateway}/healthz")
        created = httpx.post(
            f"{gateway}/admin/keys",
            json={"name": "bench"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        created.raise_for_status()
        key = created.json()["key"]
        ready = {
            "direct": direct,
            "gateway": gateway,
            "key": key,
            "gateway_pid": gw.pid,
            "fake_pid": fake.pid,
            "lag_file": lag_file,
        }
        if peer != "litellm" or scenario.name == "hold" or workers > 1:
            yield ready
            return
        with litellm_peer(fake_port, workdir) as peer_url:
            yield {**ready, "peer": peer_url}


def interleaved(
    scenario: Scenario, s: dict[str, object], workdir: Path, seconds: float, rounds: int
) -> Result:
    result = Result(scenario.name)
    direct_lua = lua(workdir / "direct.lua", UPSTREAM_KEY)
    gateway_lua = lua(workdir / "gateway.lua", str(s["key"]))
    direct_url = f"{s['direct']}/v1/images/generations"
    gateway_url = f"{s['gateway']}/v1/images/generations"
    peer_url = f"{s['peer']}/v1/images/generations" if "peer" in s else None
    peer_lua = lua(workdir / "peer.lua", PEER_KEY)
    warm = min(3.0, seconds)
    run_wrk(direct_url, direct_lua, scenario, warm)
    run_wrk(gateway_url, gateway_lua, scenario, warm)
    if peer_url:
        run_wrk(peer_url, peer_lua, scenario, warm)
    for _ in range(rounds):
        result.direct.append(run_wrk(direct_url, direct_lua, scenario, seconds))
        result.gateway.append(run_wrk(gateway_url, gateway_lua, scenario, seconds))
        if peer_url:
            result.peer.append(run_wrk(peer_url, peer_lua, scenario, seconds))
    # With 16 connections a request's latency is mostly its wait behind the other 15
    # (Little's law: p50 ≈ 16 / throughput), so what one request costs is measured alone too.
    alone = replace(scenario, connections=1)
    direct_alone = run_wrk(direct_url, direct_lua, alone, seconds)
    gateway_alone = run_wrk(gateway_url, gateway_lua, alone, seconds)
    result.extra["alone_gateway_rps"] = gateway_alone.rps
    result.extra["alone_added_p50_ms"] = round(gateway_alone.p50_ms - direct_alone.p50_ms, 3)
    result.extra["alone_added_p99_ms"] = round(gateway_alone.p99_ms - direct_alone.p99_ms, 3)
    sample = httpx.post(
        gateway_url,
        content=BODY,
        headers={"Authorization": f"Bearer {s['key']}", "Content-Type": "application/json"},
        timeout=60,
    )
    result.extra["gateway_body_bytes"] = len(sample.content)
    result.extra["gateway_rss_mb"] = rss_mb(int(s["gateway_pid"]))  # type: ignore[call-overload]
    return result


def hold(scenario: Scenario, s: dict[str, object], workdir: Path, seconds: float) -> Result:
    result = Result(scenario.name)
    gateway_lua = lua(workdir / "gateway.lua", str(s["key"]))
    direct_lua = lua(workdir / "direct.lua", UPSTREAM_KEY)
    pid = int(s["gateway_pid"])  # type: ignore[call-overload]
    small = Scenario("warm", 0, 0, 1, 8)
    run_wrk(f"{s['gateway']}/v1/images/generations", gateway_lua, small, 3)
    time.sleep(1)
    idle = rss_mb(pid)
    result.direct.append(
        run_wrk(f"{s['direct']}/v1/images/generations", direct_lua, scenario, seconds)
    )
    peak = [idle]
    probes: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                peak.append(rss_mb(pid))
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    client.get(f"{s['gateway']}/healthz")
                    probes.append((time.perf_counter() - started) * 1000)
                time.sleep(0.01)

    watcher = threading.Thread(target=sample)
    begun = time.time()
    watcher.start()
    result.gateway.append(
        run_wrk(f"{s['gateway']}/v1/images/generations", gateway_lua, scenario, seconds)
    )
    stop.set()
    watcher.join()
    lags = [json.loads(line) for line in Path(str(s["lag_file"])).read_text().splitlines()]
    window = [lag for lag in lags if begun + 2 <= lag["t"] <= begun + seconds]
    probes.sort()
    lag_samples = sorted(sample for w in window for sample in w["samples_ms"])
    result.extra = {
        "in_flight": scenario.connections,
        "rss_idle_mb": round(idle, 1),
        "rss_peak_mb": round(max(peak), 1),
        "rss_per_in_flight_kb": round((max(peak) - idle) * 1024 / scenario.connections, 1),
        "loop_lag_p99_ms": _percentile(lag_samples, 0.99),
        "loop_lag_worst_second_p99_ms": round(max((w["p99_ms"] for w in window), default=0.0), 2),
        "loop_lag_max_ms": round(max((w["max_ms"] for w in window), default=0.0), 2),
        "healthz_p50_ms": round(statistics.median(probes), 2) if probes else None,
        "healthz_p99_ms": round(probes[int(len(probes) * 0.99)], 2) if probes else None,
    }
    return result


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 2)


def summary(result: Result) -> dict[str, object]:
    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    def spread(values: list[float]) -> list[float]:
        return [round(min(values), 3), round(max(values), 3)]

    peer: dict[str, object] = {}
    if result.peer:
        ratios = [g.rps / p.rps for g, p in zip(result.gateway, result.peer, strict=True) if p.rps]
        peer = {
            "peer": "litellm",
            "peer_rps": med([r.rps for r in result.peer]),
            "peer_p50_ms": med([r.p50_ms for r in result.peer]),
            "peer_errors": sum(r.errors for r in result.peer),
            "ratio": med(ratios) if ratios else None,
            "ratio_spread": spread(ratios) if ratios else None,
        }
    added_p50 = [g.p50_ms - d.p50_ms for d, g in zip(result.direct, result.gateway, strict=True)]
    added_p99 = [g.p99_ms - d.p99_ms for d, g in zip(result.direct, result.gateway, strict=True)]
    return {
        "scenario": result.scenario,
        "direct_rps": med([r.rps for r in result.direct]),
        "gateway_rps": med([r.rps for r in result.gateway]),
        "gateway_rps_spread": spread([r.rps for r in result.gateway]),
        "direct_p50_ms": med([r.p50_ms for r in result.direct]),
        "gateway_p50_ms": med([r.p50_ms for r in result.gateway]),
        "added_p50_ms": med(added_p50),
        "added_p50_spread": spread(added_p50),
        "added_p99_ms": med(added_p99),
        "added_p99_spread": spread(added_p99),
        "gateway_mb_s": med([r.transfer_mb_s for r in result.gateway]),
        "errors": sum(r.errors for r in result.gateway) + sum(r.errors for r in result.direct),
        **peer,
        **result.extra,
    }


def machine() -> dict[str, object]:
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    import fastapi
    import starlette
    import uvicorn

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "wrk": wrk.strip(),
        "httpx": httpx.__version__,
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "uvicorn": uvicorn.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="small,large,hold")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=None, help="hold: also with this pool size")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--postgres", default=None, help="admin URL: run on a fresh PostgreSQL database"
    )
    parser.add_argument("--hold-seconds", type=float, default=20.0)
    parser.add_argument(
        "--peer", choices=["litellm"], default=None, help="also measure a peer gateway"
    )
    parser.add_argument(
        "--workers", default="1", help="comma-separated worker counts for small and large"
    )
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    _raise_fd_limit()
    rows = []
    with tempfile.TemporaryDirectory(prefix="imagegate-bench-") as tmp:
        workdir = Path(tmp)
        for name in args.scenarios.split(","):
            scenario = SCENARIOS[name]
            variants = [None, args.pool] if name == "hold" and args.pool else [None]
            counts = [1] if name == "hold" else worker_counts
            first_rps: float | None = None
            for pool in variants:
                for workers in counts:
                    with stack(scenario, workdir, pool, args.postgres, args.peer, workers) as s:
                        if name == "hold":
                            row = summary(hold(scenario, s, workdir, args.hold_seconds))
                        else:
                            measured = interleaved(scenario, s, workdir, args.seconds, args.rounds)
                            row = summary(measured)
                    row["workers"] = workers
                    if name != "hold":
                        first_rps = first_rps or float(row["gateway_rps"])  # type: ignore[arg-type]
                        row["scaling"] = round(float(row["gateway_rps"]) / first_rps, 2)  # type: ignore[arg-type]
                    row["upstream_pool"] = pool or "shipped default (1000)"
                    row["database"] = "postgresql" if args.postgres else "sqlite"
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    report = {"machine": machine(), "results": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    header = ("scenario", "wk", "direct r/s", "gw r/s", "added p50", "added p99", "gw MB/s")
    print(
        "\n{:<8} {:>2} {:>10} {:>8} {:>10} {:>10} {:>8}".format(*header), " alone  peer r/s  ratio"
    )
    for row in rows:
        alone = (
            f"+{row['alone_added_p50_ms']:.2f}/+{row['alone_added_p99_ms']:.2f}ms"
            if "alone_added_p50_ms" in row
            else ""
        )
        versus = ""
        if row.get("ratio") is not None:
            versus = f"  {row['peer_rps']:>8.0f}  {row['ratio']:.1f}x"
        print(
            f"{row['scenario']:<8} {row['workers']:>2} {row['direct_rps']:>10.0f} "
            f"{row['gateway_rps']:>8.0f} "
            f"{row['added_p50_ms']:>8.2f}ms {row['added_p99_ms']:>8.2f}ms "
            f"{row['gateway_mb_s']:>8.1f}  {alone}{versus}"
        )
    print(json.dumps(report["machine"]))


if __name__ == "__main__":
    main()

__all__ = ["SCENARIOS", "Scenario", "asdict"]

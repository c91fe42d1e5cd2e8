"""What one request costs the gateway's worker: CPU seconds or instructions, not req/s.

Usage: ``.venv/bin/python bench/cost.py [--scenario small|large] [--requests 400]
[--concurrency 16] [--callgrind] [--b64-bytes N]``

Starts the fake OpenAI upstream and one bench worker (``bench/_gateway_server.py``, the same
stack as ``bench/gateway.py``), warms it, then sends exactly ``--requests`` generations with
``--concurrency`` in flight from this process and reports the worker's own cost per request:

* by default its CPU time (user + system, from ``/proc``), which a busy machine disturbs much
  less than req/s (a shared core slows a request down, it does not make it cost more CPU);
* with ``--callgrind`` the worker runs under ``valgrind --tool=callgrind``: counters are zeroed
  after the warm-up and dumped after the measured requests, and the report gives instructions
  (Ir) per request, deterministic to within a fraction of a percent, for A/B of small changes.
  The dump is kept (``--out``) for ``callgrind_annotate``.

Also reported: the worker's peak RSS over the run (``VmHWM``) minus its RSS after warm-up,
per in-flight request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway import ADMIN, BODY, UPSTREAM_KEY, free_port, process, wait_ready

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def cpu_seconds(pid: int) -> tuple[float, float, int]:
    """The process's user and system CPU seconds so far (all its threads), and its minor
    page faults (each a page of fresh memory touched: large buffers allocated anew)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7])


def status_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (``/proc/PID/clear_refs``: 5), where allowed."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


async def fire(url: str, key: str, requests: int, concurrency: int, seconds: float) -> int:
    """``requests`` POSTs, ``concurrency`` at a time; how many were not 200."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    left = requests
    bad = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=seconds, limits=limits) as client:

        async def one() -> None:
            nonlocal left, bad
            while left > 0:
                left -= 1
                answer = await client.post(url, content=BODY, headers=headers)
                if answer.status_code != 200:
                    bad += 1
                    if bad == 1:
                        print(answer.status_code, answer.text[:300], file=sys.stderr)

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=["small", "large"], default="small")
    parser.add_argument("--b64-bytes", type=int, default=None)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="callgrind dump (kept)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="also sample the measured part with py-spy "
        "(--native), writing collapsed stacks to this file",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        help="profile the measured part with cProfile "
        "(the event loop's thread) and write its stats to this file",
    )
    args = parser.parse_args()
    b64 = (
        args.b64_bytes
        if args.b64_bytes is not None
        else (1_500_000 if args.scenario == "large" else 0)
    )
    with tempfile.TemporaryDirectory(prefix="imagegate-cost-") as tmp:
        work = Path(tmp)
        fake_port, gw_port = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        fake_args = [PYTHON, "-m", "imagegate.providers.fakes", "openai"]
        fake_args += ["--port", str(fake_port), "--b64-bytes", str(b64), "--delay", "0"]
        gw_env = {
            **env,
            "BENCH_PORT": str(gw_port),
            "IMAGEGATE_DATA_DIR": str(work / "data"),
            "IMAGEGATE_ADMIN_KEY": ADMIN,
            "IMAGEGATE_DEFAULT_RPM": "100000000",
            "IMAGEGATE_LOG_LEVEL": "warning",
            "OPENAI_API_KEY": UPSTREAM_KEY,
            "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
            "PYTHONHASHSEED": "0",
        }
        if args.cprofile:
            gw_env["BENCH_CPROFILE"] = str(args.cprofile.resolve())
        out = args.out or work / "callgrind.out"
        gw_args = [PYTHON, str(ROOT / "bench/_gateway_server.py")]
        if args.callgrind:
            gw_args = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--dump-instr=no",
                "--collect-systime=no",
                *gw_args,
            ]
        timeout = 600.0 if args.callgrind else 60.0
        with process(fake_args, env), process(gw_args, gw_env) as gw:
            base = f"http://127.0.0.1:{gw_port}"
            wait_ready(f"http://127.0.0.1:{fake_port}/v1/models/x")
            wait_ready(f"{base}/healthz", seconds=600 if args.callgrind else 30)
            key = httpx.post(
                f"{base}/admin/keys",
                json={"name": "cost-" + secrets.token_hex(3)},
                headers={"Authorization": f"Bearer {ADMIN}"},
                timeout=timeout,
            ).json()["key"]
            url = f"{base}/v1/images/generations"
            bad = asyncio.run(fire(url, key, args.warmup, args.concurrency, timeout))
            time.sleep(0.5)
            if args.callgrind:
                subprocess.run(
                    ["callgrind_control", "-z", str(gw.pid)], check=True, capture_output=True
                )
            idle_kb = status_kb(gw.pid, "VmRSS")
            reset_peak(gw.pid)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(
                    [
                        str(Path(PYTHON).with_name("py-spy")),
                        "record",
                        "--native",
                        "-r",
                        "400",
                        "--format",
                        "raw",
                        "-o",
                        str(args.py_spy),
                        "-p",
                        str(gw.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            if args.cprofile:
                os.kill(gw.pid, signal.SIGUSR1)
            before = cpu_seconds(gw.pid)
            started = time.perf_counter()
            bad += asyncio.run(fire(url, key, args.requests, args.concurrency, timeout))
            wall = time.perf_counter() - started
            time.sleep(0.3)
            after = cpu_seconds(gw.pid)
            user, system = after[0] - before[0], after[1] - before[1]
            peak_kb = status_kb(gw.pid, "VmHWM")
            if args.cprofile:
                os.kill(gw.pid, signal.SIGUSR2)
                time.sleep(1)
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
            row: dict[str, object] = {
                "scenario": args.scenario,
                "b64_bytes": b64,
                "requests": args.requests,
                "concurrency": args.concurrency,
                "errors": bad,
                "cpu_ms_per_request": round((user + system) * 1000 / args.requests, 3),
                "user_ms_per_request": round(user * 1000 / args.requests, 3),
                "sys_ms_per_request": round(system * 1000 / args.requests, 3),
                "page_faults_per_request": round((after[2] - before[2]) / args.requests, 1),
                "wall_s": round(wall, 2),
                "rss_idle_mb": round(idle_kb / 1024, 1),
                "rss_peak_over_idle_per_in_flight_kb": round(
                    (peak_kb - idle_kb) / args.concurrency, 1
                ),
            }
            if args.callgrind:
                # Dump after the measured requests; counters up to here belong to them.
                subprocess.run(
                    ["callgrind_control", "-d", str(gw.pid)], check=True, capture_output=True
                )
                time.sleep(1)
                dumps = sorted(out.parent.glob(out.name + "*"), key=lambda p: p.stat().st_mtime)
                total = 0
                for line in dumps[-1].read_text(errors="replace").splitlines():
                    if line.startswith("summary:") or line.startswith("totals:"):
                        total = int(line.split()[1])
                        break
                row["instructions_per_request"] = round(total / args.requests)
                row["callgrind_dump"] = str(dumps[-1])
                if args.out is None:
                    row["callgrind_dump"] = "(discarded; pass --out to keep)"
    print(json.dumps(row))


if __name__ == "__main__":
    main()

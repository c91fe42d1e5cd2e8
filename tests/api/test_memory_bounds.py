"""Resident memory of a real ``imagegate serve`` under large decodes and endless bodies.

Measured from outside (``/proc/<pid>/statm``) on a subprocess server, so the figures are the
server's alone. The bounds are the README's: concurrent edits of 7000×7000 PNGs stay within
~8 bytes a pixel of the decode budget above the idle process, and memory comes back after.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve import EXECUTABLE, free_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="needs Linux /proc to read RSS"
)

ADMIN = "memory-test-admin-key-0123456789"
MB = 1024 * 1024
SIDE = 7000
EDITS = 8
BUDGET_MEGAPIXELS = 64
PEAK_GROWTH_LIMIT = 8 * BUDGET_MEGAPIXELS * MB
"""The README's bound: about 8 bytes a pixel of the decode budget (unbounded: ~1.2 GB)."""
SETTLED_GROWTH_LIMIT = 160 * MB
"""What may stay once the work is over (never given back before: ~1.2 GB)."""


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    auth: dict[str, str]

    def rss(self) -> int:
        statm = Path(f"/proc/{self.process.pid}/statm").read_text().split()
        return int(statm[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    env |= {
        "IMAGEGATE_ADMIN_KEY": ADMIN,
        "IMAGEGATE_DECODE_BUDGET_MEGAPIXELS": str(BUDGET_MEGAPIXELS),
        "IMAGEGATE_DECODE_WAIT_SECONDS": "120",
    }
    data_dir = tmp_path_factory.mktemp("memory")
    process = subprocess.Popen(
        [str(EXECUTABLE), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.05)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        created = httpx.post(f"{base_url}/admin/keys", json={"name": "memory"}, headers=admin)
        yield Server(base_url, process, {"Authorization": f"Bearer {created.json()['key']}"})
    finally:
        process.terminate()
        process.wait(timeout=30)


class PeakWatcher:
    """Samples the server's RSS every few milliseconds while in a ``with`` block."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss())
            time.sleep(0.005)

    def __enter__(self) -> PeakWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def big_png(side: int) -> bytes:
    """A black RGB PNG of ``side``² pixels: ~150 KB on the wire, 147 MB decoded."""
    row = b"\x00" + bytes(side * 3)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_concurrent_edits_of_huge_pngs_stay_under_the_decode_budget(server: Server) -> None:
    png = big_png(SIDE)
    assert len(png) < 300_000
    statuses: list[int] = []

    def edit() -> None:
        response = httpx.post(
            f"{server.base_url}/v1/images/edits",
            headers=server.auth,
            files={"image": ("big.png", png, "image/png")},
            data={"prompt": "a cat", "model": "sketch", "size": "256x256"},
            timeout=300,
        )
        statuses.append(response.status_code)

    before = server.rss()
    with PeakWatcher(server) as watcher:
        threads = [threading.Thread(target=edit) for _ in range(EDITS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    time.sleep(0.5)
    after = server.rss()
    assert statuses == [200] * EDITS
    assert watcher.peak - before < PEAK_GROWTH_LIMIT
    assert after - before < SETTLED_GROWTH_LIMIT


def _endless_body(server: Server, path: str, key: str | None = None) -> tuple[int, int]:
    """Send a chunked body that never ends; (status answered, bytes sent before it came)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    key = key or server.auth["Authorization"]
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
        sock.settimeout(0.001)
        answer = b""
        while sent < 512 * MB:
            try:
                sock.sendall(chunk)
                sent += 64 * 1024
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if b"\r\n" in answer:
                break
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, sent


def test_an_endless_body_is_cut_off_at_the_route_limit(server: Server) -> None:
    before = server.rss()
    with PeakWatcher(server) as watcher:
        status, sent = _endless_body(server, "/admin/keys", f"Bearer {ADMIN}")
    assert status == 413
    # The small routes' 1 MiB limit, plus what the kernel's socket buffers took in meanwhile.
    assert sent < 16 * MB
    assert watcher.peak - before < 16 * MB


def test_memory_comes_back_after_an_endless_body_on_an_image_route(server: Server) -> None:
    before = server.rss()
    for _ in range(2):
        status, sent = _endless_body(server, "/v1/images/generations")
        assert status == 413 and sent < 96 * MB
    time.sleep(0.2)
    assert server.rss() - before < 16 * MB


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-s"]))

"""Real ``imagegate serve`` replicas on one PostgreSQL database and one Redis, each reached
through a :class:`~tests.faults.proxy.Proxy` a test can cut; a load of clients that retry the
way an SDK does; and the invariants a fault must not break."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import ADMIN_KEY

EXECUTABLE = Path(sys.executable).with_name("imagegate")
LEASE_SECONDS = 2.0
PRICED = """
[[models]]
id = "sketch"
[models.pricing]
text_input_per_mtok = 0.0
image_output_per_mtok = 0.0
per_request = 0.1
"""
RETRYABLE = frozenset({409, 429, 502, 503, 504})
IMAGE_ROUTE = "/v1/images/generations"
IMAGE: dict[str, object] = {"model": "sketch", "prompt": "a red square", "size": "256x256"}
TASK_ROUTE = "/flux/v1/sketch"
TASK: dict[str, object] = {"prompt": "a red square", "width": 256, "height": 256}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


class Cluster:
    """Replicas sharing a data directory, a server secret, a database and a Redis."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str) -> None:
        self.tmp = tmp
        config = tmp / "config.toml"
        config.write_text(PRICED)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")},
            "IMAGEGATE_DATABASE_URL": database_url,
            "IMAGEGATE_REDIS_URL": redis_url,
            "IMAGEGATE_ADMIN_KEY": ADMIN_KEY,
            "IMAGEGATE_SECRET": secrets.token_hex(32),
            "IMAGEGATE_CONFIG": str(config),
            "IMAGEGATE_TASK_LEASE_SECONDS": str(LEASE_SECONDS),
            "IMAGEGATE_TASK_POLL_SECONDS": "0.1",
            "IMAGEGATE_LOG_LEVEL": "warning",
        }
        self.replicas: dict[str, Replica] = {}
        self._names = itertools.count()

    def start(self) -> Replica:
        name = f"r{next(self._names)}"
        port = free_port()
        log = self.tmp / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    str(EXECUTABLE),
                    "serve",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(self.tmp / "data"),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        replica = Replica(name, process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{replica.base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"{name} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        self.replicas[name] = replica
        return replica

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.alive()]

    def kill(self, replica: Replica, sig: signal.Signals) -> int:
        """Send ``sig``; returns the exit code (waits up to 30 s)."""
        replica.process.send_signal(sig)
        return replica.process.wait(30)

    def stop_all(self) -> None:
        for replica in self.live():
            replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas.values():
            try:
                replica.process.wait(20)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(5)

    def ensure(self, replicas: int) -> None:
        """Start replicas until ``replicas`` are running."""
        while len(self.live()) < replicas:
            self.start()

    def new_key(self, credit: float) -> tuple[str, str]:
        replica = self.live()[0]
        response = httpx.post(
            f"{replica.base_url}/admin/keys",
            json={"name": "load", "credit_usd": credit},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["id"]), str(response.json()["key"])

    def logs(self) -> str:
        return "\n".join(
            f"--- {r.name}\n{r.log.read_text()[-3000:]}" for r in self.replicas.values()
        )


@dataclass
class Load:
    """Clients that send image requests with an Idempotency-Key each and retry them as an SDK
    does (a dropped connection or a retryable status: the same key again, on any replica)
    until they get their final answer."""

    cluster: Cluster
    key_id: str
    key: str
    threads: int = 6
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    unanswered: list[str] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    """Ids of the tasks the load's clients were answered with."""
    sent: dict[str, tuple[str, dict[str, object]]] = field(default_factory=dict)
    """Route and body of each Idempotency-Key."""
    bad: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)

    def _run(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=15) as client:
            for i in itertools.count():
                if self._stop.is_set():
                    return
                idempotency_key = f"load-{n}-{i}-{secrets.token_hex(4)}"
                keyed = {**headers, "Idempotency-Key": idempotency_key}
                # Two image requests answered at once, then a task (answered with its id).
                route, body = (TASK_ROUTE, TASK) if i % 3 == 2 else (IMAGE_ROUTE, IMAGE)
                with self._lock:
                    self.sent[idempotency_key] = (route, body)
                self._one(client, route, body, keyed, idempotency_key)

    def _one(
        self,
        client: httpx.Client,
        route: str,
        body: dict[str, object],
        headers: dict[str, str],
        idempotency_key: str,
    ) -> None:
        deadline = time.monotonic() + 40
        for attempt in itertools.count():
            live = self.cluster.live()
            if not live:
                time.sleep(0.1)
                continue
            replica = live[attempt % len(live)]
            try:
                response = client.post(f"{replica.base_url}{route}", json=body, headers=headers)
            except httpx.TransportError:
                with self._lock:
                    self.dropped += 1
                retry = 0.1
            else:
                with self._lock:
                    self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    with self._lock:
                        self.answered.add(idempotency_key)
                        if route == TASK_ROUTE:
                            self.tasks.add(str(response.json()["id"]))
                    return
                if response.status_code not in RETRYABLE:
                    with self._lock:
                        self.bad.append(f"{response.status_code} {response.text[:300]}")
                    return
                if response.status_code in (429, 503) and "retry-after" not in response.headers:
                    with self._lock:
                        self.bad.append(f"{response.status_code} without Retry-After")
                retry = 0.1
            if time.monotonic() > deadline:
                with self._lock:
                    self.unanswered.append(idempotency_key)
                return
            time.sleep(retry)


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def query(direct_url: str, sql: str) -> list[asyncpg.Record]:
    """Rows from the database itself (not through the proxy)."""
    return asyncio.run(_fetch(direct_url, sql))


def assert_books_balance(direct_url: str) -> None:
    """Every key's balance is its ledger's sum; what usage says was charged is what the ledger
    charged."""
    rows = query(
        direct_url,
        """
        SELECT k.key_id, k.balance_usd,
               (SELECT coalesce(sum(amount_usd), 0) FROM ledger l WHERE l.key_id = k.key_id)
                   AS ledger,
               (SELECT coalesce(-sum(amount_usd), 0) FROM ledger l
                 WHERE l.key_id = k.key_id AND l.kind IN ('charge', 'void')) AS charged,
               (SELECT coalesce(sum(cost_usd), 0) FROM usage u WHERE u.key_id = k.key_id)
                   AS metered
        FROM key_limits k WHERE k.balance_usd IS NOT NULL
        """,
    )
    assert rows
    for row in rows:
        assert row["balance_usd"] == row["ledger"], dict(row)
        assert row["charged"] == row["metered"], dict(row)
        assert row["charged"] > Decimal(0)


def assert_tasks_done(direct_url: str, load: Load, within: float) -> None:
    """Every task of the load's key finishes (a killed or stopped replica's are run by another
    one), and each task a client was answered with succeeds."""
    deadline = time.monotonic() + within
    while True:
        rows = query(
            direct_url, f"SELECT id, status FROM tasks WHERE owner_key_id = '{load.key_id}'"
        )
        statuses = {row["id"]: row["status"] for row in rows}
        if all(s in ("succeeded", "failed", "canceled") for s in statuses.values()):
            break
        assert time.monotonic() < deadline, Counter(statuses.values())
        time.sleep(0.2)
    assert load.tasks, "no task was submitted"
    assert {statuses[task_id] for task_id in load.tasks} == {"succeeded"}


def charges_of(direct_url: str, key_id: str) -> int:
    """How many requests of ``key_id`` stay charged (charges less those voided because their
    answer was lost with a killed replica and the retry ran again)."""
    rows = query(
        direct_url,
        f"""SELECT count(*) FILTER (WHERE kind = 'charge') - count(*) FILTER (WHERE kind = 'void')
            AS n FROM ledger WHERE key_id = '{key_id}'""",
    )
    return int(rows[0]["n"])


def assert_nothing_stuck(direct_url: str, load: Load, within: float) -> None:
    """Within ``within`` seconds: no hold of the load's key left held (with no task waiting on
    it) and none of its Idempotency-Keys refusing a retry (a record left in flight because
    its answer could not be recorded has an expired lease, and its retry is answered)."""
    deadline = time.monotonic() + within
    while True:
        live = query(
            direct_url,
            f"""SELECT count(*) AS n FROM idempotency WHERE state = 'in_flight'
                AND scope = '{load.key_id}' AND lease_expires_at >= extract(epoch from now())""",
        )[0]["n"]
        held = query(
            direct_url,
            f"""SELECT count(*) AS n FROM reservations r WHERE state = 'held'
                AND key_id = '{load.key_id}' AND NOT EXISTS
               (SELECT 1 FROM tasks t WHERE t.reservation_id = r.id
                AND t.status IN ('queued', 'parked', 'running'))""",
        )[0]["n"]
        if live == 0 and held == 0:
            break
        assert time.monotonic() < deadline, f"{live} keys in flight, {held} holds held"
        time.sleep(0.2)
    left = query(
        direct_url,
        f"""SELECT idempotency_key FROM idempotency WHERE state = 'in_flight'
            AND scope = '{load.key_id}'""",
    )
    replica = load.cluster.live()[0]
    for row in left:
        route, body = load.sent[row["idempotency_key"]]
        retry = httpx.post(
            f"{replica.base_url}{route}",
            json=body,
            headers={
                "Authorization": f"Bearer {load.key}",
                "Idempotency-Key": row["idempotency_key"],
            },
            timeout=15,
        )
        assert retry.status_code == 200, retry.text

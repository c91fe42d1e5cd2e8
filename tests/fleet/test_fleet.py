"""A fleet as an operator runs it: three ``imagegate serve`` processes started at the same moment
on a fresh PostgreSQL database, Redis and an S3-compatible bucket, each with its own data dir and
no shared disk. Images made on one are served by the others; a replica SIGKILLed with tasks in
hand loses none, and none runs or is charged twice; the bucket going away for 10 s under load
loses no accepted image."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from tests.cli.test_serve import EXECUTABLE, free_port
from tests.conftest import POSTGRES_URL, _postgres_reachable
from tests.s3_kit import S3Server

pytestmark = pytest.mark.fleet

ADMIN = "fleet-test-admin-key-0123456789"
REDIS_URL = os.environ.get("IMAGEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
LEASE_SECONDS = 2.0
MJ_TASKS, FLUX_TASKS = 12, 8
GENERATE = {
    "model": "sketch",
    "prompt": "a lighthouse",
    "size": "256x256",
    "response_format": "url",
}


def sql(database: str | None, query: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of ``query`` on ``database`` (``None``: the test server's own database)."""

    async def run() -> list[asyncpg.Record]:
        url = POSTGRES_URL if database is None else POSTGRES_URL.rsplit("/", 1)[0] + "/" + database
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


@dataclass
class Replica:
    name: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    replicas: list[Replica]
    s3: S3Server
    bucket: str
    database: str
    key: str = ""
    auth: dict[str, str] = field(default_factory=dict)

    def client(self, replica: Replica) -> httpx.Client:
        return httpx.Client(base_url=replica.url, headers=self.auth, timeout=60)


def start_all(replicas: list[Replica], env: dict[str, str]) -> None:
    """Every replica at the same moment, then wait until each is ready."""
    for replica in replicas:
        replica.process = subprocess.Popen(
            [
                str(EXECUTABLE),
                "serve",
                "--port",
                str(replica.port),
                "--data-dir",
                str(replica.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    deadline = time.monotonic() + 60
    for replica in replicas:
        while True:
            try:
                if httpx.get(f"{replica.url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert replica.process is not None and replica.process.poll() is None, (
                f"{replica.name} exited with {replica.process and replica.process.returncode}"
            )
            assert time.monotonic() < deadline, f"{replica.name} did not become ready"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("the fleet test needs PostgreSQL in CI")
        pytest.skip("PostgreSQL is not reachable")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail("the fleet test needs Redis in CI")
        pytest.skip("Redis is not reachable")
    database = "imagegate_fleet_" + secrets.token_hex(6)
    sql(None, f'CREATE DATABASE "{database}"')
    s3 = S3Server()  # its own server: the outage test stops it
    s3.start()
    bucket = s3.create_bucket()
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "AWS_"))}
    env |= s3.env() | {
        "IMAGEGATE_DATABASE_URL": f"{base}/{database}",
        "IMAGEGATE_REDIS_URL": REDIS_URL,
        "IMAGEGATE_STORAGE_URL": f"s3://{bucket}/fleet",
        "IMAGEGATE_SECRET": secrets.token_hex(32),
        "IMAGEGATE_ADMIN_KEY": ADMIN,
        "IMAGEGATE_TASK_LEASE_SECONDS": str(LEASE_SECONDS),
        "IMAGEGATE_TASK_POLL_SECONDS": "0.1",
        "IMAGEGATE_TASK_CONCURRENCY": "4",
    }
    root = tmp_path_factory.mktemp("fleet")
    replicas = [Replica(name, free_port(), root / name) for name in ("a", "b", "c")]
    try:
        start_all(replicas, env)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        created = httpx.post(f"{replicas[0].url}/admin/keys", json={"name": "fleet"}, headers=admin)
        key = created.json()
        topped = httpx.post(
            f"{replicas[1].url}/admin/keys/{key['id']}/topup",
            json={"amount_usd": 100},
            headers=admin,
        )
        assert topped.status_code == 200, topped.text
        yield Fleet(
            replicas, s3, bucket, database, key["key"], {"Authorization": f"Bearer {key['key']}"}
        )
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in replicas:
            if replica.process is not None:
                replica.process.wait(20)
        s3.stop()
        sql(None, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def relink(url: str, replica: Replica) -> str:
    """The same signed link, asked of another replica."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(host="127.0.0.1", port=replica.port))


def test_every_replica_serves_what_another_made_and_nothing_is_on_local_disk(fleet: Fleet) -> None:
    a, b, c = fleet.replicas
    with fleet.client(a) as client:
        made = client.post("/v1/images/generations", json=GENERATE)
    assert made.status_code == 200, made.text
    link = made.json()["data"][0]["url"]
    original = httpx.get(link).content
    assert original[:4] == b"\x89PNG"
    for other in (b, c):
        assert httpx.get(relink(link, other)).content == original

    with fleet.client(b) as client:
        upload = client.post(
            "/v1/files",
            files={"file": ("in.png", original, "image/png")},
            data={"purpose": "vision"},
        )
    with fleet.client(c) as client:
        content = client.get(f"/v1/files/{upload.json()['id']}/content")
    assert content.content == original
    for replica in fleet.replicas:
        assert not (replica.data_dir / "assets").exists()


def submit_batch(client: httpx.Client) -> list[str]:
    """Midjourney grids of 512×512 pictures and 1 MP Flux images, submitted together."""

    def imagine(index: int) -> str:
        body = {"prompt": f"a red house by the sea --q .5 --seed {index}"}
        answer = client.post("/mj/submit/imagine", json=body).json()
        assert answer["code"] in (1, 22), answer
        return str(answer["result"])

    def flux(index: int) -> str:
        body = {"prompt": f"a blue boat {index}", "width": 1024, "height": 1024, "seed": index}
        answer = client.post("/flux/v1/sketch", json=body)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        mj = pool.map(imagine, range(MJ_TASKS))
        fx = pool.map(flux, range(FLUX_TASKS))
        return [*mj, *fx]


def test_a_replica_killed_with_tasks_in_hand_loses_none_and_charges_once(fleet: Fleet) -> None:
    a, b, _ = fleet.replicas
    with fleet.client(a) as client:
        ids = submit_batch(client)
    # Kill ``a`` once it holds tasks (its lease owner names its pid). It is frozen before the
    # second look, so it cannot finish what it holds between that look and the kill.
    assert a.process is not None
    mine = f"-{a.process.pid}-"

    def a_holds_a_task() -> bool:
        rows = sql(fleet.database, "SELECT lease_owner FROM tasks WHERE status = 'running'")
        return any(mine in row["lease_owner"] for row in rows)

    deadline = time.monotonic() + 60
    while True:
        if a_holds_a_task():
            a.process.send_signal(signal.SIGSTOP)
            if a_holds_a_task():
                break
            a.process.send_signal(signal.SIGCONT)
        assert time.monotonic() < deadline, "the replica never held a task"
        time.sleep(0.02)
    a.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    a.process.wait(10)
    # What the dead replica held stays as it is until its leases run out.
    rows = sql(
        fleet.database, "SELECT id, lease_owner, attempts FROM tasks WHERE status = 'running'"
    )
    held = {row["id"]: row["lease_owner"] for row in rows}
    attempts_held = {row["id"]: row["attempts"] for row in rows}

    taken_over: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while True:
        rows = sql(fleet.database, "SELECT id, status, lease_owner, attempts FROM tasks")
        now = time.monotonic()
        # A taken-over task has a new owner, or, when it already finished between two looks,
        # one more attempt than it had when its replica died.
        for row in rows:
            if row["id"] not in held:
                continue
            new_owner = row["lease_owner"] not in (None, held[row["id"]])
            if new_owner or row["attempts"] > attempts_held[row["id"]]:
                taken_over.setdefault(row["id"], now - killed_at)
        states = Counter(row["status"] for row in rows)
        assert not states["failed"] and not states["canceled"], states
        if states["succeeded"] == len(ids):
            break
        assert now < deadline, states
        time.sleep(0.05)

    assert taken_over, "no task of the killed replica was taken over"
    retried = {row["id"] for row in sql(fleet.database, "SELECT id FROM tasks WHERE attempts > 1")}
    # Only the killed replica's tasks ran again.
    assert set(taken_over) <= retried
    assert all(task_id in held and mine in held[task_id] for task_id in retried)
    assert any(mine in owner for owner in held.values())
    takeover = max(taken_over.values())
    print(f"takeover: {len(taken_over)} tasks of the killed replica re-claimed in {takeover:.2f} s")
    assert takeover < LEASE_SECONDS + 3
    assets = Counter(r["request_id"] for r in sql(fleet.database, "SELECT request_id FROM assets"))
    assert {task_id: assets[task_id] for task_id in ids} == dict.fromkeys(ids, 1)
    usage = Counter(r["request_id"] for r in sql(fleet.database, "SELECT request_id FROM usage"))
    assert {task_id: usage[task_id] for task_id in ids} == dict.fromkeys(ids, 1)
    charges = sql(
        fleet.database,
        "SELECT t.id, count(l.id) AS n FROM tasks t JOIN ledger l"
        " ON l.reservation_id = t.reservation_id AND l.kind = 'charge'"
        " WHERE t.id = ANY($1::text[]) GROUP BY t.id",
        ids,
    )
    assert {row["id"]: row["n"] for row in charges} == dict.fromkeys(ids, 1)
    with fleet.client(b) as client:
        for task_id in [*taken_over, *ids[:2]]:
            if task_id in ids[:MJ_TASKS]:
                image = client.get(f"/mj/image/{task_id}")
                assert image.status_code == 200 and image.content[:4] == b"\x89PNG"


def test_the_bucket_down_for_ten_seconds_under_load_loses_no_accepted_image(fleet: Fleet) -> None:
    survivors = [r for r in fleet.replicas if r.process is not None and r.process.poll() is None]
    assert len(survivors) >= 2
    accepted_links: list[str] = []
    accepted_tasks: list[str] = []
    refused: Counter[int] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        replica = survivors[worker % len(survivors)]
        with fleet.client(replica) as client:
            index = 0
            while not stop.is_set():
                index += 1
                if index % 2:
                    answer = client.post("/v1/images/generations", json=GENERATE)
                    if answer.status_code == 200:
                        with lock:
                            accepted_links.append(answer.json()["data"][0]["url"])
                        time.sleep(0.05)
                        continue
                else:
                    body = {"prompt": f"storm {worker} {index}", "width": 256, "height": 256}
                    answer = client.post("/flux/v1/sketch", json=body)
                    if answer.status_code == 200:
                        with lock:
                            accepted_tasks.append(answer.json()["id"])
                        time.sleep(0.05)
                        continue
                assert answer.status_code == 503 and "retry-after" in answer.headers, answer.text
                with lock:
                    refused[answer.status_code] += 1
                time.sleep(0.2)

    with ThreadPoolExecutor(2) as pool:
        workers = [pool.submit(load, worker) for worker in range(2)]
        time.sleep(2)
        before = len(accepted_links), len(accepted_tasks)
        fleet.s3.stop()
        time.sleep(1)
        ready = httpx.get(f"{survivors[0].url}/readyz")
        assert ready.status_code == 503, ready.text
        time.sleep(9)
        fleet.s3.start()
        back_at = time.time()
        time.sleep(1)
        stop.set()
        for worker in workers:
            worker.result()

    assert before[0] and before[1], "no load before the outage"
    assert refused[503], "nothing was refused while the bucket was down"
    deadline = time.monotonic() + 45
    while True:
        rows = sql(
            fleet.database, "SELECT status FROM tasks WHERE id = ANY($1::text[])", accepted_tasks
        )
        states = Counter(row["status"] for row in rows)
        assert len(rows) == len(accepted_tasks) and not states["failed"], states
        if states["succeeded"] == len(accepted_tasks):
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    waited = sql(
        fleet.database,
        "SELECT count(*) AS n FROM tasks WHERE id = ANY($1::text[])"
        " AND created_at < $2 AND finished_at > $2",
        accepted_tasks,
        back_at,
    )
    assert waited[0]["n"] >= 1, "no accepted task had to wait for the bucket"
    with fleet.client(survivors[-1]) as client:
        for task_id in accepted_tasks:
            result = client.get("/flux/v1/get_result", params={"id": task_id}).json()
            accepted_links.append(result["result"]["sample"])
    for link in accepted_links:
        image = httpx.get(relink(link, survivors[-1]))
        assert image.status_code == 200 and image.content[:2] in (b"\x89P", b"\xff\xd8"), link
    print(
        f"outage: {len(accepted_links)} accepted images all served after it, "
        f"{refused[503]} requests refused with 503 while the bucket was down, "
        f"{waited[0]['n']} accepted tasks waited for it"
    )

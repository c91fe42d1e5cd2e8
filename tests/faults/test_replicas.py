"""Faults under load on real replicas (PostgreSQL + Redis): a replica killed (SIGKILL) or
stopped (SIGTERM), the database cut off, Redis cut off. Afterwards every request a client
sent got its answer (retrying as an SDK does), none got a 500, the books balance (balances =
ledger, usage = charges), no Idempotency-Key is stuck in flight and no hold stays held."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.faults.cluster import (
    LEASE_SECONDS,
    Cluster,
    Load,
    assert_books_balance,
    assert_nothing_stuck,
    assert_tasks_done,
    charges_of,
    query,
)
from tests.faults.proxy import Proxy, proxy_to

pytestmark = pytest.mark.faults

REDIS_URL = os.environ.get("IMAGEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CLEANUP_SECONDS = 3 * LEASE_SECONDS + 5


@pytest.fixture(scope="module")
def stack(
    postgres_available: bool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Proxy, Proxy, str]]:
    """Replicas on a database of their own; the database and Redis each behind a proxy.
    Yields the cluster, the two proxies and the database's direct (asyncpg) URL. Shared by
    the module's tests (starting replicas is most of their time): each test uses a key of
    its own and starts what it needs."""
    if not postgres_available:
        pytest.skip("PostgreSQL is not reachable")
    name = "imagegate_faults_" + secrets.token_hex(6)
    admin(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name)
    redis = urlsplit(REDIS_URL)
    try:
        with (
            proxy_to(url.host or "127.0.0.1", url.port or 5432) as db_proxy,
            proxy_to(redis.hostname or "127.0.0.1", redis.port or 6379) as redis_proxy,
        ):
            proxied = url.set(drivername="postgresql+asyncpg", host="127.0.0.1", port=db_proxy.port)
            cluster = Cluster(
                tmp_path_factory.mktemp("faults"),
                proxied.render_as_string(hide_password=False),
                f"redis://127.0.0.1:{redis_proxy.port}{redis.path}",
            )
            try:
                cluster.ensure(2)
                yield cluster, db_proxy, redis_proxy, url.render_as_string(hide_password=False)
            finally:
                cluster.stop_all()
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def run_load(cluster: Cluster, seconds: float, fault: object) -> Load:
    cluster.ensure(2)
    load = Load(cluster, *cluster.new_key(credit=10_000)).start()
    time.sleep(seconds / 2)
    fault()  # type: ignore[operator]
    time.sleep(seconds / 2)
    load.stop()
    return load


def assert_all_answered(load: Load, cluster: Cluster, direct: str) -> None:
    """Every request answered, every task done, none twice charged, no 500, each 429/503 with
    Retry-After."""
    assert load.answered, "no request succeeded"
    assert_tasks_done(direct, load, CLEANUP_SECONDS)
    assert charges_of(direct, load.key_id) == len(load.answered), (load.statuses, load.dropped)
    assert not load.bad, load.bad[:5]
    assert not load.unanswered, (len(load.unanswered), cluster.logs())
    assert load.statuses[500] == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_replica_killed_or_stopped_under_load(
    stack: tuple[Cluster, Proxy, Proxy, str], sig: signal.Signals
) -> None:
    cluster, _, _, direct = stack
    victim = cluster.live()[0]
    exit_codes: list[int] = []

    def fault() -> None:
        exit_codes.append(cluster.kill(victim, sig))

    load = run_load(cluster, 4, fault)
    assert_all_answered(load, cluster, direct)
    if sig == signal.SIGTERM:
        # A graceful stop: uvicorn re-raises the signal once the app has shut down.
        assert exit_codes[0] in (0, -signal.SIGTERM), cluster.logs()
        assert "failed; closing the rest" not in victim.log.read_text()
    assert_nothing_stuck(direct, load, CLEANUP_SECONDS)
    assert_books_balance(direct)


def test_the_database_cut_off_under_load(stack: tuple[Cluster, Proxy, Proxy, str]) -> None:
    cluster, db_proxy, _, direct = stack

    def fault() -> None:
        db_proxy.cut()
        time.sleep(2)
        db_proxy.restore()

    load = run_load(cluster, 6, fault)
    assert_all_answered(load, cluster, direct)
    assert load.statuses[503] > 0, load.statuses  # the outage was seen, as a retryable 503
    assert_nothing_stuck(direct, load, CLEANUP_SECONDS)
    assert_books_balance(direct)


def test_redis_cut_off_under_load(stack: tuple[Cluster, Proxy, Proxy, str]) -> None:
    cluster, _, redis_proxy, direct = stack

    def fault() -> None:
        redis_proxy.cut()
        time.sleep(2)
        redis_proxy.restore()

    load = run_load(cluster, 5, fault)
    assert_all_answered(load, cluster, direct)
    assert set(load.statuses) == {200}, load.statuses  # limits fall back per process
    assert_nothing_stuck(direct, load, CLEANUP_SECONDS)
    assert_books_balance(direct)
    assert query(direct, "SELECT 1 AS one")[0]["one"] == 1

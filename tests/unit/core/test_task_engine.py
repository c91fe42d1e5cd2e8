"""The task engine against in-memory repositories (no database): a task runs, is stored and
charged exactly once; failures and cancels give the hold back; an expired lease is taken over
and only one completion counts; too many interruptions fail a task; webhooks are queued in the
unit of work that decided them, and a unit of work that fails writes nothing."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from imagegate.core.assets import AssetService
from imagegate.core.billing import Billing, Reservation
from imagegate.core.requests import GeneratedImage
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.tasks import EngineSettings, TaskEngine, TaskRun
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.errors import InvalidRequest, RateLimited
from tests.unit.core.memory_repositories import MemoryBlobStore
from tests.unit.core.memory_tasks import (
    MemoryAssetRepository,
    MemoryCommitter,
    MemoryDatabase,
    MemoryHoldRepository,
    MemoryLedgerRepository,
    MemoryState,
    MemoryTaskRepository,
    MemoryUsageRowRepository,
    MemoryWebhookOutbox,
)

COST = Decimal("0.25")
HOLD = Decimal("1.00")
BALANCE = Decimal("10.00")


def tiny_png(red: int) -> GeneratedImage:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (red, 0, 0)).save(buffer, "PNG")
    return GeneratedImage(buffer.getvalue(), "png", 4, 4)


@dataclass
class Recorder:
    """A handler that records every run and can be told to block or fail."""

    runs: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    error: Exception | None = None

    async def __call__(self, task: TaskRecord, run: TaskRun) -> TaskOutput:
        self.runs.append(task.id)
        await run.progress(50)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return TaskOutput(images=[tiny_png(len(self.runs))], cost=COST, result={"note": "ok"})


@dataclass
class World:
    """One in-memory database and the services over it; ``engine()`` adds a worker."""

    db: MemoryDatabase = field(default_factory=MemoryDatabase)
    blobs: MemoryBlobStore = field(default_factory=MemoryBlobStore)
    outbox: MemoryWebhookOutbox = field(default_factory=MemoryWebhookOutbox)
    engines: list[TaskEngine] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.committer = MemoryCommitter(self.db)
        self.billing = Billing(
            MemoryHoldRepository(self.db), MemoryLedgerRepository(self.db), self.committer
        )
        self.assets = AssetService(
            MemoryAssetRepository(self.db),
            self.blobs,
            b"k" * 32,
            link_ttl=60,
            retention_seconds=60,
        )

    @property
    def state(self) -> MemoryState:
        return self.db.state

    def engine(self, handler: Any = None, **settings: Any) -> TaskEngine:
        engine = TaskEngine(
            MemoryTaskRepository(self.db),
            self.committer,
            self.assets,
            None,
            EngineSettings(poll_interval=0.01, **settings),
            self.billing,
            outbox=self.outbox,
            usage=MemoryUsageRowRepository(self.db),
        )
        engine.register("test", handler or Recorder())
        self.engines.append(engine)
        return engine

    async def key(self, key_id: str = "key_a", **limits: Any) -> None:
        async def create(uow: UnitOfWork) -> None:
            await self.billing.create_limits(
                uow, key_id, {"balance_usd": BALANCE, **limits}, time.time()
            )

        await self.committer.run(create)

    async def hold(self, key_id: str = "key_a", request_id: str = "req-1") -> Reservation:
        return await self.billing.reserve(key_id, HOLD, request_id)

    def balance(self, key_id: str = "key_a") -> Decimal | None:
        return self.state.limits[key_id].balance_usd

    def ledger(self, reservation: Reservation) -> list[tuple[str, Decimal]]:
        return [
            (entry.kind, entry.amount)
            for entry in self.state.ledger
            if entry.reservation_id == reservation.id
        ]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    world = World()
    yield world
    for engine in world.engines:
        await engine.close()


async def submit(engine: TaskEngine, reservation: Reservation | None = None, **kw: Any) -> str:
    task = await engine.submit(
        kind="test",
        owner_key_id="key_a",
        request={"prompt": "a cat"},
        meta=kw.pop("meta", {}),
        reservation_id=reservation.id if reservation else None,
        **kw,
    )
    return task.id


async def wait_for(engine: TaskEngine, task_id: str, *statuses: str) -> TaskRecord:
    deadline = time.monotonic() + 2
    while True:
        task = await engine.get(task_id, None)
        if task.status in statuses:
            return task
        assert time.monotonic() < deadline, f"task stuck in {task.status}"
        await asyncio.sleep(0.002)


# --- the unit of work --------------------------------------------------------------------


async def test_a_unit_of_work_that_raises_writes_nothing() -> None:
    db = MemoryDatabase()
    committer = MemoryCommitter(db)
    ledger = MemoryLedgerRepository(db)
    holds = MemoryHoldRepository(db)

    async def half_done(uow: UnitOfWork) -> None:
        await holds.create_limits(uow, "key_a", {"balance_usd": BALANCE}, time.time())
        assert await holds.read_in(uow, "key_a", time.time()) is not None  # sees its own write
        assert await holds.read("key_a", time.time()) is None  # nobody else does yet
        raise RuntimeError("the connection dropped")

    with pytest.raises(RuntimeError):
        await committer.run(half_done)
    assert db.state.limits == {} and db.rollbacks == 1 and db.commits == 0

    async def done(uow: UnitOfWork) -> str:
        await holds.create_limits(uow, "key_a", {"balance_usd": BALANCE}, time.time())
        ledger.append(uow)
        return "ok"

    assert await committer.run(done) == "ok"
    assert db.state.limits["key_a"].balance_usd == BALANCE and db.commits == 1


# --- success, and exactly one charge ---------------------------------------------------


async def test_a_task_runs_stores_its_outputs_and_is_charged_once(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    assert world.balance() == BALANCE - HOLD
    handler = Recorder()
    engine = world.engine(handler)
    task_id = await submit(engine, reservation)
    assert (await engine.get(task_id, "key_a")).status == "queued"

    assert await engine.claim_and_start() == 1
    done = await wait_for(engine, task_id, "succeeded")

    assert handler.runs == [task_id]
    assert done.progress == 100 and done.attempts == 1 and done.lease_owner is None
    assert done.result is not None and done.result["note"] == "ok"
    assert done.started_at is not None and done.finished_at is not None
    [asset_id] = done.asset_ids
    row = world.state.assets[asset_id]
    assert row.request_id == task_id and row.asset.owner_key_id == "key_a"
    assert world.blobs.blobs[row.asset.sha256] == tiny_png(1).data
    assert done.result["blobs"] == [row.asset.sha256]
    [usage] = world.state.usage
    assert usage.request_id == task_id and usage.key_id == "key_a"
    assert usage.cost_usd == COST and usage.route == "task:test" and usage.images == 1
    assert world.state.holds[reservation.id].state == "settled"
    assert world.balance() == BALANCE - COST
    assert world.ledger(reservation) == [("reserve", -HOLD), ("release", HOLD), ("charge", -COST)]
    assert world.state.outbox == []  # no webhook_url, no delivery

    # Completing it again (a late worker, a retried call) changes nothing.
    again = TaskOutput(images=[tiny_png(99)], cost=COST)
    assert await engine.complete(done, again) is False
    assert world.balance() == BALANCE - COST and len(world.state.usage) == 1
    assert len(world.state.assets) == 1
    assert len(world.ledger(reservation)) == 3
    assert (await engine.get(task_id, None)).asset_ids == [asset_id]


async def test_two_completions_of_a_held_task_store_and_charge_once(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    engine = world.engine()
    task_id = await submit(engine, reservation)
    store = MemoryTaskRepository(world.db)
    [claimed] = await store.claim(engine.worker_id, 1, time.time(), 30)
    assert claimed.id == task_id

    outputs = [TaskOutput(images=[tiny_png(n)], cost=COST) for n in (1, 2)]
    won = await asyncio.gather(*(engine.complete(claimed, output) for output in outputs))

    assert sorted(won) == [False, True]
    assert world.balance() == BALANCE - COST
    assert len(world.state.usage) == 1 and len(world.state.assets) == 1
    assert [kind for kind, _ in world.ledger(reservation)] == ["reserve", "release", "charge"]


async def test_a_charge_above_the_hold_takes_more_up_to_the_balance(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    expensive = Decimal("1.50")

    async def dear(task: TaskRecord, run: TaskRun) -> TaskOutput:
        return TaskOutput(images=[tiny_png(1)], cost=expensive)

    engine = world.engine(dear)
    task_id = await submit(engine, reservation)
    await engine.claim_and_start()
    await wait_for(engine, task_id, "succeeded")
    assert world.balance() == BALANCE - expensive
    assert world.state.usage[0].cost_usd == expensive


# --- failure and cancellation give the hold back ---------------------------------------


async def test_a_failing_handler_fails_the_task_and_releases_its_hold(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    refused = InvalidRequest("the prompt was refused", code="bad_prompt")
    engine = world.engine(Recorder(error=refused))
    task_id = await submit(engine, reservation)

    await engine.claim_and_start()
    failed = await wait_for(engine, task_id, "failed", "succeeded")

    assert failed.status == "failed" and failed.result is None
    assert failed.error == {
        "code": "bad_prompt",
        "message": "the prompt was refused",
        "status": 400,
    }
    assert world.state.holds[reservation.id].state == "released"
    assert world.balance() == BALANCE
    assert world.ledger(reservation) == [("reserve", -HOLD), ("release", HOLD)]
    assert world.state.usage == [] and world.state.assets == {}


async def test_an_unexpected_error_fails_the_task_as_internal(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    engine = world.engine(Recorder(error=KeyError("bug")))
    task_id = await submit(engine, reservation)

    await engine.claim_and_start()
    failed = await wait_for(engine, task_id, "failed", "succeeded")

    assert failed.error is not None and failed.error["message"] == "internal error"
    assert world.balance() == BALANCE and world.state.usage == []


async def test_a_queued_task_is_cancelled_at_once_and_never_runs(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    handler = Recorder()
    engine = world.engine(handler)
    task_id = await submit(engine, reservation)

    cancelled = await engine.cancel(task_id, "key_a")

    assert cancelled.status == "canceled" and cancelled.finished_at is not None
    assert world.state.holds[reservation.id].state == "released"
    assert world.balance() == BALANCE
    assert await engine.claim_and_start() == 0
    assert handler.runs == [] and world.state.usage == []
    assert (await engine.cancel(task_id, "key_a")).status == "canceled"  # idempotent
    assert world.ledger(reservation) == [("reserve", -HOLD), ("release", HOLD)]


async def test_a_running_task_is_cancelled_and_its_hold_released(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    handler = Recorder(gate=asyncio.Event())
    engine = world.engine(handler)
    task_id = await submit(engine, reservation)
    await engine.claim_and_start()
    while not handler.runs:
        await asyncio.sleep(0)

    await engine.cancel(task_id, "key_a")
    cancelled = await wait_for(engine, task_id, "canceled")

    assert cancelled.result is None and world.state.usage == []
    assert world.balance() == BALANCE
    assert world.state.holds[reservation.id].state == "released"


async def test_another_keys_task_is_not_found(world: World) -> None:
    engine = world.engine()
    task_id = await submit(engine)
    with pytest.raises(Exception, match="no such task"):
        await engine.cancel(task_id, "key_b")
    assert (await engine.get(task_id, "key_a")).status == "queued"


# --- leases, take-overs and retries ----------------------------------------------------


async def test_an_expired_lease_is_taken_over_and_the_task_finished_once(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    slow, fast = Recorder(gate=asyncio.Event()), Recorder()
    first = world.engine(slow, lease_seconds=0.05)
    second = world.engine(fast, lease_seconds=0.05)
    task_id = await submit(first, reservation)

    store = MemoryTaskRepository(world.db)
    assert await first.claim_and_start() == 1  # never heart-beats (not started)
    lease = world.state.tasks[task_id].lease_expires_at
    assert lease is not None
    assert await store.claim("other", 1, lease - 0.001, 1) == []  # the lease still holds
    await asyncio.sleep(max(0.0, lease - time.time()) + 0.01)
    assert await second.claim_and_start() == 1
    done = await wait_for(second, task_id, "succeeded")
    assert slow.gate is not None
    commits = world.db.commits
    slow.gate.set()  # the first worker finishes late: its completion must not count
    deadline = time.monotonic() + 2
    while world.db.commits == commits:  # its completing unit of work ran (and changed nothing)
        assert time.monotonic() < deadline
        await asyncio.sleep(0.002)

    assert slow.runs == fast.runs == [task_id]
    assert done.attempts == 2
    assert (await second.get(task_id, None)).asset_ids == done.asset_ids
    assert len(world.state.assets) == 1 and len(world.state.usage) == 1
    assert world.balance() == BALANCE - COST
    assert [kind for kind, _ in world.ledger(reservation)] == ["reserve", "release", "charge"]


async def test_a_worker_past_its_own_lease_keeps_its_run_and_starts_no_second(
    world: World,
) -> None:
    """A loop stalled past a heartbeat lets the lease run out; the worker's next claim may take
    the task back, and must not start it beside the run it already has."""
    await world.key()
    reservation = await world.hold()
    slow = Recorder(gate=asyncio.Event())
    engine = world.engine(slow, lease_seconds=0.05)
    task_id = await submit(engine, reservation)
    assert await engine.claim_and_start() == 1  # never heart-beats (not started)
    while not slow.runs:
        await asyncio.sleep(0)
    lease = world.state.tasks[task_id].lease_expires_at
    assert lease is not None
    await asyncio.sleep(max(0.0, lease - time.time()) + 0.01)

    assert await engine.claim_and_start() == 0
    renewed = world.state.tasks[task_id].lease_expires_at
    assert renewed is not None and renewed > lease  # the claim took the lease back
    assert slow.gate is not None
    slow.gate.set()
    await wait_for(engine, task_id, "succeeded")
    assert slow.runs == [task_id]
    assert len(world.state.assets) == 1 and len(world.state.usage) == 1
    assert world.ledger(reservation) == [("reserve", -HOLD), ("release", HOLD), ("charge", -COST)]


async def test_heartbeats_keep_a_running_task_from_being_taken_over(world: World) -> None:
    """Deterministic whatever the machine's load: wait for the heartbeat to renew the lease,
    then claim at a time past the first lease (nothing) and past the renewed one (taken)."""
    gate = asyncio.Event()
    first = world.engine(Recorder(gate=gate), lease_seconds=0.06)
    store = MemoryTaskRepository(world.db)
    task_id = await submit(first)
    first.start()
    claimed = await wait_for(first, task_id, "running")
    assert claimed.lease_expires_at is not None
    deadline = time.monotonic() + 2
    while (lease := world.state.tasks[task_id].lease_expires_at) == claimed.lease_expires_at:
        assert time.monotonic() < deadline, "the lease was never renewed"
        await asyncio.sleep(0.005)
    assert lease is not None and lease > claimed.lease_expires_at

    assert await store.claim("other", 1, claimed.lease_expires_at + 0.001, 1) == []
    gate.set()
    done = await wait_for(first, task_id, "succeeded")
    assert done.attempts == 1 and len(world.state.usage) == 1


async def test_a_closing_engine_hands_its_tasks_on_at_once(world: World) -> None:
    interrupted, finisher = Recorder(gate=asyncio.Event()), Recorder()
    first = world.engine(interrupted, lease_seconds=60)
    second = world.engine(finisher, lease_seconds=60)
    task_id = await submit(first)
    await first.claim_and_start()
    while not interrupted.runs:
        await asyncio.sleep(0)

    await first.close()
    assert (await second.get(task_id, None)).status == "running"  # not cancelled
    assert await second.claim_and_start() == 1  # no wait for the 60 s lease
    done = await wait_for(second, task_id, "succeeded")
    assert done.attempts == 2 and interrupted.runs == finisher.runs == [task_id]
    assert len(world.state.usage) == 1


async def test_a_task_is_retried_up_to_max_attempts(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    handler = Recorder()
    engine = world.engine(handler, max_attempts=2)
    store = MemoryTaskRepository(world.db)
    task_id = await submit(engine, reservation)
    # A worker claims it and dies without a heartbeat: its lease ran out long ago.
    assert len(await store.claim("ghost-1", 1, time.time() - 10, 1)) == 1

    assert await engine.claim_and_start() == 1  # attempt 2 of 2: it runs
    done = await wait_for(engine, task_id, "succeeded", "failed")
    assert done.status == "succeeded" and done.attempts == 2 and handler.runs == [task_id]
    assert world.balance() == BALANCE - COST


async def test_a_task_interrupted_too_often_fails_and_releases_its_hold(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    handler = Recorder()
    engine = world.engine(handler, max_attempts=2)
    store = MemoryTaskRepository(world.db)
    task_id = await submit(engine, reservation)
    # Two workers claim it, one after the other, and die without a heartbeat.
    for ghost, ago in (("ghost-1", 20), ("ghost-2", 10)):
        assert len(await store.claim(ghost, 1, time.time() - ago, 1)) == 1

    assert await engine.claim_and_start() == 1
    failed = await wait_for(engine, task_id, "failed", "succeeded")

    assert failed.status == "failed" and failed.attempts == 3 and handler.runs == []
    assert failed.error is not None and "interrupted" in failed.error["message"]
    assert world.balance() == BALANCE and world.state.usage == []
    assert world.state.holds[reservation.id].state == "released"


async def test_a_key_at_its_concurrency_limit_is_refused_a_task(world: World) -> None:
    await world.key(max_concurrent=1)
    engine = world.engine()
    first = await submit(engine)
    with pytest.raises(RateLimited):
        await submit(engine)
    await engine.cancel(first, "key_a")
    await submit(engine)  # the cancelled one no longer counts


# --- webhooks, and all or nothing ------------------------------------------------------


async def test_a_task_with_a_webhook_queues_its_deliveries(world: World) -> None:
    await world.key()
    reservation = await world.hold()
    engine = world.engine()
    task_id = await submit(
        engine, reservation, webhook_url="https://client.example/hook", webhook_secret="s3"
    )

    await engine.claim_and_start()
    done = await wait_for(engine, task_id, "succeeded")

    started, finished = world.state.outbox
    assert {row.task_id for row in world.state.outbox} == {task_id}
    assert {row.url for row in world.state.outbox} == {"https://client.example/hook"}
    assert {row.secret for row in world.state.outbox} == {"s3"}
    assert started.payload["status"] == "running"
    # The payload is the task as the completing unit of work left it.
    assert finished.payload["status"] == "succeeded"
    assert finished.payload["assets"] == done.asset_ids and len(done.asset_ids) == 1


async def test_a_front_chooses_the_statuses_and_the_payload(world: World) -> None:
    engine = world.engine(Recorder(error=InvalidRequest("no")))
    engine.register_webhook_renderer("mj", lambda task: {"state": task.status.upper()})
    meta = {"front": "mj", "webhook_statuses": ["succeeded", "failed"]}
    task_id = await submit(engine, webhook_url="https://client.example/hook", meta=meta)

    await engine.claim_and_start()
    await wait_for(engine, task_id, "failed")

    assert [row.payload for row in world.state.outbox] == [{"state": "FAILED"}]


async def test_a_cancelled_task_queues_its_webhook(world: World) -> None:
    engine = world.engine()
    task_id = await submit(engine, webhook_url="https://client.example/hook")
    await engine.cancel(task_id, "key_a")
    [row] = world.state.outbox
    assert row.task_id == task_id and row.payload["status"] == "canceled"


async def test_a_completion_that_fails_midway_writes_nothing(world: World) -> None:
    """The charge, asset rows, usage row and webhook of a completion commit together: when
    the last of them fails, the task is still running, its hold still held, nothing charged;
    the next completion does it all once."""
    await world.key()
    reservation = await world.hold()
    engine = world.engine()
    task_id = await submit(engine, reservation, webhook_url="https://client.example/hook")
    [claimed] = await MemoryTaskRepository(world.db).claim(engine.worker_id, 1, time.time(), 30)
    output = TaskOutput(images=[tiny_png(1)], cost=COST)

    world.outbox.broken = True
    with pytest.raises(ConnectionError):
        await engine.complete(claimed, output)

    task = await engine.get(task_id, None)
    assert task.status == "running" and task.lease_owner == engine.worker_id
    assert task.result is None
    assert world.state.holds[reservation.id].state == "held"
    assert world.balance() == BALANCE - HOLD
    assert world.state.usage == [] and world.state.assets == {} and world.state.outbox == []
    assert world.ledger(reservation) == [("reserve", -HOLD)]

    world.outbox.broken = False
    assert await engine.complete(claimed, output) is True
    assert (await engine.get(task_id, None)).status == "succeeded"
    assert world.balance() == BALANCE - COST
    assert len(world.state.usage) == 1 and len(world.state.assets) == 1
    [row] = world.state.outbox
    assert row.payload["status"] == "succeeded"

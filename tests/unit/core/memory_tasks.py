"""An in-memory database for the task engine's unit tests: task rows, key limits and holds,
the ledger, asset rows, usage rows and the webhook outbox, and a committer whose units of work
commit all their writes or none.

A unit of work works on a copy of the committed state and replaces it only when its operation
returns; an operation that raises leaves the state as it found it (the contract of
:class:`~imagegate.core.unit_of_work.Committer`). Units of work and the single-row writes of
the task repository run one at a time (one lock), as a database serialises writes to the same
rows, so a unit of work never loses a write made while it ran. Each repository keeps the
semantics its SQL counterpart promises (a finish only while the lease is held, a hold closed
once, a claim of queued or expired tasks, oldest first)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from imagegate.core.assets import Asset
from imagegate.core.billing import (
    ClosedHold,
    KeyLimits,
    LedgerEntry,
    NewHold,
    day_of,
    month_of,
)
from imagegate.core.task_model import (
    CLAIMABLE,
    NEW_TASK_DEFAULTS,
    UNFINISHED,
    WAITING,
    TaskRecord,
)
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.core.usage import UsageRow

T = TypeVar("T")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class LimitsRow:
    """A key's limits row: spending is counted for the ``day`` and ``month`` it names."""

    key_id: str
    balance_usd: Decimal | None = None
    budget_daily_usd: Decimal | None = None
    budget_monthly_usd: Decimal | None = None
    max_concurrent: int | None = None
    expires_at: float | None = None
    day: str | None = None
    day_spent_usd: Decimal = ZERO
    month: str | None = None
    month_spent_usd: Decimal = ZERO

    def limits(self, now: float) -> KeyLimits:
        return KeyLimits(
            key_id=self.key_id,
            balance_usd=self.balance_usd,
            budget_daily_usd=self.budget_daily_usd,
            budget_monthly_usd=self.budget_monthly_usd,
            max_concurrent=self.max_concurrent,
            expires_at=self.expires_at,
            day_spent_usd=self.day_spent_usd if self.day == day_of(now) else ZERO,
            month_spent_usd=self.month_spent_usd if self.month == month_of(now) else ZERO,
        )


@dataclass(frozen=True, slots=True)
class HoldRow:
    """A reservation row: ``state`` is ``held``, ``settled`` or ``released``."""

    id: str
    key_id: str
    request_id: str | None
    amount: Decimal
    state: str
    created_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    closed_at: float | None = None


@dataclass(frozen=True, slots=True)
class AssetRow:
    asset: Asset
    request_id: str | None
    prompt: str | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A queued webhook delivery (its first try)."""

    message_id: str
    task_id: str | None
    url: str
    secret: str | None
    payload: dict[str, object]
    due_at: float


@dataclass(slots=True)
class MemoryState:
    """Every table the engine writes; rows are immutable, so a copy copies the tables only."""

    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    limits: dict[str, LimitsRow] = field(default_factory=dict)
    holds: dict[str, HoldRow] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    assets: dict[str, AssetRow] = field(default_factory=dict)
    usage: list[UsageRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)

    def copy(self) -> MemoryState:
        return MemoryState(
            tasks=dict(self.tasks),
            limits=dict(self.limits),
            holds=dict(self.holds),
            ledger=list(self.ledger),
            assets=dict(self.assets),
            usage=list(self.usage),
            outbox=list(self.outbox),
        )


class MemoryUnitOfWork:
    """One transaction: its own copy of the state, committed only if its operation returns."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state


def state_of(uow: UnitOfWork) -> MemoryState:
    assert isinstance(uow, MemoryUnitOfWork), "a unit of work from another committer"
    return uow.state


class MemoryDatabase:
    """The committed state, its write lock, and counts of what happened to it."""

    def __init__(self) -> None:
        self.state = MemoryState()
        self.lock = asyncio.Lock()
        self.commits = 0
        self.rollbacks = 0


class MemoryCommitter:
    """A :class:`~imagegate.core.unit_of_work.Committer` on a :class:`MemoryDatabase`."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def run(self, operation: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with self._db.lock:
            uow = MemoryUnitOfWork(self._db.state.copy())
            try:
                result = await operation(uow)
            except BaseException:
                self._db.rollbacks += 1
                raise
            self._db.state = uow.state
            self._db.commits += 1
            return result


class MemoryTaskRepository:
    """A :class:`~imagegate.core.task_rows.TaskRepository` on a :class:`MemoryDatabase`."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self.closed = False

    @property
    def _tasks(self) -> dict[str, TaskRecord]:
        return self._db.state.tasks

    def _update(self, task: TaskRecord, **values: Any) -> TaskRecord:
        updated = replace(task, **values)
        self._tasks[task.id] = updated
        return updated

    async def insert(self, values: dict[str, Any]) -> TaskRecord:
        async with self._db.lock:
            assert values["id"] not in self._tasks, "duplicate task id"
            task = TaskRecord(**{**NEW_TASK_DEFAULTS, **values})
            self._tasks[task.id] = task
            return task

    async def fetch(self, uow: UnitOfWork, task_id: str) -> TaskRecord:
        return state_of(uow).tasks[task_id]

    async def get(self, task_id: str) -> TaskRecord | None:
        return self._tasks.get(task_id)

    async def get_many(self, ids: Sequence[str], owner_key_id: str) -> list[TaskRecord]:
        found = [self._tasks.get(task_id) for task_id in ids]
        return [task for task in found if task is not None and task.owner_key_id == owner_key_id]

    async def list_owned(
        self, owner_key_id: str, kind: str, *, before: tuple[float, str] | None, limit: int
    ) -> list[TaskRecord]:
        owned = [
            task
            for task in self._tasks.values()
            if task.owner_key_id == owner_key_id
            and task.kind == kind
            and (before is None or (task.created_at, task.id) < before)
        ]
        owned.sort(key=lambda task: (task.created_at, task.id), reverse=True)
        return owned[:limit]

    async def count_active(self, owner_key_id: str) -> int:
        return sum(
            1
            for task in self._tasks.values()
            if task.owner_key_id == owner_key_id and task.status in UNFINISHED
        )

    async def submitted_by(self, owner_key_id: str, request_id: str) -> list[str]:
        holds = self._db.state.holds
        return [
            task.id
            for task in self._tasks.values()
            if task.owner_key_id == owner_key_id
            and task.reservation_id in holds
            and holds[task.reservation_id].request_id == request_id
        ]

    async def claim(self, worker: str, limit: int, now: float, lease: float) -> list[TaskRecord]:
        async with self._db.lock:
            claimable = sorted(
                (
                    task
                    for task in self._tasks.values()
                    if task.status == CLAIMABLE
                    or (
                        task.status == "running"
                        and task.lease_expires_at is not None
                        and task.lease_expires_at < now
                    )
                ),
                key=lambda task: task.created_at,
            )[:limit]
            return [
                self._update(
                    task,
                    status="running",
                    lease_owner=worker,
                    lease_expires_at=now + lease,
                    attempts=task.attempts + 1,
                    started_at=task.started_at or max(task.created_at, now),
                    updated_at=now,
                )
                for task in claimable
            ]

    def _held_by(self, task_id: str, worker: str) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        if task is None or task.lease_owner != worker or task.status != "running":
            return None
        return task

    async def heartbeat(
        self, worker: str, task_ids: Sequence[str], now: float, lease: float
    ) -> set[str]:
        async with self._db.lock:
            cancelled = set()
            for task_id in task_ids:
                task = self._held_by(task_id, worker)
                if task is not None:
                    self._update(task, lease_expires_at=now + lease)
                    if task.cancel_requested:
                        cancelled.add(task_id)
            return cancelled

    async def abandon(self, worker: str, now: float) -> int:
        async with self._db.lock:
            held = [t for t in self._tasks.values() if self._held_by(t.id, worker) is not None]
            for task in held:
                self._update(task, lease_expires_at=now, updated_at=now)
            return len(held)

    async def set_progress(self, task_id: str, worker: str, progress: int, now: float) -> None:
        async with self._db.lock:
            task = self._held_by(task_id, worker)
            if task is not None:
                self._update(task, progress=progress, updated_at=now)

    async def set_upstream_jobs(
        self, task_id: str, worker: str, jobs: dict[str, Any], now: float
    ) -> None:
        async with self._db.lock:
            task = self._held_by(task_id, worker)
            if task is not None:
                self._update(task, upstream_jobs=jobs, updated_at=now)

    async def finish(
        self, uow: UnitOfWork, task_id: str, worker: str | None, values: dict[str, Any]
    ) -> bool:
        tasks = state_of(uow).tasks
        task = tasks.get(task_id)
        if task is None:
            return False
        if worker is None:
            if task.status not in WAITING:
                return False
        elif task.lease_owner != worker or task.status != "running":
            return False
        tasks[task_id] = replace(task, **values, lease_owner=None, lease_expires_at=None)
        return True

    async def request_cancel(self, task_id: str, now: float) -> None:
        async with self._db.lock:
            task = self._tasks.get(task_id)
            if task is not None and task.status == "running":
                self._update(task, cancel_requested=True, updated_at=now)

    async def update_waiting(self, task_id: str, values: dict[str, Any]) -> bool:
        async with self._db.lock:
            task = self._tasks.get(task_id)
            if task is None or task.status not in WAITING:
                return False
            self._update(task, **values)
            return True

    async def delete_older_than(self, cutoff: float) -> int:
        async with self._db.lock:
            old = [task_id for task_id, t in self._tasks.items() if t.created_at < cutoff]
            for task_id in old:
                del self._tasks[task_id]
            return len(old)

    async def close(self) -> None:
        self.closed = True


class MemoryHoldRepository:
    """A :class:`~imagegate.core.billing.HoldRepository`: limits rows and reservations."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def create_limits(
        self, uow: UnitOfWork, key_id: str, values: dict[str, Any], now: float
    ) -> None:
        limits = state_of(uow).limits
        assert key_id not in limits, "duplicate limits row"
        limits[key_id] = LimitsRow(key_id, **values)

    async def read(self, key_id: str, now: float) -> KeyLimits | None:
        row = self._db.state.limits.get(key_id)
        return None if row is None else row.limits(now)

    async def read_in(self, uow: UnitOfWork, key_id: str, now: float) -> KeyLimits | None:
        row = state_of(uow).limits.get(key_id)
        return None if row is None else row.limits(now)

    async def update_limits(
        self, uow: UnitOfWork, key_id: str, changes: dict[str, Any], now: float
    ) -> None:
        limits = state_of(uow).limits
        limits[key_id] = replace(limits.get(key_id) or LimitsRow(key_id), **changes)

    async def top_up(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> bool:
        limits = state_of(uow).limits
        row = limits.get(key_id)
        if row is None:
            return False
        limits[key_id] = replace(row, balance_usd=(row.balance_usd or ZERO) + amount)
        return True

    async def take(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> bool:
        limits = state_of(uow).limits
        row = limits.get(key_id)
        if row is None:
            return False
        spent = row.limits(now)
        day_spent, month_spent = spent.day_spent_usd + amount, spent.month_spent_usd + amount
        if (
            (row.balance_usd is not None and row.balance_usd < amount)
            or (row.budget_daily_usd is not None and day_spent > row.budget_daily_usd)
            or (row.budget_monthly_usd is not None and month_spent > row.budget_monthly_usd)
            or (row.expires_at is not None and row.expires_at <= now)
        ):
            return False
        limits[key_id] = replace(
            row,
            balance_usd=None if row.balance_usd is None else row.balance_usd - amount,
            day=day_of(now),
            day_spent_usd=day_spent,
            month=month_of(now),
            month_spent_usd=month_spent,
        )
        return True

    def add(self, uow: UnitOfWork, hold: NewHold) -> None:
        r = hold.reservation
        holds = state_of(uow).holds
        assert r.id not in holds, "duplicate reservation id"
        holds[r.id] = HoldRow(
            r.id,
            r.key_id,
            r.request_id,
            r.amount,
            "held",
            hold.created_at,
            hold.lease_owner,
            hold.lease_expires_at,
        )

    async def credit(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> None:
        limits = state_of(uow).limits
        row = limits.get(key_id)
        if row is None:
            return
        limits[key_id] = replace(
            row,
            balance_usd=None if row.balance_usd is None else row.balance_usd + amount,
            day_spent_usd=row.day_spent_usd - amount
            if row.day == day_of(now)
            else row.day_spent_usd,
            month_spent_usd=row.month_spent_usd - amount
            if row.month == month_of(now)
            else row.month_spent_usd,
        )

    async def close(
        self, uow: UnitOfWork, reservation_id: str, state: str, now: float
    ) -> ClosedHold | None:
        holds = state_of(uow).holds
        hold = holds.get(reservation_id)
        if hold is None or hold.state != "held":
            return None
        holds[reservation_id] = replace(hold, state=state, closed_at=now)
        return ClosedHold(hold.key_id, hold.request_id, hold.amount)

    async def renew(
        self, uow: UnitOfWork, reservation_ids: Collection[str], owner: str, until: float
    ) -> set[str]:
        holds = state_of(uow).holds
        renewed = set()
        for reservation_id in reservation_ids:
            hold = holds.get(reservation_id)
            if hold is not None and hold.lease_owner == owner and hold.state == "held":
                holds[reservation_id] = replace(hold, lease_expires_at=until)
                renewed.add(reservation_id)
        return renewed

    async def expired(self, now: float, legacy_before: float) -> list[str]:
        state = self._db.state
        waited_on = {
            task.reservation_id for task in state.tasks.values() if task.status in UNFINISHED
        }
        return [
            hold.id
            for hold in state.holds.values()
            if hold.state == "held"
            and hold.id not in waited_on
            and (
                hold.lease_expires_at < now
                if hold.lease_expires_at is not None
                else hold.created_at < legacy_before
            )
        ]


class MemoryLedgerRepository:
    """A :class:`~imagegate.core.billing.LedgerRepository`: an append-only list."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def append(self, uow: UnitOfWork, *entries: LedgerEntry) -> None:
        state_of(uow).ledger.extend(entries)

    async def write(self, uow: UnitOfWork, *entries: LedgerEntry) -> None:
        state_of(uow).ledger.extend(entries)

    def spend(self, uow: UnitOfWork, key_id: str, amount: Decimal) -> None:
        limits = state_of(uow).limits
        row = limits.get(key_id)
        if row is None:
            return
        now = time.time()
        spent = row.limits(now)
        limits[key_id] = replace(
            row,
            balance_usd=None if row.balance_usd is None else row.balance_usd - amount,
            day=day_of(now),
            day_spent_usd=spent.day_spent_usd + amount,
            month=month_of(now),
            month_spent_usd=spent.month_spent_usd + amount,
        )

    async def top_ups(self, key_id: str, limit: int) -> list[LedgerEntry]:
        mine = [e for e in self._db.state.ledger if e.key_id == key_id and e.kind == "topup"]
        return list(reversed(mine))[:limit]

    async def voided(self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]) -> bool:
        return any(
            e.kind == "void" and e.key_id == key_id and e.request_id in request_ids
            for e in state_of(uow).ledger
        )

    async def charges(
        self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]
    ) -> dict[str, Decimal]:
        charged: dict[str, Decimal] = {}
        for e in state_of(uow).ledger:
            if e.kind == "charge" and e.key_id == key_id and e.request_id in request_ids:
                assert e.request_id is not None
                charged[e.request_id] = charged.get(e.request_id, ZERO) - e.amount
        return charged

    async def void_usage(self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]) -> None:
        state = state_of(uow)
        state.usage = [
            replace(row, cost_usd=ZERO, error_code="answer_lost")
            if row.key_id == key_id and row.request_id in request_ids
            else row
            for row in state.usage
        ]


class MemoryAssetRepository:
    """An :class:`~imagegate.core.assets.AssetRepository`."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    @staticmethod
    def _put(
        assets: dict[str, AssetRow], stored: list[Asset], request_id: str | None, prompt: str | None
    ) -> None:
        for asset in stored:
            assert asset.id not in assets, "duplicate asset id"
            assets[asset.id] = AssetRow(asset, request_id, prompt)

    def add(
        self, uow: UnitOfWork, stored: list[Asset], *, request_id: str | None, prompt: str | None
    ) -> None:
        self._put(state_of(uow).assets, stored, request_id, prompt)

    async def insert(self, stored: list[Asset], *, request_id: str | None) -> None:
        async with self._db.lock:
            self._put(self._db.state.assets, stored, request_id, None)

    async def get(self, asset_id: str) -> Asset | None:
        row = self._db.state.assets.get(asset_id)
        return None if row is None else row.asset

    async def delete_older_than(self, cutoff: float) -> tuple[int, set[str]]:
        async with self._db.lock:
            assets = self._db.state.assets
            old = [row.asset for row in assets.values() if row.asset.created_at < cutoff]
            for asset in old:
                del assets[asset.id]
            kept = {row.asset.sha256 for row in assets.values()}
            return len(old), {asset.sha256 for asset in old} - kept


class MemoryUsageRowRepository:
    """A :class:`~imagegate.core.usage.UsageRowRepository` on a :class:`MemoryDatabase`."""

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def add(self, uow: UnitOfWork, *rows: UsageRow) -> None:
        state_of(uow).usage.extend(_stamped(rows))

    async def write(self, rows: Sequence[UsageRow]) -> None:
        async with self._db.lock:
            self._db.state.usage.extend(_stamped(rows))


def _stamped(rows: Sequence[UsageRow]) -> list[UsageRow]:
    now = time.time()
    return [row if row.created_at else dataclasses.replace(row, created_at=now) for row in rows]


class MemoryWebhookOutbox:
    """A :class:`~imagegate.core.webhooks.WebhookOutbox`; ``broken`` makes every enqueue
    raise, as a database failing in the middle of a transaction."""

    def __init__(self) -> None:
        self.broken = False

    async def enqueue(
        self,
        uow: UnitOfWork,
        *,
        url: str,
        secret: str | None,
        payload: dict[str, object],
        task_id: str | None,
        now: float,
    ) -> str:
        if self.broken:
            raise ConnectionError("the outbox is unavailable")
        message_id = "msg_" + secrets.token_hex(12)
        state_of(uow).outbox.append(OutboxRow(message_id, task_id, url, secret, payload, now))
        return message_id

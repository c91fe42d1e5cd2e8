"""Money: per-key balances and budgets, reservations settled or released exactly once, and an
append-only ledger of every movement.

A request reserves its quote before any upstream call (one conditional UPDATE, so concurrent
requests can never take a balance below zero or a budget past its limit), then settles the
actual cost of what was delivered, or releases the reservation when nothing was. Every state
change of a reservation is guarded by its current state, so it happens once however often it is
attempted; tasks settle inside the transaction that completes them.

A hold names the process that made it (``lease_owner``) and lasts a lease that process renews
while it lives (:meth:`Billing.renew_holds`); a hold whose lease ran out and that no unfinished
task waits on belongs to a request cut off by a crash, and is released
(:meth:`Billing.release_expired`).

Persistence is behind two repositories declared here: :class:`HoldRepository` (limits,
balances, budgets and reservations; the check and the hold stay one UPDATE) and
:class:`LedgerRepository` (ledger entries, top-ups and spending tallies). A caller's transaction
is joined through its :class:`~imagegate.core.unit_of_work.UnitOfWork` (the ``*_in`` methods);
the other methods open their own through the :class:`~imagegate.core.unit_of_work.Committer`.

Writes go through the group commit (one transaction for many requests), and a synchronous
request by a key that caps no spending takes no hold at all (:meth:`Billing.reserve_unheld`):
nothing can refuse it, so its charge is simply written, with its assets, when it settles.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from imagegate.core.unit_of_work import Committer, UnitOfWork
from imagegate.errors import NotFound, QuotaExceeded

ZERO = Decimal(0)
HOLD_LEASE_SECONDS = 30.0
LEGACY_HOLD_SECONDS = 3600.0
"""A hold from before leases (none recorded) is a crash's once it is this old."""
LIMIT_FIELDS = (
    "balance_usd",
    "budget_daily_usd",
    "budget_monthly_usd",
    "routes",
    "rpm",
    "images_per_minute",
    "megapixels_per_day",
    "max_concurrent",
    "expires_at",
)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What a key may spend and how fast it may go; ``None`` means unlimited."""

    key_id: str
    balance_usd: Decimal | None = None
    budget_daily_usd: Decimal | None = None
    budget_monthly_usd: Decimal | None = None
    routes: tuple[str, ...] | None = None
    rpm: int | None = None
    images_per_minute: int | None = None
    megapixels_per_day: float | None = None
    max_concurrent: int | None = None
    expires_at: float | None = None
    day_spent_usd: Decimal = ZERO
    month_spent_usd: Decimal = ZERO

    @property
    def caps_spending(self) -> bool:
        """Whether a balance or a budget limits what this key may spend."""
        return not (
            self.balance_usd is None
            and self.budget_daily_usd is None
            and self.budget_monthly_usd is None
        )

    def public(self) -> dict[str, Any]:
        def money(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        return {
            "balance_usd": money(self.balance_usd),
            "budget_daily_usd": money(self.budget_daily_usd),
            "budget_monthly_usd": money(self.budget_monthly_usd),
            "spent_today_usd": float(self.day_spent_usd),
            "spent_this_month_usd": float(self.month_spent_usd),
            "routes": list(self.routes) if self.routes is not None else None,
            "rpm": self.rpm,
            "images_per_minute": self.images_per_minute,
            "megapixels_per_day": self.megapixels_per_day,
            "max_concurrent": self.max_concurrent,
            "expires_at": int(self.expires_at) if self.expires_at else None,
        }


@dataclass(frozen=True, slots=True)
class Reservation:
    """A quote set aside for one request; ``held`` is False when nothing was held in the
    database (a key with no spending cap, see :meth:`Billing.reserve_unheld`)."""

    id: str
    key_id: str
    amount: Decimal
    request_id: str | None = None
    held: bool = True


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of money: ``kind`` is ``topup``, ``reserve``, ``release``, ``charge`` or
    ``void``; a positive ``amount`` is credit given to the key."""

    key_id: str
    kind: str
    amount: Decimal
    created_at: float
    reservation_id: str | None = None
    request_id: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ClosedHold:
    """What a reservation held, as it was closed."""

    key_id: str
    request_id: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class NewHold:
    """A reservation row to write once its amount was taken from the key's limits."""

    reservation: Reservation
    created_at: float
    lease_owner: str
    lease_expires_at: float


class HoldRepository(Protocol):
    """Keys' limits (balance, budgets and this period's spending) and their reservations."""

    async def create_limits(
        self, uow: UnitOfWork, key_id: str, values: dict[str, Any], now: float
    ) -> None:
        """Write a new key's limits row (at once: the caller may read it back)."""
        ...

    async def read(self, key_id: str, now: float) -> KeyLimits | None:
        """The key's limits, spending counted for the period of ``now``; ``None``: no row."""
        ...

    async def read_in(self, uow: UnitOfWork, key_id: str, now: float) -> KeyLimits | None:
        """:meth:`read` inside ``uow``."""
        ...

    async def update_limits(
        self, uow: UnitOfWork, key_id: str, changes: dict[str, Any], now: float
    ) -> None:
        """Set ``changes`` (columns named as :data:`LIMIT_FIELDS`), creating the row first."""
        ...

    async def top_up(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> bool:
        """Add ``amount`` to the balance (an unlimited one becomes ``amount``); False when the
        key has no limits row."""
        ...

    async def take(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> bool:
        """Take ``amount`` from the balance and add it to the period's spending, in ONE
        conditional statement: only if the balance, both budgets and the expiry allow it (so
        concurrent holds never overdraw). False when refused or when the key has no row."""
        ...

    def add(self, uow: UnitOfWork, hold: NewHold) -> None:
        """Write a held reservation with the unit of work's other rows."""
        ...

    async def credit(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> None:
        """Give ``amount`` back (negative: take more) to the balance and to this period's
        spending."""
        ...

    async def close(
        self, uow: UnitOfWork, reservation_id: str, state: str, now: float
    ) -> ClosedHold | None:
        """Move a held reservation to ``state`` (``settled`` or ``released``); ``None`` when it
        is not held any more (closed exactly once, whoever tries)."""
        ...

    async def renew(
        self, uow: UnitOfWork, reservation_ids: Collection[str], owner: str, until: float
    ) -> set[str]:
        """Extend to ``until`` the leases of those still held by ``owner``; returns their ids."""
        ...

    async def expired(self, now: float, legacy_before: float) -> list[str]:
        """Held reservations whose lease ended before ``now`` (or, with no lease recorded, made
        before ``legacy_before``) and that no unfinished task waits to settle."""
        ...


class LedgerRepository(Protocol):
    """The append-only ledger, and the spending of charges taken without a hold."""

    def append(self, uow: UnitOfWork, *entries: LedgerEntry) -> None:
        """Write ``entries`` with the unit of work's other rows (at its end)."""
        ...

    async def write(self, uow: UnitOfWork, *entries: LedgerEntry) -> None:
        """Write ``entries`` now (later statements of ``uow`` see them)."""
        ...

    def spend(self, uow: UnitOfWork, key_id: str, amount: Decimal) -> None:
        """Count ``amount`` into the key's balance and period spending, summed per key over
        the whole transaction (a charge made without a hold)."""
        ...

    async def top_ups(self, key_id: str, limit: int) -> list[LedgerEntry]:
        """The key's latest top-ups, newest first."""
        ...

    async def voided(self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]) -> bool:
        """Whether any of ``request_ids`` was voided already."""
        ...

    async def charges(
        self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]
    ) -> dict[str, Decimal]:
        """What each of ``request_ids`` (that was charged) was charged in all."""
        ...

    async def void_usage(self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]) -> None:
        """Make the usage rows of ``request_ids`` say nothing was charged (answer lost)."""
        ...


def day_of(now: float) -> str:
    """The budget day ``now`` falls in (UTC)."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def month_of(now: float) -> str:
    """The budget month ``now`` falls in (UTC)."""
    return time.strftime("%Y-%m", time.gmtime(now))


class Billing:
    """Balances, budgets, reservations and the ledger, on SQLite and PostgreSQL alike."""

    def __init__(
        self,
        holds: HoldRepository,
        ledger: LedgerRepository,
        committer: Committer,
        *,
        owner: str = "local",
        lease_seconds: float = HOLD_LEASE_SECONDS,
    ) -> None:
        """``owner``: this process's id, named by its holds; ``lease_seconds``: how long a
        hold outlives its owner's last renewal."""
        self._holds = holds
        self._ledger = ledger
        self._committer = committer
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._unheld: set[str] = set()
        """Unheld reservations not yet settled or released (they live only in this process)."""
        self._live: set[str] = set()
        """Holds this process made and still answers for: only their leases are renewed, so a
        hold whose release failed (the database was down) expires and is released later."""

    async def create_limits(
        self, uow: UnitOfWork, key_id: str, values: dict[str, Any], now: float
    ) -> None:
        """Write a new key's limits (and its opening top-up) in the caller's unit of work."""
        await self._holds.create_limits(uow, key_id, values, now)
        if values.get("balance_usd"):
            amount = Decimal(values["balance_usd"])
            await self._ledger.write(uow, LedgerEntry(key_id, "topup", amount, now))

    async def limits(self, key_id: str) -> KeyLimits:
        return await self._holds.read(key_id, time.time()) or KeyLimits(key_id)

    async def update_limits(self, key_id: str, changes: dict[str, Any]) -> KeyLimits:
        """Change limits (not the balance: use :meth:`top_up`)."""
        now = time.time()

        async def update(uow: UnitOfWork) -> None:
            await self._holds.update_limits(uow, key_id, changes, now)

        await self._committer.run(update)
        return await self.limits(key_id)

    async def top_up(self, key_id: str, amount: Decimal, note: str | None = None) -> KeyLimits:
        """Add credit; a key with unlimited credit gets a balance of ``amount``."""
        now = time.time()

        async def top_up(uow: UnitOfWork) -> None:
            if not await self._holds.top_up(uow, key_id, amount, now):
                raise NotFound(f"no key with id {key_id!r}", code="key_not_found")
            await self._ledger.write(uow, LedgerEntry(key_id, "topup", amount, now, note=note))

        await self._committer.run(top_up)
        return await self.limits(key_id)

    async def top_ups(self, key_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The key's latest top-ups, newest first: ``amount_usd``, ``note``, ``created_at``."""
        return [
            {"amount_usd": float(entry.amount), "note": entry.note, "created_at": entry.created_at}
            for entry in await self._ledger.top_ups(key_id, limit)
        ]

    async def reserve(self, key_id: str, amount: Decimal, request_id: str) -> Reservation:
        """Hold ``amount`` or raise 429 ``insufficient_quota``; never below zero, never past a
        budget, whatever runs concurrently (the check and the hold are one UPDATE)."""
        reservation = Reservation("rsv_" + secrets.token_hex(10), key_id, amount, request_id)

        async def hold(uow: UnitOfWork) -> None:
            now = time.time()
            if not await self._holds.take(uow, key_id, amount, now):
                limits = await self._holds.read_in(uow, key_id, now)
                if limits is not None:  # a key without a limits row is unlimited
                    message, retry_after = _why(limits, amount, now)
                    raise QuotaExceeded(message, retry_after=retry_after)
            lease = now + self.lease_seconds
            self._holds.add(uow, NewHold(reservation, now, self.owner, lease))
            self._ledger.append(
                uow, LedgerEntry(key_id, "reserve", -amount, now, reservation.id, request_id)
            )

        await self._committer.run(hold)
        self._live.add(reservation.id)
        return reservation

    def reserve_unheld(self, key_id: str, amount: Decimal, request_id: str) -> Reservation:
        """A reservation for a key whose limits cap no spending (the caller checked): nothing
        can refuse it, so nothing is written until it settles. Only for requests that end in
        this process; tasks, which may finish after a restart, use :meth:`reserve`."""
        reservation = Reservation(
            "rsv_" + secrets.token_hex(10), key_id, amount, request_id, held=False
        )
        self._unheld.add(reservation.id)
        return reservation

    async def settle(self, reservation: Reservation, actual: Decimal) -> Decimal | None:
        """Charge ``actual`` for ``reservation`` in a transaction of its own (see
        :meth:`settle_in`)."""
        try:
            charged = await self._committer.run(
                lambda uow: self.settle_in(uow, reservation, actual)
            )
        finally:
            self._live.discard(reservation.id)
        self.forget_unheld(reservation)
        return charged

    def forget_unheld(self, reservation: Reservation) -> None:
        """After a :meth:`settle_in` (committed or failed): the reservation is closed, or is
        left to expire."""
        self._unheld.discard(reservation.id)
        self._live.discard(reservation.id)

    async def settle_in(
        self, uow: UnitOfWork, reservation: Reservation | str, actual: Decimal
    ) -> Decimal | None:
        """Charge ``actual`` against the reservation (an id: a held one) in the caller's unit
        of work, so a charge commits with what it pays for. Returns what was charged, or
        ``None`` if the reservation was already settled or released. An unheld reservation is
        charged without a hold; its caller then calls :meth:`forget_unheld`."""
        if isinstance(reservation, str) or reservation.held:
            reservation_id = reservation if isinstance(reservation, str) else reservation.id
            self._live.discard(reservation_id)
            return await self._settle_held(uow, reservation_id, actual)
        if reservation.id not in self._unheld:
            return None
        now = time.time()
        self._ledger.append(
            uow,
            LedgerEntry(
                reservation.key_id,
                "charge",
                -actual,
                now,
                reservation.id,
                reservation.request_id,
            ),
        )
        self._ledger.spend(uow, reservation.key_id, actual)
        return actual

    async def _settle_held(
        self, uow: UnitOfWork, reservation_id: str, actual: Decimal
    ) -> Decimal | None:
        now = time.time()
        closed = await self._holds.close(uow, reservation_id, "settled", now)
        if closed is None:
            return None
        key_id, request_id, held = closed.key_id, closed.request_id, closed.amount
        charged = await self._adjust(uow, key_id, held, actual, now)
        self._ledger.append(
            uow,
            LedgerEntry(key_id, "release", held, now, reservation_id, request_id),
            LedgerEntry(key_id, "charge", -charged, now, reservation_id, request_id),
        )
        return charged

    async def release(self, reservation: Reservation | str) -> bool:
        """Give the whole hold back (nothing was delivered); False if already closed."""
        if isinstance(reservation, Reservation) and not reservation.held:
            if reservation.id not in self._unheld:
                return False
            self._unheld.discard(reservation.id)
            return True
        reservation_id = reservation if isinstance(reservation, str) else reservation.id
        self._live.discard(reservation_id)
        return await self._committer.run(lambda uow: self.release_in(uow, reservation_id))

    async def release_in(self, uow: UnitOfWork, reservation_id: str) -> bool:
        """:meth:`release` of a held reservation in the caller's unit of work."""
        self._live.discard(reservation_id)
        now = time.time()
        closed = await self._holds.close(uow, reservation_id, "released", now)
        if closed is None:
            return False
        await self._holds.credit(uow, closed.key_id, closed.amount, now)
        self._ledger.append(
            uow,
            LedgerEntry(
                closed.key_id, "release", closed.amount, now, reservation_id, closed.request_id
            ),
        )
        return True

    async def renew_holds(self, now: float | None = None) -> int:
        """Extend the lease of every hold this process still answers for (a request running
        here, or a task's hold until the task settles it); returns how many."""
        now = time.time() if now is None else now
        live = list(self._live)
        if not live:
            return 0
        until = now + self.lease_seconds
        held = await self._committer.run(
            lambda uow: self._holds.renew(uow, live, self.owner, until)
        )
        # Closed meanwhile (a task settled on another replica): nothing left to renew.
        self._live.difference_update(set(live) - held)
        return len(held)

    async def release_expired(self, now: float | None = None) -> int:
        """Release holds whose owner stopped renewing them and that no unfinished task is
        waiting to settle (their request was cut off by a crash); returns how many."""
        now = time.time() if now is None else now
        stale = await self._holds.expired(now, now - LEGACY_HOLD_SECONDS)
        released = [await self.release(reservation_id) for reservation_id in stale]
        return sum(released)

    async def void_requests(
        self, key_id: str, request_ids: Sequence[str], *, usage_of: Sequence[str] = ()
    ) -> Decimal:
        """Give back what ``request_ids`` (of ``key_id``) were charged: requests whose answer
        never reached their client (their server stopped before recording it) and that the
        client's retry runs again. Their usage rows (and those of ``usage_of``: the tasks they
        submitted) then say nothing was charged. Once per request; returns the amount given
        back."""
        if not request_ids:
            return ZERO
        now = time.time()

        async def void(uow: UnitOfWork) -> Decimal:
            if await self._ledger.voided(uow, key_id, request_ids):
                return ZERO
            amounts = await self._ledger.charges(uow, key_id, request_ids)
            if not amounts:
                return ZERO
            total = sum(amounts.values(), ZERO)
            await self._holds.credit(uow, key_id, total, now)
            entries = [
                LedgerEntry(key_id, "void", amount, now, request_id=request_id, note="answer lost")
                for request_id, amount in amounts.items()
            ]
            await self._ledger.write(uow, *entries)
            await self._ledger.void_usage(uow, key_id, [*amounts, *usage_of])
            return total

        return await self._committer.run(void)

    async def _adjust(
        self, uow: UnitOfWork, key_id: str, held: Decimal, actual: Decimal, now: float
    ) -> Decimal:
        """Turn a hold of ``held`` into a charge of ``actual``; more than held is charged only
        as far as the balance goes. Returns the amount charged."""
        refund = held - actual
        if refund >= 0:
            await self._holds.credit(uow, key_id, refund, now)
            return actual
        extra = -refund
        limits = await self._holds.read_in(uow, key_id, now) or KeyLimits(key_id)
        if limits.balance_usd is not None:
            extra = min(extra, max(limits.balance_usd, ZERO))
        await self._holds.credit(uow, key_id, -extra, now)
        return held + extra


def _why(limits: KeyLimits, amount: Decimal, now: float) -> tuple[str, float]:
    """Why a hold failed, and when retrying may help (a budget's next period; credit only
    after a top-up, so an hour)."""
    cost = f"${amount:.4f}"
    tomorrow = 86400 - now % 86400
    if limits.expires_at is not None and limits.expires_at <= now:
        return "this API key has expired", 3600
    if limits.balance_usd is not None and limits.balance_usd < amount:
        balance = f"${limits.balance_usd:.4f}"
        return f"this request needs {cost} but the key's balance is {balance}", 3600
    if limits.budget_daily_usd is not None:
        left = max(limits.budget_daily_usd - limits.day_spent_usd, ZERO)
        if left < amount:
            return f"this request needs {cost}; the daily budget has ${left:.4f} left", tomorrow
    return f"this request needs {cost}; the monthly budget does not cover it", tomorrow

"""A hold ends once: refused (given back with one usage row), given back quietly, or handed over;
whatever comes after its end does nothing."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from imagegate.core.billing import Reservation
from imagegate.core.holds import Hold
from imagegate.core.usage import UsageRow
from imagegate.errors import RateLimited


class Ledger:
    def __init__(self) -> None:
        self.released: list[str] = []
        self.rows: list[UsageRow] = []

    async def release(self, reservation: Reservation) -> bool:
        self.released.append(reservation.id)
        return True

    def hold(self) -> Hold:
        row = UsageRow(request_id="req_1", key_id="key_a", model="sketch", route="/x", status=0,
                       latency_ms=0, n=2)  # fmt: skip
        return Hold(
            Reservation("rsv_1", "key_a", Decimal("0.1")),
            release=self.release,
            record=self.rows.append,
            row=row,
            started=time.perf_counter(),
        )


async def test_a_refusal_gives_back_once_and_records_one_row() -> None:
    ledger = Ledger()
    hold = ledger.hold()
    await hold.refuse(RateLimited("too many"))
    await hold.refuse(RateLimited("again"))
    await hold.give_back()
    assert ledger.released == ["rsv_1"] and not hold.open
    (row,) = ledger.rows
    assert (row.status, row.error_code, row.model, row.n) == (
        429,
        "rate_limit_exceeded",
        "sketch",
        2,
    )


async def test_a_block_that_raises_refuses_the_hold_and_the_error_goes_on() -> None:
    ledger = Ledger()
    hold = ledger.hold()

    async def take_over() -> None:
        async with hold.handed_over() as reservation_id:
            assert reservation_id == "rsv_1"
            raise KeyError("a bug")

    with pytest.raises(KeyError):
        await take_over()
    assert ledger.released == ["rsv_1"]
    assert [(row.status, row.error_code) for row in ledger.rows] == [(500, "server_error")]


async def test_a_hold_handed_over_is_never_given_back() -> None:
    ledger = Ledger()
    hold = ledger.hold()
    async with hold.handed_over():
        pass
    await hold.refuse(RateLimited("late"))
    await hold.give_back()
    assert ledger.released == [] and ledger.rows == []


async def test_a_quiet_give_back_records_nothing_and_ends_the_hold() -> None:
    ledger = Ledger()
    hold = ledger.hold()
    await hold.give_back()
    await hold.refuse(RateLimited("late"))
    assert ledger.released == ["rsv_1"] and ledger.rows == []

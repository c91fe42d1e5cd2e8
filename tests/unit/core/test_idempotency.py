"""The Idempotency-Key rules of :class:`IdempotencyStore` (replay, conflicts, leases and
take-overs, scopes, expiry) on an in-memory repository: no database."""

from __future__ import annotations

import pytest

from imagegate.core.idempotency import (
    LEASE_SECONDS,
    TTL_SECONDS,
    IdempotencyRecord,
    IdempotencyStore,
    StoredResponse,
)
from tests.unit.core.memory_repositories import MemoryIdempotencyRepository

BODY = "a" * 64
OTHER_BODY = "b" * 64
T0 = 1_000_000.0
ANSWER = StoredResponse(200, [("content-type", "application/json")], b'{"ok":true}')


@pytest.fixture
def records() -> MemoryIdempotencyRepository:
    return MemoryIdempotencyRepository()


def store(records: MemoryIdempotencyRepository, owner: str = "p-1") -> IdempotencyStore:
    return IdempotencyStore(records, owner=owner, lease_seconds=30)


async def test_the_first_request_runs_and_its_answer_is_replayed(
    records: MemoryIdempotencyRepository,
) -> None:
    idem = store(records)
    assert (await idem.claim("key_a", "k1", BODY, now=T0, request_id="req_1")).outcome == "new"
    record = records.records["key_a", "k1"]
    assert (record.state, record.lease_owner, record.lease_expires_at) == (
        "in_flight",
        "p-1",
        T0 + 30,
    )
    assert record.request_id == "req_1"

    await idem.store("key_a", "k1", ANSWER)

    again = await idem.claim("key_a", "k1", BODY, now=T0 + 5)
    assert again.outcome == "replay"
    assert again.response == ANSWER
    assert records.records["key_a", "k1"].lease_owner is None


async def test_a_retry_while_the_first_runs_is_refused_as_in_flight(
    records: MemoryIdempotencyRepository,
) -> None:
    idem = store(records)
    await idem.claim("key_a", "k1", BODY, now=T0)
    retry = await idem.claim("key_a", "k1", BODY, now=T0 + 1, owner="p-2")
    assert retry.outcome == "in_flight" and retry.response is None


@pytest.mark.parametrize("finished", [False, True])
async def test_the_same_key_with_another_body_is_a_mismatch(
    records: MemoryIdempotencyRepository, finished: bool
) -> None:
    idem = store(records)
    await idem.claim("key_a", "k1", BODY, now=T0)
    if finished:
        await idem.store("key_a", "k1", ANSWER)
    assert (await idem.claim("key_a", "k1", OTHER_BODY, now=T0 + 1)).outcome == "mismatch"


async def test_keys_are_scoped_so_two_callers_never_share_one(
    records: MemoryIdempotencyRepository,
) -> None:
    idem = store(records)
    await idem.claim("key_a", "k1", BODY, now=T0)
    await idem.store("key_a", "k1", ANSWER)
    other = await idem.claim("key_b", "k1", OTHER_BODY, now=T0 + 1)
    assert other.outcome == "new" and other.response is None
    assert set(records.records) == {("key_a", "k1"), ("key_b", "k1")}


async def test_a_dead_owners_record_is_taken_over_once_its_lease_ran_out(
    records: MemoryIdempotencyRepository,
) -> None:
    dead = store(records, owner="p-dead")
    await dead.claim("key_a", "k1", BODY, now=T0, request_id="req_dead")
    alive = store(records, owner="p-alive")

    assert (await alive.claim("key_a", "k1", BODY, now=T0 + 29)).outcome == "in_flight"
    taken = await alive.claim("key_a", "k1", BODY, now=T0 + 31, request_id="req_new")

    assert taken.outcome == "new" and taken.replaces == "req_dead"
    record = records.records["key_a", "k1"]
    assert (record.lease_owner, record.lease_expires_at, record.request_id) == (
        "p-alive",
        T0 + 61,
        "req_new",
    )
    # the new owner renews it; the dead one's store no longer holds it as its own
    assert await alive.renew(now=T0 + 40) == 1
    assert await dead.renew(now=T0 + 40) == 0


async def test_an_expired_lease_with_another_body_is_not_taken_over(
    records: MemoryIdempotencyRepository,
) -> None:
    await store(records, owner="p-dead").claim("key_a", "k1", BODY, now=T0)
    late = await store(records, owner="p-2").claim("key_a", "k1", OTHER_BODY, now=T0 + 100)
    assert late.outcome == "mismatch"
    assert records.records["key_a", "k1"].lease_owner == "p-dead"


async def test_renewing_keeps_a_live_owners_key(records: MemoryIdempotencyRepository) -> None:
    owner = store(records)
    await owner.claim("key_a", "k1", BODY, now=T0)
    assert await owner.renew(now=T0 + 20) == 1
    assert records.records["key_a", "k1"].lease_expires_at == T0 + 50
    retry = await store(records, owner="p-2").claim("key_a", "k1", BODY, now=T0 + 40)
    assert retry.outcome == "in_flight"


async def test_a_finished_or_forgotten_request_is_no_longer_renewed(
    records: MemoryIdempotencyRepository,
) -> None:
    idem = store(records)
    await idem.claim("key_a", "done", BODY, now=T0)
    await idem.claim("key_a", "gone", BODY, now=T0)
    await idem.store("key_a", "done", ANSWER)
    await idem.forget("key_a", "gone")
    assert await idem.renew(now=T0 + 10) == 0
    assert ("key_a", "gone") not in records.records
    again = await idem.claim("key_a", "gone", OTHER_BODY, now=T0 + 11)
    assert again.outcome == "new"


class RivalFirst(MemoryIdempotencyRepository):
    """Another retry takes the record over between this one's read and its take-over."""

    async def take_over(
        self,
        record: IdempotencyRecord,
        *,
        owner: str,
        lease_expires_at: float,
        request_id: str | None,
    ) -> bool:
        assert await super().take_over(
            record, owner="p-rival", lease_expires_at=lease_expires_at, request_id="req_rival"
        )
        return await super().take_over(
            record, owner=owner, lease_expires_at=lease_expires_at, request_id=request_id
        )


async def test_only_one_of_two_racing_retries_takes_a_record_over() -> None:
    records = RivalFirst()
    await store(records, owner="p-dead").claim("key_a", "k1", BODY, now=T0)
    loser = await store(records, owner="p-2").claim("key_a", "k1", BODY, now=T0 + 31)
    assert loser.outcome == "in_flight"
    assert records.records["key_a", "k1"].lease_owner == "p-rival"


async def test_a_record_from_before_leases_is_orphaned_once_older_than_a_lease(
    records: MemoryIdempotencyRepository,
) -> None:
    records.records["key_a", "k1"] = IdempotencyRecord(
        "key_a", "k1", BODY, "in_flight", created_at=T0, request_id="req_old"
    )
    idem = store(records)
    early = await idem.claim("key_a", "k1", BODY, now=T0 + LEASE_SECONDS - 1)
    assert early.outcome == "in_flight"
    late = await idem.claim("key_a", "k1", BODY, now=T0 + LEASE_SECONDS + 1)
    assert late.outcome == "new" and late.replaces == "req_old"


async def test_an_expired_record_is_forgotten_and_the_key_runs_again(
    records: MemoryIdempotencyRepository,
) -> None:
    idem = store(records)
    await idem.claim("key_a", "k1", BODY, now=T0)
    await idem.store("key_a", "k1", ANSWER)
    later = T0 + TTL_SECONDS + 1
    fresh = await idem.claim("key_a", "k1", OTHER_BODY, now=later)
    assert fresh.outcome == "new"
    assert records.records["key_a", "k1"].created_at == later


async def test_the_sweep_removes_only_records_past_their_ttl(
    records: MemoryIdempotencyRepository,
) -> None:
    idem = store(records)
    await idem.claim("key_a", "old", BODY, now=T0)
    await idem.claim("key_a", "young", BODY, now=T0 + 100)
    assert await idem.sweep(now=T0 + TTL_SECONDS + 50) == 1
    assert set(records.records) == {("key_a", "young")}

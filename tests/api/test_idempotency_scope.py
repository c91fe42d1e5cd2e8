"""Idempotency-Key against crashes and strangers: scoped to the key (not the header that
carried it), written only for authenticated callers, and taken over once its owner is gone."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from imagegate.storage.tables import idempotency, ledger, usage
from tests.api.billing_kit import priced_gateway
from tests.api.test_billing_api import BODY, ROUTE, make_key, show
from tests.conftest import Gateway


@pytest.fixture
async def priced(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in priced_gateway(tmp_path):
        yield gateway


FLUX_ROUTE = "/flux/v1/sketch"
FLUX_BODY = {"prompt": "a red square", "width": 256, "height": 256}


async def rows(gateway: Gateway) -> list[dict[str, object]]:
    async with gateway.services.engine.connect() as conn:
        found = await conn.execute(sa.select(idempotency))
        return [dict(row) for row in found.mappings()]


async def test_the_same_key_sent_in_two_header_forms_runs_and_charges_once(
    priced: Gateway,
) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    secret = headers["Authorization"].removeprefix("Bearer ")
    as_bearer = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "order-7"}
    as_x_key = {"x-key": secret, "Idempotency-Key": "order-7"}
    first = await priced.client.post(FLUX_ROUTE, json=FLUX_BODY, headers=as_bearer)
    again = await priced.client.post(FLUX_ROUTE, json=FLUX_BODY, headers=as_x_key)
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert (await show(priced, key_id))["balance_usd"] == 1.0 - 0.1


async def test_junk_credentials_store_nothing(priced: Gateway) -> None:
    for n in range(20):
        response = await priced.client.post(
            ROUTE,
            json=BODY,
            headers={"Authorization": f"Bearer junk-{n}", "Idempotency-Key": f"k-{n}"},
        )
        assert response.status_code == 401
    missing = await priced.client.post(ROUTE, json=BODY, headers={"Idempotency-Key": "nokey"})
    assert missing.status_code == 401
    nowhere = await priced.client.post(
        "/v1/nowhere", json=BODY, headers={"Authorization": "Bearer junk", "Idempotency-Key": "x"}
    )
    assert nowhere.status_code == 404
    assert await rows(priced) == []


async def test_auth_and_routing_refusals_are_not_kept(priced: Gateway) -> None:
    _, headers = await make_key(priced, models="other-*")
    keyed = {**headers, "Idempotency-Key": "r-1"}
    assert (await priced.client.post(ROUTE, json=BODY, headers=keyed)).status_code == 403
    nowhere = await priced.client.post("/v1/no/such/route", json=BODY, headers=keyed)
    assert nowhere.status_code == 404
    assert await rows(priced) == []


CONTENT = orjson.dumps(BODY)
DIGEST = hashlib.sha256(b"\0".join([ROUTE.encode(), b"", CONTENT])).hexdigest()


async def test_a_retry_takes_over_a_key_whose_owner_died(priced: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    store = priced.services.idempotency
    # What a replica killed mid-request leaves: an in-flight row whose lease ran out.
    await store.claim(key_id, "orphan", DIGEST, now=time.time() - 600, owner="dead-replica")
    headers = {**headers, "Idempotency-Key": "orphan", "content-type": "application/json"}
    response = await priced.client.post(ROUTE, content=CONTENT, headers=headers)
    assert response.status_code == 200, response.text
    assert (await rows(priced))[0]["state"] == "done"


async def test_a_live_owner_keeps_its_key(priced: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    content = CONTENT
    await priced.services.idempotency.claim(key_id, "alive", DIGEST, owner="another-replica")
    headers = {**headers, "Idempotency-Key": "alive", "content-type": "application/json"}
    response = await priced.client.post(ROUTE, content=content, headers=headers)
    assert response.status_code == 409, response.text
    assert response.headers["retry-after"] == "1"


async def test_a_retry_after_a_lost_answer_is_charged_once(priced: Gateway) -> None:
    """A replica charged a request and died before its answer was recorded (so the client never
    got it): the retry runs again, and the lost attempt's charge is given back."""
    key_id, headers = await make_key(priced, credit_usd=1.0)
    headers = {**headers, "content-type": "application/json"}
    lost = await priced.client.post(ROUTE, content=CONTENT, headers=headers)
    assert lost.status_code == 200
    await priced.services.idempotency.claim(
        key_id,
        "lost",
        DIGEST,
        now=time.time() - 600,
        owner="dead-replica",
        request_id=lost.headers["x-request-id"],
    )
    retry = await priced.client.post(
        ROUTE, content=CONTENT, headers={**headers, "Idempotency-Key": "lost"}
    )
    assert retry.status_code == 200, retry.text
    assert (await show(priced, key_id))["balance_usd"] == pytest.approx(0.9)
    async with priced.services.engine.connect() as conn:
        kinds = (
            await conn.execute(
                sa.select(ledger.c.kind, sa.func.sum(ledger.c.amount_usd))
                .where(ledger.c.key_id == key_id, ledger.c.kind.in_(("charge", "void")))
                .group_by(ledger.c.kind)
            )
        ).all()
        metered = (
            await conn.execute(
                sa.select(sa.func.sum(usage.c.cost_usd)).where(usage.c.key_id == key_id)
            )
        ).scalar_one()
    net = -sum(amount for _, amount in kinds)
    assert net == metered == Decimal("0.1")

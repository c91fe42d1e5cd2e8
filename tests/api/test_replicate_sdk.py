"""The official ``replicate`` SDK against a live gateway: models.get, predictions by version,
predictions.list with cursor pages, and the messages of its errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import replicate
from replicate.client import Client
from replicate.exceptions import ReplicateError

from imagegate.fronts.replicate import routes
from tests.conftest import ADMIN_KEY, LiveServer

Clients = Callable[..., Client]


@pytest.fixture
def client_for(live_server: LiveServer) -> Iterator[Clients]:
    """SDK clients for a key (the live server's by default) on transports closed afterwards."""
    transports: list[httpx.HTTPTransport] = []

    def make(key: str | None = None) -> Client:
        transports.append(httpx.HTTPTransport())
        return Client(
            api_token=key or live_server.key,
            base_url=f"{live_server.base_url}/replicate",
            transport=transports[-1],
        )

    yield make
    for transport in transports:
        transport.close()


def new_key(live_server: LiveServer) -> str:
    created = httpx.post(
        f"{live_server.base_url}/admin/keys",
        json={"name": "another"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    key: str = created.json()["key"]
    return key


def test_models_get_then_a_prediction_by_version_id(client_for: Clients) -> None:
    client = client_for()
    model = client.models.get("imagegate/sketch")
    assert (model.owner, model.name, model.id) == ("imagegate", "sketch", "imagegate/sketch")
    assert model.latest_version is not None and len(model.latest_version.id) == 64
    assert (
        "prompt"
        in model.latest_version.openapi_schema["components"]["schemas"]["Input"]["properties"]
    )

    prediction = client.predictions.create(
        version=model.latest_version.id, input={"prompt": "a yellow sun", "num_outputs": 2}
    )
    prediction.wait()
    assert prediction.status == "succeeded", prediction.error
    assert prediction.model == "imagegate/sketch"
    assert prediction.version == model.latest_version.id
    assert prediction.output is not None and len(prediction.output) == 2
    assert httpx.get(prediction.output[0]).headers["content-type"].startswith("image/")


def test_a_prediction_by_owner_name_version(client_for: Clients) -> None:
    client = client_for()
    prediction = client.predictions.create(
        version="imagegate/sketch:anything", input={"prompt": "a tree"}, wait=30
    )
    assert prediction.status == "succeeded" and prediction.version == "anything"


def test_predictions_list_pages_with_a_cursor(
    live_server: LiveServer, client_for: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(new_key(live_server))
    made = [
        client.predictions.create(version="imagegate/sketch:v", input={"prompt": f"n{i}"}).id
        for i in range(3)
    ]
    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    first = client.predictions.list()
    assert [p.id for p in first.results] == made[::-1][:2] and first.next is not None
    second = client.predictions.list(first.next)
    assert [p.id for p in second.results] == made[:1] and second.next is None
    everything = [p.id for page in replicate.paginate(client.predictions.list) for p in page]
    assert everything == made[::-1]
    # Another key sees its own and none of these (made here: which tests ran before this one
    # on this worker, with that key, depends on how the suite was split).
    other = client_for()
    theirs = other.predictions.create(version="imagegate/sketch:v", input={"prompt": "x"}).id
    seen = {p.id for p in other.predictions.list().results}
    assert theirs in seen and not set(made) & seen


def test_errors_carry_replicates_title_and_detail(
    live_server: LiveServer, client_for: Clients
) -> None:
    client = client_for()
    with pytest.raises(ReplicateError) as missing:
        client.models.get("nobody/nothing")
    assert missing.value.status == 404 and missing.value.title == "Not found"
    assert "nobody/nothing" in str(missing.value)

    with pytest.raises(ReplicateError) as unknown:
        client.predictions.create(version="0" * 64, input={"prompt": "x"})
    assert unknown.value.status == 404 and "does not exist" in (unknown.value.detail or "")

    with pytest.raises(ReplicateError) as bad:
        client.predictions.create(version="imagegate/sketch:v", input={"prompt": "x", "seed": -4})
    assert bad.value.status == 400 and "input.seed" in (bad.value.detail or "")

    with pytest.raises(ReplicateError) as denied:
        client_for("ig-not-a-key").predictions.list()
    assert denied.value.status == 401 and denied.value.title == "Unauthenticated"
    assert "detail:" in str(denied.value)

    mine = client.predictions.create(version="imagegate/sketch:v", input={"prompt": "x"})
    theirs = client_for(new_key(live_server))
    with pytest.raises(ReplicateError) as other:
        theirs.predictions.get(mine.id)
    assert other.value.status == 404

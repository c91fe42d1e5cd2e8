"""Catalogue routes: ``/api/models`` (public), ``/v1/models`` and ``/v1/models/{id}``."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import Gateway


async def test_public_catalogue_lists_available_models_only(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/models")
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["page"], body["page_size"]) == (True, 0, 0)
    ids = [record["id"] for record in body["data"]]
    assert ids == ["sketch"] and body["total"] == 1
    record = body["data"][0]
    assert record["code"] == "sketch" and record["available"] is True
    assert record["provider_code"] == "local" and record["model_type"] == "image"
    assert "not an AI model" in record["description"]
    assert orjson.loads(record["endpoints"]) == {
        "openai-image": {"path": "/v1/images/generations", "method": "POST"},
        "openai-image-edit": {"path": "/v1/images/edits", "method": "POST"},
        "openai-image-variation": {"path": "/v1/images/variations", "method": "POST"},
    }
    assert record["pricing"]["currency"] == "USD / M Tokens"


async def test_all_lists_models_without_credentials(gateway: Gateway) -> None:
    body = (await gateway.client.get("/api/models", params={"all": "true"})).json()
    records = {record["id"]: record for record in body["data"]}
    assert {"sketch", "gpt-image-1", "dall-e-3", "dall-e-2"} <= set(records)
    assert records["gpt-image-1"]["available"] is False
    assert records["dall-e-3"]["pricing"] == {
        "currency": "USD / image",
        "input": None,
        "output": 0.04,
        "per_request": None,
        "per_second": None,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"provider": "openai"},
            ["dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"],
        ),
        (
            {"feature": "image-variation"},
            [
                "a1111",
                "dall-e-2",
                "ideogram-v3",
                "ideogram-v3-quality",
                "ideogram-v3-turbo",
                "qwen-image-edit",
                "recraft-v3-svg",
                "sketch",
            ],
        ),
        ({"q": "DALL"}, ["dall-e-2", "dall-e-3"]),
        ({"q": "sketch"}, ["sketch"]),
        ({"model_type": "video"}, []),
    ],
)
async def test_filters(gateway: Gateway, params: dict[str, str], expected: list[str]) -> None:
    body = (await gateway.client.get("/api/models", params={**params, "all": "true"})).json()
    assert [record["id"] for record in body["data"]] == expected


async def test_pagination(gateway: Gateway) -> None:
    everything = (await gateway.client.get("/api/models", params={"all": "true"})).json()
    page = (
        await gateway.client.get("/api/models", params={"all": "true", "page": 2, "page_size": 3})
    ).json()
    assert (page["page"], page["page_size"], page["total"]) == (2, 3, everything["total"])
    assert page["data"] == everything["data"][3:6] and everything["total"] > 3


@pytest.mark.parametrize(
    "params", [{"page": "-1"}, {"page_size": "0"}, {"page_size": "101"}, {"page": "x"}]
)
async def test_bad_pagination_is_400(gateway: Gateway, params: dict[str, str]) -> None:
    response = await gateway.client.get("/api/models", params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == next(iter(params))


async def test_openai_model_list_needs_a_key(gateway: Gateway) -> None:
    assert (await gateway.client.get("/v1/models")).status_code == 401
    body = (await gateway.client.get("/v1/models", headers=gateway.auth)).json()
    assert body["object"] == "list"
    assert body["data"][0]["id"] == "sketch" and body["data"][0]["object"] == "model"


async def test_openai_model_retrieve(gateway: Gateway) -> None:
    ok = await gateway.client.get("/v1/models/sketch", headers=gateway.auth)
    assert ok.json()["owned_by"] == "local"
    alias = await gateway.client.get("/v1/models/imagegate/sketch", headers=gateway.auth)
    assert alias.json()["id"] == "sketch"
    missing = await gateway.client.get("/v1/models/nope", headers=gateway.auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"

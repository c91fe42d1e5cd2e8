"""OpenAI Files API: round trip, ownership, bad input."""

from __future__ import annotations

import io

import openai
from PIL import Image

from imagegate.core.assets import NewAsset
from tests.conftest import Gateway, LiveServer


def png_bytes(size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


async def upload(gateway: Gateway, data: bytes, purpose: str = "vision") -> dict[str, object]:
    response = await gateway.client.post(
        "/v1/files",
        files={"file": ("photo.png", data, "image/png")},
        data={"purpose": purpose},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_round_trip(gateway: Gateway) -> None:
    data = png_bytes()
    created = await upload(gateway, data)
    assert created["object"] == "file" and created["bytes"] == len(data)
    assert created["filename"] == "photo.png" and created["purpose"] == "vision"
    assert str(created["id"]).startswith("file-")

    url = f"/v1/files/{created['id']}"
    assert (await gateway.client.get(url, headers=gateway.auth)).json() == created
    content = await gateway.client.get(f"{url}/content", headers=gateway.auth)
    assert content.content == data and content.headers["content-type"] == "image/png"
    listed = (await gateway.client.get("/v1/files", headers=gateway.auth)).json()
    assert [item["id"] for item in listed["data"]] == [created["id"]]

    deleted = await gateway.client.delete(url, headers=gateway.auth)
    assert deleted.json() == {"id": created["id"], "object": "file", "deleted": True}
    assert (await gateway.client.get(url, headers=gateway.auth)).status_code == 404


async def test_files_are_private_to_their_key(gateway: Gateway) -> None:
    created = await upload(gateway, png_bytes())
    _, other = await gateway.services.keys.create(name="other")
    stranger = {"Authorization": f"Bearer {other}"}
    for method, suffix in [("GET", ""), ("GET", "/content"), ("DELETE", "")]:
        response = await gateway.client.request(
            method, f"/v1/files/{created['id']}{suffix}", headers=stranger
        )
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
    assert (await gateway.client.get("/v1/files", headers=stranger)).json()["data"] == []


async def test_deleting_a_file_keeps_an_asset_with_the_same_bytes(gateway: Gateway) -> None:
    data = png_bytes()
    (asset,) = await gateway.services.assets.store(
        [NewAsset(data, "image/png")],
        owner_key_id=None,
        request_id=None,
    )
    created = await upload(gateway, data)
    await gateway.client.delete(f"/v1/files/{created['id']}", headers=gateway.auth)
    response = await gateway.client.get(gateway.services.assets.signed_path(asset.id))
    assert response.status_code == 200 and response.content == data


async def test_bad_uploads(gateway: Gateway) -> None:
    cases = [
        (
            {"files": {"file": ("a.png", b"x", "image/png")}, "data": {"purpose": "fine-tune"}},
            "purpose",
        ),
        ({"files": {"file": ("a.png", b"x", "image/png")}, "data": {}}, "purpose"),
        ({"files": {"other": ("a.png", b"x", "image/png")}, "data": {"purpose": "vision"}}, "file"),
        (
            {
                "files": {"x": ("a.png", b"x", "image/png")},
                "data": {"purpose": "vision", "file": "not a file"},
            },
            "file",
        ),
    ]
    for kwargs, param in cases:
        response = await gateway.client.post("/v1/files", headers=gateway.auth, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 400, (kwargs, response.text)
        assert response.json()["error"]["param"] == param
    not_multipart = await gateway.client.post(
        "/v1/files", json={"purpose": "vision"}, headers=gateway.auth
    )
    assert not_multipart.status_code == 400


async def test_upload_over_the_limit_is_413(gateway: Gateway) -> None:
    gateway.services.settings.max_file_bytes = 1000
    response = await gateway.client.post(
        "/v1/files",
        files={"file": ("big.png", b"x" * 5000, "image/png")},
        data={"purpose": "vision"},
        headers=gateway.auth,
    )
    assert response.status_code == 413
    assert response.json()["error"]["param"] == "file"


def test_openai_sdk_files_round_trip(live_server: LiveServer) -> None:
    data = png_bytes((8, 8))
    with openai.OpenAI(base_url=f"{live_server.base_url}/v1", api_key=live_server.key) as client:
        created = client.files.create(file=("tiny.png", data, "image/png"), purpose="vision")
        assert client.files.retrieve(created.id).bytes == len(data)
        assert client.files.content(created.id).read() == data
        assert client.files.delete(created.id).deleted is True

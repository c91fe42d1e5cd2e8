"""Admin key API and authentication rules."""

from __future__ import annotations

from tests.conftest import Gateway


async def test_create_list_revoke(gateway: Gateway) -> None:
    created = await gateway.client.post(
        "/admin/keys", json={"name": "team-a", "models": ["sketch"]}, headers=gateway.admin
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith(key["prefix"]) and key["models"] == ["sketch"]

    listed = (await gateway.client.get("/admin/keys", headers=gateway.admin)).json()
    assert key["id"] in [item["id"] for item in listed["data"]]
    assert all("key" not in item for item in listed["data"])
    assert key["key"] not in str(listed)

    own = {"Authorization": f"Bearer {key['key']}"}
    assert (await gateway.client.get("/v1/models", headers=own)).status_code == 200
    revoked = await gateway.client.delete(f"/admin/keys/{key['id']}", headers=gateway.admin)
    assert revoked.json()["revoked"] is True
    assert (await gateway.client.get("/v1/models", headers=own)).status_code == 401


async def test_created_admin_key_can_manage_keys(gateway: Gateway) -> None:
    created = await gateway.client.post("/admin/keys", json={"admin": True}, headers=gateway.admin)
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert (await gateway.client.get("/admin/keys", headers=headers)).status_code == 200


async def test_admin_routes_refuse_client_keys_and_strangers(gateway: Gateway) -> None:
    assert (await gateway.client.get("/admin/keys")).status_code == 401
    response = await gateway.client.get("/admin/keys", headers=gateway.auth)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


async def test_revoking_unknown_key_is_404(gateway: Gateway) -> None:
    response = await gateway.client.delete("/admin/keys/key_nope", headers=gateway.admin)
    assert response.status_code == 404


async def test_bad_create_body_is_400(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/admin/keys", json={"admin": "yes"}, headers=gateway.admin
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "admin"


async def test_malformed_authorization_headers(gateway: Gateway) -> None:
    for value in ["Bearer", "Bearer ", "bearer\x00abc", "Bearer " + "x" * 10_000, "Token abc"]:
        response = await gateway.client.get("/v1/models", headers={"Authorization": value})
        assert response.status_code == 401

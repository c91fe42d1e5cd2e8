"""Hostile multipart bodies fail fast with a 400/413 and leave the gateway serving."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import Gateway

EDITS = "/v1/images/edits"


def multipart(boundary: str, parts: list[tuple[str, bytes]], preamble: bytes = b"") -> bytes:
    body = [preamble]
    for name, value in parts:
        body.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    body.append(f"--{boundary}--\r\n".encode())
    return b"".join(body)


async def send(gateway: Gateway, content: bytes, boundary: str) -> httpx.Response:
    headers = {**gateway.auth, "content-type": f"multipart/form-data; boundary={boundary}"}
    started = time.perf_counter()
    response = await gateway.client.post(EDITS, content=content, headers=headers)
    assert time.perf_counter() - started < 5
    return response


@pytest.mark.parametrize(
    ("name", "boundary", "parts", "preamble"),
    [
        ("thousands of parts", "b", [(f"f{i}", b"x") for i in range(5000)], b""),
        ("oversized text field", "b", [("prompt", b"x" * (2 * 1024 * 1024))], b""),
        ("megabytes of CRLF first", "b", [("prompt", b"x")], b"\r\n" * (3 * 1024 * 1024)),
        ("huge boundary", "b" * 5000, [("prompt", b"x")], b""),
    ],
)
async def test_hostile_forms_are_refused_fast(
    gateway: Gateway, name: str, boundary: str, parts: list[tuple[str, bytes]], preamble: bytes
) -> None:
    response = await send(gateway, multipart(boundary, parts, preamble), boundary)
    assert response.status_code in (400, 413), (name, response.status_code, response.text[:200])
    assert "error" in response.json()
    healthy = await gateway.client.get("/healthz")
    assert healthy.status_code == 200

"""Inline base64, data URIs and the dispatch from what a client sent to a checked image."""

from __future__ import annotations

import base64
import threading
from io import BytesIO
from typing import Any

import httpx
import pybase64
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegate.errors import InvalidRequest, PayloadTooLarge
from imagegate.imaging import sources
from imagegate.imaging.image import InputImage
from imagegate.imaging.inspect import inspect_image
from imagegate.imaging.limits import ImageLimits
from imagegate.imaging.sources import ImageFetcher, decode_base64_image, load_image
from imagegate.outbound import OutboundGuard

LIMITS = ImageLimits()
MB = 1024 * 1024


def png_bytes(size: tuple[int, int] = (12, 8)) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png_bytes()


def decode(text: str, max_bytes: int = 50 * MB, param: str = "image") -> bytes:
    return decode_base64_image(text, param=param, max_bytes=max_bytes)


def encodings(data: bytes) -> list[str]:
    """Every way a client may reasonably write ``data``."""
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode()
    wrapped = base64.encodebytes(data).decode()  # MIME: 76-character lines
    return [
        standard,
        standard.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        wrapped,
        wrapped.replace("\n", "\r\n"),
        f"  {standard}\n",
        f"data:image/png;base64,{standard}",
        f"data:image/png;name=photo.png;base64,{standard}",
        f"DATA:IMAGE/PNG;BASE64,{wrapped}",
        f"data:;base64,{urlsafe.rstrip('=')}",
        f"data:application/octet-stream;base64,{standard}",
    ]


# --- base64 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", encodings(PNG))
def test_decodes_every_reasonable_spelling(text: str) -> None:
    assert decode(text) == PNG


@pytest.mark.parametrize(
    "text",
    [
        "iVBORw0KGgo!!!",
        "iVBORw0KGgoé",
        "iVBORw0K Ggo$",
        "QQ==QQ==",
        "Q",
        "QUJDR",
        "data:image/png;base64,<svg/>",
        "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>",
        "data:image/png;charset=utf-8,iVBORw0KGgo=",
        "data:image/png;base64" + "A" * 400,
    ],
)
def test_refuses_what_is_not_base64(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode(text, param="images[0].image_url")
    assert type(caught.value) is InvalidRequest
    assert caught.value.param == "images[0].image_url"


@pytest.mark.parametrize(
    "text",
    [
        "A" * 70 * MB,
        "data:image/png;base64," + "A" * 70 * MB,
        # Not ASCII: copying it to bytes would refuse it as not base64 (a 400), so a 413 shows
        # it was refused from its length before any copy, with no clock involved.
        "A" * 70 * MB + "\u00e9",
    ],
)
def test_oversize_base64_is_refused_from_its_length_without_decoding(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an oversize payload")

    monkeypatch.setattr(pybase64, "b64decode", no_decoding)
    with pytest.raises(PayloadTooLarge) as caught:
        decode(text, max_bytes=50 * MB)
    assert caught.value.status == 413
    assert caught.value.param == "image"


def test_byte_cap_is_exact_at_the_boundary() -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    for text in encodings(data):
        if not any(c.isspace() for c in text.strip()):
            assert decode(text, max_bytes=len(data)) == data
        with pytest.raises(PayloadTooLarge):
            decode(text, max_bytes=len(data) - 1)


def test_whitespace_counts_towards_the_limit() -> None:
    data = bytes(1000)
    wrapped = base64.encodebytes(data).decode()
    assert len(wrapped) > 4 * 334 + 4
    with pytest.raises(PayloadTooLarge):
        decode(wrapped, max_bytes=len(data))
    assert decode(wrapped, max_bytes=len(wrapped)) == data


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), spelling=st.integers(0, 11), spare=st.integers(0, 3))
def test_base64_round_trips_within_the_cap(data: bytes, spelling: int, spare: int) -> None:
    text = encodings(data)[spelling]
    assert decode(text, max_bytes=len(text) + spare) == data
    if not any(c.isspace() for c in text.strip()):
        assert decode(text, max_bytes=len(data) + spare) == data
    if data:
        with pytest.raises(PayloadTooLarge):
            decode(text, max_bytes=len(data) - 1)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(st.text(max_size=200), st.from_regex(r"(data:[a-z/;=]*,)?[A-Za-z0-9+/=_\- \n]*"))
)
def test_arbitrary_text_is_bytes_or_a_client_error(text: str) -> None:
    try:
        decode(text, max_bytes=64)
    except (InvalidRequest, PayloadTooLarge) as exc:
        error: InvalidRequest | PayloadTooLarge | None = exc
    else:
        error = None
    assert error is None or error.param == "image"


# --- load_image ------------------------------------------------------------------------------


class NoFetching(ImageFetcher):
    """A fetcher that must not be used."""

    def __init__(self) -> None:
        pass

    async def fetch(self, url: str, *, max_bytes: int, param: str) -> bytes:
        raise AssertionError(f"fetched {url}")


@pytest.mark.parametrize(
    "source",
    [
        PNG,
        base64.b64encode(PNG).decode(),
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
    ],
)
async def test_loads_uploads_base64_and_data_uris(source: bytes | str) -> None:
    image = await load_image(source, param="image", limits=LIMITS, fetcher=NoFetching())
    assert (image.format, image.width, image.height, image.data) == ("png", 12, 8, PNG)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "ftp://example.com/image.png",
        "dict://127.0.0.1:11211/stat",
        "javascript:alert(1)",
        "  ldap://example.com/",
    ],
)
async def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await load_image(url, param="image[1]", limits=LIMITS, fetcher=NoFetching())
    assert caught.value.param == "image[1]"
    assert "unsupported scheme" in caught.value.message


async def test_oversize_uploads_are_413() -> None:
    with pytest.raises(PayloadTooLarge):
        await load_image(PNG, param="image", limits=ImageLimits(max_bytes=10), fetcher=NoFetching())


async def test_cpu_work_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real_decode = sources.decode_base64_image
    real_inspect = inspect_image

    def spy_decode(*args: Any, **kwargs: Any) -> bytes:
        threads.append(threading.get_ident())
        return real_decode(*args, **kwargs)

    def spy_inspect(*args: Any, **kwargs: Any) -> InputImage:
        threads.append(threading.get_ident())
        return real_inspect(*args, **kwargs)

    monkeypatch.setattr(sources, "decode_base64_image", spy_decode)
    monkeypatch.setattr(sources, "inspect_image", spy_inspect)
    await load_image(PNG, param="image", limits=LIMITS, fetcher=NoFetching())
    await load_image(
        base64.b64encode(PNG).decode(), param="image", limits=LIMITS, fetcher=NoFetching()
    )
    assert len(threads) == 3
    assert threading.get_ident() not in threads


async def test_http_urls_go_through_the_guard_to_the_checked_address() -> None:
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

    async def resolve(host: str, port: int) -> list[str]:
        assert host == "cdn.example"
        return ["93.184.215.14"]

    guard = OutboundGuard(resolver=resolve)
    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        image = await load_image(
            "https://cdn.example/cat.png?sig=secret",
            param="image",
            limits=LIMITS,
            fetcher=ImageFetcher(client, guard),
        )
    assert image.data == PNG
    (request,) = seen
    assert request.url.host == "93.184.215.14"
    assert request.headers["Host"] == "cdn.example"
    assert request.extensions["sni_hostname"] == "cdn.example"

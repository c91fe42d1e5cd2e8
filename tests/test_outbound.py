"""The SSRF guard: address rules, DNS pinning, redirects, deadlines and byte caps.

No test reaches the network: names are resolved by fakes, and the image hosts are loopback
servers started here (allow-listed, as an operator would for a fake).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from io import BytesIO

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagegate.errors import InvalidRequest, PayloadTooLarge
from imagegate.imaging.limits import ImageLimits
from imagegate.imaging.sources import ImageFetcher, load_image
from imagegate.outbound import OutboundGuard, is_public_address, system_resolver

Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


def png_bytes() -> bytes:
    buffer = BytesIO()
    Image.new("RGBA", (16, 9), (1, 2, 3, 128)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png_bytes()


class FakeDNS:
    """A resolver answering from a table and remembering every question."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


async def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"looked up {host}: numeric hosts must not be resolved")


class FakeHost:
    """A loopback HTTP/1.1 server answering each path with a scripted handler."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeHost:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, host: str = "images.test") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            target = head[0].split(" ")[1]
            fields = (line.split(":", 1) for line in head[1:] if line)
            self.requests.append((target, {k.strip().lower(): v.strip() for k, v in fields}))
            await self.routes.get(target.split("?")[0], answer(404))(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    async def handle(writer: asyncio.StreamWriter) -> None:
        fields = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        writer.write(f"HTTP/1.1 {status} Whatever\r\n{head}\r\n".encode() + body)
        await writer.drain()

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    return answer(status, headers={"Location": location})


def trickle(interval: float = 0.05) -> Handler:
    """Headers at once, then one byte of a 60-byte body every ``interval`` seconds (3 s)."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")
        for _ in range(60):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(interval)

    return handle


async def stall(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


def endless(sent: list[int]) -> Handler:
    """A chunked body that never ends; ``sent`` counts the bytes written."""

    async def handle(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\x00" * 65536
        while True:
            writer.write(b"10000\r\n" + chunk + b"\r\n")
            await writer.drain()
            sent[0] += len(chunk)

    return handle


@pytest.fixture
async def host() -> AsyncIterator[FakeHost]:
    async with FakeHost() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def loopback_guard(dns: FakeDNS | None = None) -> tuple[OutboundGuard, FakeDNS]:
    dns = dns or FakeDNS({"images.test": ["127.0.0.1"], "evil.example": ["127.0.0.1"]})
    return OutboundGuard(["images.test"], resolver=dns), dns


# --- which addresses are public --------------------------------------------------------------

PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "2002:5db8:d70e::", "64:ff9b::808:808"]
NOT_PUBLIC = [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.1.1.1", "240.0.0.1",
    "255.255.255.255", "192.0.0.8", "192.0.0.100", "198.18.0.1", "::", "::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::127.0.0.1", "::a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1", "2002:7f00:1::", "2002:a00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe",
    "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "2001:db8::1",
]  # fmt: skip


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


# --- check_url ------------------------------------------------------------------------------

REFUSED_URLS = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "https://192.168.0.1:8443/",
    "http://100.64.0.1/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_non_public_literal_hosts_are_refused(url: str) -> None:
    guard = OutboundGuard(resolver=no_dns)
    with pytest.raises(InvalidRequest) as caught:
        await guard.check_url(url, param="images[0].image_url")
    assert caught.value.param == "images[0].image_url"
    assert "127.0.0.1" not in caught.value.message


@pytest.mark.parametrize(
    "host", ["127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.1", "017700000001"]
)
def test_getaddrinfo_reads_odd_numeric_hosts_as_loopback(host: str) -> None:
    # Why numeric hosts must be parsed like inet_aton: that is what the system resolver does.
    infos = socket.getaddrinfo(host, 80, flags=socket.AI_NUMERICHOST, type=socket.SOCK_STREAM)
    assert {info[4][0] for info in infos} == {"127.0.0.1"}


def numeric_spelling(value: int, parts: int, bases: list[int]) -> str:
    """``value`` written the inet_aton way: ``parts`` numbers, each in base 8, 10 or 16."""
    sizes = [1] * (parts - 1) + [5 - parts]
    numbers, shift = [], 32
    for size in sizes:
        shift -= 8 * size
        numbers.append((value >> shift) & ((1 << (8 * size)) - 1))
    spell: dict[int, Callable[[int], str]] = {
        8: lambda n: f"0{n:o}",
        10: str,
        16: lambda n: f"0x{n:x}",
    }
    return ".".join(spell[base](n) for n, base in zip(numbers, bases, strict=False))


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(0, 2**32 - 1),
        st.sampled_from([0x7F000001, 0x0A000001, 0xA9FEA9FE, 0x64400001, 0x08080808]),
    ),
    parts=st.integers(1, 4),
    bases=st.lists(st.sampled_from([8, 10, 16]), min_size=4, max_size=4),
)
def test_numeric_hosts_are_read_as_the_system_reads_them(
    value: int, parts: int, bases: list[int]
) -> None:
    host = numeric_spelling(value, parts, bases)
    assert socket.inet_aton(host) == value.to_bytes(4, "big")
    address = ipaddress.IPv4Address(value)
    guard = OutboundGuard(resolver=no_dns)
    try:
        target = asyncio.run(guard.check_url(f"http://{host}/", param="url"))
    except InvalidRequest as exc:
        # Refused: for being non-public, or by httpx's stricter dotted-quad parsing.
        reason = exc.message
        assert "non-public" in reason or "not a valid URL" in reason
        assert "non-public" not in reason or not is_public_address(address)
    else:
        assert target.address == address
        assert is_public_address(address)


async def test_names_resolving_to_loopback_are_refused() -> None:
    dns = FakeDNS({"evil.example": ["127.0.0.1"]})
    with pytest.raises(InvalidRequest) as caught:
        await OutboundGuard(resolver=dns).check_url("https://evil.example/a.png", param="image")
    assert "non-public address" in caught.value.message
    assert "127.0.0.1" not in caught.value.message
    assert dns.calls == ["evil.example"]


async def test_one_non_public_address_among_many_is_enough_to_refuse() -> None:
    dns = FakeDNS({"mixed.example": ["93.184.215.14", "2606:4700::1111", "10.0.0.7"]})
    with pytest.raises(InvalidRequest):
        await OutboundGuard(resolver=dns).check_url("http://mixed.example/", param="image")


@pytest.mark.parametrize("answer_", [[], ["not-an-address"]])
async def test_unresolvable_names_are_refused(answer_: list[str]) -> None:
    guard = OutboundGuard(resolver=FakeDNS({"odd.example": answer_}))
    for url in ("http://odd.example/", "http://missing.example/"):
        with pytest.raises(InvalidRequest) as caught:
            await guard.check_url(url, param="image")
        assert "does not resolve" in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "ftp://93.184.215.14/x.png",
        "ws://93.184.215.14/",
        "http://user:pass@93.184.215.14/",
        "http://93.184.215.14@127.0.0.1/",
        "http:///x.png",
        "http://[::1/",
        "http://93.184.215.14/" + "a" * 9000,
    ],
)
async def test_other_schemes_credentials_and_junk_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await OutboundGuard(resolver=no_dns).check_url(url, param="webhook_url")
    assert caught.value.param == "webhook_url"


async def test_allow_list_exempts_names_and_networks_only() -> None:
    dns = FakeDNS({"images.test": ["127.0.0.1", "::1"], "other.test": ["127.0.0.1"]})
    guard = OutboundGuard(["Images.Test.", "127.0.0.2/32", "fd00::/8"], resolver=dns)
    target = await guard.check_url("http://images.test/x", param="image")
    assert target.address == ipaddress.ip_address("127.0.0.1")
    assert (await guard.check_url("http://127.0.0.2/", param="image")).host == "127.0.0.2"
    assert (await guard.check_url("http://[fd00::5]/", param="image")).host == "fd00::5"
    for url in ("http://other.test/", "http://127.0.0.1/", "http://127.0.0.3/"):
        with pytest.raises(InvalidRequest):
            await guard.check_url(url, param="image")
    with pytest.raises(InvalidRequest):
        await guard.check_url("file://images.test/etc/passwd", param="image")


async def test_requests_go_to_the_checked_address_with_the_name_in_host_and_sni() -> None:
    dns = FakeDNS({"cdn.example": ["2606:4700::1111"]})
    guard = OutboundGuard(resolver=dns)
    target = await guard.check_url("https://cdn.example:8443/a.png?sig=1", param="image")
    async with httpx.AsyncClient(trust_env=False) as http:
        http.cookies.set("session", "other-tenant", domain="[2606:4700::1111]")
        request = target.build_request(http, headers={"host": "127.0.0.1", "Accept": "*/*"})
        plain = await OutboundGuard().check_url("http://93.184.215.14/", param="image")
        assert "sni_hostname" not in plain.build_request(http).extensions
    assert str(request.url) == "https://[2606:4700::1111]:8443/a.png?sig=1"
    assert request.headers.get_list("Host") == ["cdn.example:8443"]
    assert request.extensions["sni_hostname"] == "cdn.example"
    assert "Cookie" not in request.headers


# --- fetching from loopback fakes -----------------------------------------------------------


async def test_fetches_from_an_allow_listed_host_pinned_to_its_address(
    host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/cat.png"] = answer(200, PNG, {"Content-Type": "image/png"})
    guard, dns = loopback_guard()
    data = await guard.get(client, host.url("/cat.png?sig=abc"), param="image", max_bytes=10**6)
    assert data == PNG
    ((path, headers),) = host.requests
    assert path == "/cat.png?sig=abc"
    assert headers["host"] == f"images.test:{host.port}"
    assert dns.calls == ["images.test"]  # resolved once: no second lookup to rebind


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/cat.png",
        "http://localhost:{port}/cat.png",
        "http://evil.example:{port}/cat.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/cat.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
async def test_redirects_to_non_allowed_addresses_are_refused(
    location: str, host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/start"] = redirect(location.format(port=host.port))
    host.routes["/cat.png"] = answer(200, PNG)
    guard, _ = loopback_guard(FakeDNS({"images.test": ["127.0.0.1"], "localhost": ["127.0.0.1"]}))
    with pytest.raises(InvalidRequest) as caught:
        await guard.get(client, host.url("/start"), param="image", max_bytes=10**6)
    assert caught.value.param == "image"
    assert [path for path, _ in host.requests] == ["/start"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_followed_and_each_hop_is_checked(
    status: int, host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/start"] = redirect("/next", status)
    host.routes["/next"] = redirect(host.url("/cat.png"), status)
    host.routes["/cat.png"] = answer(200, PNG)
    guard, dns = loopback_guard()
    assert await guard.get(client, host.url("/start"), param="image", max_bytes=10**6) == PNG
    assert dns.calls == ["images.test"] * 3
    assert {headers["host"] for _, headers in host.requests} == {f"images.test:{host.port}"}


async def test_redirect_loops_stop_after_five_hops(
    host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/loop"] = redirect("/loop")
    guard, _ = loopback_guard()
    with pytest.raises(InvalidRequest) as caught:
        await guard.get(client, host.url("/loop"), param="image", max_bytes=10**6)
    assert "more than 5 redirects" in caught.value.message
    assert len(host.requests) == 6


@pytest.mark.parametrize("status", [404, 403, 500, 503, 304])
async def test_error_answers_are_client_errors_naming_the_status(
    status: int, host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/cat.png"] = answer(status, b"nope")
    guard, _ = loopback_guard()
    with pytest.raises(InvalidRequest) as caught:
        await guard.get(client, host.url("/cat.png"), param="image", max_bytes=10**6)
    assert caught.value.message == f"could not fetch image: host answered {status}"


@pytest.mark.parametrize("route", ["trickle", "stall"])
async def test_slow_hosts_are_cut_off_at_the_deadline(
    route: str, host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/slow"] = trickle() if route == "trickle" else stall
    guard, _ = loopback_guard()
    started = time.perf_counter()
    with pytest.raises(InvalidRequest) as caught:
        await guard.get(client, host.url("/slow"), param="image", max_bytes=10**6, deadline=0.5)
    elapsed = time.perf_counter() - started
    assert "within 0.5 s" in caught.value.message
    assert 0.45 < elapsed < 1.5


async def test_declared_oversize_bodies_are_refused_before_reading(
    host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/big"] = answer(200, b"x" * 5000)
    guard, _ = loopback_guard()
    with pytest.raises(PayloadTooLarge) as caught:
        await guard.get(client, host.url("/big"), param="image", max_bytes=4096)
    assert caught.value.status == 413


async def test_streamed_oversize_bodies_are_aborted_at_the_cap(
    host: FakeHost, client: httpx.AsyncClient
) -> None:
    sent = [0]
    host.routes["/endless"] = endless(sent)
    guard, _ = loopback_guard()
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge):
        await guard.get(client, host.url("/endless"), param="image", max_bytes=1024 * 1024)
    assert time.perf_counter() - started < 2
    assert sent[0] < 64 * 1024 * 1024


async def test_refused_connections_are_client_errors(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    guard, _ = loopback_guard()
    with pytest.raises(InvalidRequest) as caught:
        await guard.get(client, f"http://images.test:{port}/", param="image", max_bytes=100)
    assert "connection" in caught.value.message


async def test_the_client_cookie_jar_is_not_sent(host: FakeHost, client: httpx.AsyncClient) -> None:
    host.routes["/cat.png"] = answer(200, PNG)
    client.cookies.set("session", "secret", domain="127.0.0.1")
    guard, _ = loopback_guard()
    await guard.get(client, host.url("/cat.png"), param="image", max_bytes=10**6)
    assert "cookie" not in host.requests[0][1]


async def test_system_resolver_answers_numeric_hosts_without_dns() -> None:
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


# --- images end to end ----------------------------------------------------------------------


async def test_load_image_fetches_checks_and_logs_no_url(
    host: FakeHost, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    host.routes["/cat.png"] = answer(200, PNG, {"Content-Type": "image/png"})
    guard, _ = loopback_guard()
    caplog.set_level(logging.DEBUG)
    image = await load_image(
        host.url("/cat.png?token=hunter2"),
        param="image[0]",
        limits=ImageLimits(),
        fetcher=ImageFetcher(client, guard),
    )
    assert (image.format, image.width, image.height, image.has_alpha) == ("png", 16, 9, True)
    assert host.requests[0][1]["host"] == f"images.test:{host.port}"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("imagegate"))
    assert "hunter2" not in ours and "/cat.png" not in ours
    assert str(len(PNG)) in ours and image.sha256 in ours


async def test_load_image_refuses_urls_to_private_hosts(client: httpx.AsyncClient) -> None:
    guard, _ = loopback_guard()
    with pytest.raises(InvalidRequest) as caught:
        await load_image(
            "http://evil.example/cat.png",
            param="image",
            limits=ImageLimits(),
            fetcher=ImageFetcher(client, guard),
        )
    assert "non-public" in caught.value.message


async def test_image_downloads_are_capped_by_the_image_limit(
    host: FakeHost, client: httpx.AsyncClient
) -> None:
    host.routes["/cat.png"] = answer(200, PNG)
    guard, _ = loopback_guard()
    with pytest.raises(PayloadTooLarge):
        await load_image(
            host.url("/cat.png"),
            param="image",
            limits=ImageLimits(max_bytes=len(PNG) - 1),
            fetcher=ImageFetcher(client, guard),
        )

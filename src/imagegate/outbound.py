"""The SSRF guard for every outbound request a client can influence: image URLs, webhooks.

Boundary: a URL a client chose goes in; out comes either a :class:`ResolvedTarget` (an http(s)
URL whose host was resolved exactly once, to addresses that are all public or allow-listed) or
an :class:`~imagegate.errors.InvalidRequest` naming the client's field. :meth:`OutboundGuard.get`
then fetches such a URL the safe way. Nothing here knows what is being fetched; callers such as
:class:`imagegate.imaging.fetch.ImageFetcher` give it meaning.

The rules (item 7 of the security guide):

* only ``http`` and ``https``; no credentials in the URL;
* the host is resolved once; the target is refused if **any** address is loopback, private,
  link-local, multicast, reserved, CGNAT (100.64.0.0/10), unspecified, or an IPv6 form that
  embeds such an IPv4 address (v4-mapped, v4-compatible, NAT64 ``64:ff9b::/96``, 6to4
  ``2002::/16``, Teredo). Numeric hosts in any form ``inet_aton`` accepts (``127.1``,
  ``2130706433``, ``0x7f000001``) are read as the addresses they are, not looked up;
* the connection goes to the checked address: the request URL carries the IP, the ``Host``
  header and, for https, the TLS server name (``sni_hostname``, so certificates are still
  verified against the host name) carry the name. No second lookup, so no DNS rebinding;
* redirects are followed by hand (at most 5 by default), each hop checked like the first;
* one deadline covers the whole exchange, including a host trickling its body a byte at a time,
  and the body is streamed and dropped as soon as it passes the byte cap (413);
* operators may allow-list host names and networks (``["localhost", "10.1.0.0/16"]``), which
  exempts them from the non-public refusal — never from the scheme rule.

Errors never echo resolved addresses. Logs carry the scheme, host, status and size — never the
path, query string or body.

For other methods (a webhook POST), use :meth:`OutboundGuard.check_url`, then
:meth:`ResolvedTarget.build_request` and ``client.send(request, follow_redirects=False)`` inside
``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from imagegate.errors import InvalidRequest, PayloadTooLarge

__all__ = [
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TIMEOUT",
    "Address",
    "OutboundGuard",
    "ResolvedTarget",
    "Resolver",
    "is_public_address",
    "system_resolver",
]

log = logging.getLogger("imagegate.outbound")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``async (host, port) -> addresses``: how :class:`OutboundGuard` turns a name into IPs."""

DEFAULT_TIMEOUT: Final = 15.0
DEFAULT_MAX_REDIRECTS: Final = 5
MAX_URL_LENGTH: Final = 8192

_SCHEMES: Final = {"http": 80, "https": 443}
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# ``is_global`` calls most of 192.0.0.0/24 (IETF protocol assignments) global before Python
# 3.12.4. (CGNAT, 100.64.0.0/10, is never global; local-use NAT64, 64:ff9b:1::/48, lies in the
# reserved ::/8.)
_NON_PUBLIC: Final[tuple[Network, ...]] = (ipaddress.IPv4Network("192.0.0.0/24"),)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_INET_ATON_PART: Final = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo`` (the default resolver)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public_address(address: Address) -> bool:
    """Whether ``address`` is a public unicast address and hides no non-public IPv4 one.

    IPv4-mapped (``::ffff:0:0/96``), IPv4-compatible (``::/96``) and Teredo (``2001::/32``)
    addresses are never global to :mod:`ipaddress` (the first two lie in the reserved
    ``::/8``), so they are refused whatever they embed. NAT64 (``64:ff9b::/96``) and 6to4
    (``2002::/16``) are routable prefixes: the IPv4 address inside decides.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64:
            # The NAT64 prefix itself lies in the reserved ::/8; only its IPv4 address matters.
            return _plainly_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not _plainly_public(address.sixtofour):
            return False
    return _plainly_public(address)


def _plainly_public(address: Address) -> bool:
    if any(address in network for network in _NON_PUBLIC):
        return False
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or site_local
    )


def _numeric_host(host: str) -> Address | None:
    """``host`` as an address when it is one, in any form ``inet_aton`` accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_INET_ATON_PART.fullmatch(p) for p in parts):
        return None
    numbers = [_inet_aton_number(part) for part in parts]
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(parts))):
        return None
    value = 0
    for number in leading:
        value = value << 8 | number
    return ipaddress.IPv4Address(value << (8 * (5 - len(parts))) | last)


def _inet_aton_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if part.startswith("0"):
        return int(part, 8)
    return int(part)


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A URL that passed the guard, pinned to the address it was checked against.

    ``url`` is the URL as parsed; ``host`` its ASCII (IDNA) host; ``address`` the checked IP
    that every connection for this target must use.
    """

    url: httpx.URL
    host: str
    address: Address

    @property
    def pinned_url(self) -> httpx.URL:
        """``url`` with the host replaced by the checked address."""
        return self.url.copy_with(host=str(self.address))

    def build_request(
        self,
        client: httpx.AsyncClient,
        method: str = "GET",
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> httpx.Request:
        """A request to the checked address that names the host in ``Host`` and TLS SNI.

        The client's cookie jar is never sent: it may hold cookies from other hosts' answers.
        """
        extensions: dict[str, object] = {}
        if self.url.scheme == "https" and _numeric_host(self.host) is None:
            extensions["sni_hostname"] = self.host
        request = client.build_request(
            method,
            self.pinned_url,
            headers={
                **{k: v for k, v in (headers or {}).items() if k.lower() != "host"},
                "Host": self.url.netloc.decode("ascii"),
            },
            content=content,
            timeout=timeout,
            extensions=extensions,
        )
        request.headers.pop("Cookie", None)
        return request


UNRESOLVED = "host_not_resolved"
"""The code of the refusal of a host name that does not resolve (now)."""


class OutboundGuard:
    """Decides which URLs the gateway may fetch for a client, and fetches them safely.

    ``allow`` lists host names (matched exactly, case-insensitively) and networks in CIDR or
    address form; a matching host, or an address inside a listed network, is exempt from the
    non-public refusal. ``resolver`` defaults to :func:`system_resolver`; tests inject fakes.
    """

    def __init__(
        self,
        allow: Sequence[str] = (),
        *,
        resolver: Resolver | None = None,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ) -> None:
        names: set[str] = set()
        networks: list[Network] = []
        for entry in allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                names.add(entry.strip().lower().rstrip("."))
        self._names = frozenset(names)
        self._networks = tuple(networks)
        self._resolver: Resolver = resolver or system_resolver
        self._max_redirects = max_redirects

    async def check_url(self, url: str, *, param: str) -> ResolvedTarget:
        """Parse ``url``, resolve its host once and check every address; see the module doc."""
        parsed = _parse(url, param)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or _SCHEMES[parsed.scheme]
        addresses = await self._addresses(host, port, param)
        if host.lower().rstrip(".") not in self._names:
            for address in addresses:
                if not is_public_address(address) and not self._allowed(address):
                    log.info("refused %s://%s: non-public address", parsed.scheme, host)
                    raise InvalidRequest(
                        f"{param} points to a host that resolves to a non-public address",
                        param=param,
                    )
        return ResolvedTarget(url=parsed, host=host, address=addresses[0])

    async def get(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        param: str,
        max_bytes: int,
        deadline: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """GET ``url`` through the guard and return the body.

        Every redirect hop is checked like the first; ``deadline`` (seconds) bounds the whole
        exchange, from the first lookup to the last body byte.
        Raises :class:`PayloadTooLarge` past ``max_bytes`` and :class:`InvalidRequest` for a
        refused URL, an error status, a failed connection or the deadline.
        """
        headers = {"Accept-Encoding": "identity", **(headers or {})}
        try:
            async with asyncio.timeout(deadline):
                return await self._follow(client, url, param, max_bytes, deadline, headers)
        except TimeoutError:
            raise InvalidRequest(
                f"could not fetch {param}: no complete answer within {deadline:g} s", param=param
            ) from None

    async def _follow(
        self,
        client: httpx.AsyncClient,
        url: str,
        param: str,
        max_bytes: int,
        deadline: float,
        headers: Mapping[str, str],
    ) -> bytes:
        for _ in range(self._max_redirects + 1):
            target = await self.check_url(url, param=param)
            request = target.build_request(client, headers=headers, timeout=deadline)
            try:
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    location = response.headers.get("location")
                    if response.status_code not in _REDIRECTS or location is None:
                        return await _read_body(response, target, param, max_bytes)
                finally:
                    await response.aclose()
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.HTTPError:
                raise InvalidRequest(
                    f"could not fetch {param}: the connection to the host failed", param=param
                ) from None
            url = _join(target.url, location, param)
        raise InvalidRequest(
            f"could not fetch {param}: more than {self._max_redirects} redirects", param=param
        )

    async def _addresses(self, host: str, port: int, param: str) -> list[Address]:
        literal = _numeric_host(host)
        if literal is not None:
            return [literal]
        try:
            found = await self._resolver(host, port)
            addresses = [ipaddress.ip_address(address) for address in found]
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            raise InvalidRequest(
                f"could not fetch {param}: the host name does not resolve",
                param=param,
                code=UNRESOLVED,
            )
        return addresses

    def _allowed(self, address: Address) -> bool:
        return any(address in network for network in self._networks)


def _parse(url: str, param: str) -> httpx.URL:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"{param} is longer than {MAX_URL_LENGTH} characters", param=param)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise InvalidRequest(f"{param} is not a valid URL", param=param) from None
    if parsed.scheme not in _SCHEMES:
        raise InvalidRequest(f"{param} must be an http or https URL", param=param)
    if parsed.userinfo:
        raise InvalidRequest(f"{param} must not contain a user name or password", param=param)
    if not parsed.raw_host:
        raise InvalidRequest(f"{param} has no host", param=param)
    return parsed


def _join(base: httpx.URL, location: str, param: str) -> str:
    try:
        return str(base.join(location))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise InvalidRequest(f"could not fetch {param}: bad redirect", param=param) from None


async def _read_body(
    response: httpx.Response, target: ResolvedTarget, param: str, max_bytes: int
) -> bytes:
    if not response.is_success:
        raise InvalidRequest(
            f"could not fetch {param}: host answered {response.status_code}", param=param
        )
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(param, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(param, max_bytes)
        chunks.append(chunk)
    log.debug("fetched %s://%s: %d bytes", target.url.scheme, target.host, size)
    return b"".join(chunks)


def _too_large(param: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{param} is larger than the limit of {max_bytes} bytes", param=param)

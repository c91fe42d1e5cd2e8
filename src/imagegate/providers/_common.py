"""Small helpers adapters share: which upstream URLs may carry our key, size maths.

Boundary: pure functions; no I/O.

A task upstream hands back URLs to poll (BFL ``polling_url``, fal ``status_url``, Replicate
``urls.get``). Our credential goes along with each poll, so such a URL is only followed when it
stays with the deployment's own host or a sibling under the same parent domain
(``api.bfl.ai`` → ``api.us1.bfl.ai``), over https unless the base URL itself is http;
otherwise the adapter builds the documented URL from the base URL and the task id.
"""

from __future__ import annotations

import math

import httpx

__all__ = ["aspect_ratio_text", "nearest_aspect_ratio", "same_site", "set_fields", "snap"]


def _parent(host: str) -> str | None:
    labels = host.split(".")
    if len(labels) < 3 or host.replace(".", "").isdigit():
        return None
    return ".".join(labels[1:])


def same_site(url: str | None, base_url: str) -> bool:
    """Whether ``url`` may receive the deployment's credentials (see the module docstring)."""
    if not url:
        return False
    try:
        candidate, base = httpx.URL(url), httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if candidate.scheme not in ("https", base.scheme) or candidate.userinfo:
        return False
    host, base_host = candidate.host.lower(), base.host.lower()
    if host == base_host:
        return (candidate.port or 0) == (base.port or 0) or candidate.scheme == "https"
    parent = _parent(base_host)
    return parent is not None and candidate.scheme == "https" and host.endswith("." + parent)


def snap(side: int, multiple: int, low: int, high: int) -> int:
    """``side`` rounded to a multiple of ``multiple`` within ``low``…``high``."""
    return max(low, min(high, multiple * round(side / multiple)))


def aspect_ratio_text(width: int, height: int) -> str:
    """``"16:9"`` for 1792×1008: the reduced ratio, as task upstreams take it."""
    divisor = math.gcd(width, height) or 1
    return f"{width // divisor}:{height // divisor}"


def nearest_aspect_ratio(width: int, height: int, choices: list[str] | tuple[str, ...]) -> str:
    """The listed ``"W:H"`` ratio nearest ``width``×``height`` (compared on a log scale)."""
    wanted = math.log(width / height)

    def distance(ratio: str) -> float:
        across, down = (int(side) for side in ratio.split(":"))
        return abs(math.log(across / down) - wanted)

    return min(choices, key=distance)


def set_fields(request: object, *names: str) -> list[str]:
    """The *names* whose attribute on *request* is set (not ``None``), sorted: what an adapter
    reports from ``dropped_params`` for request fields its upstream has no place for."""
    return sorted(name for name in names if getattr(request, name) is not None)

"""The process's Prometheus series and the functions that record them.

Series are created once per process, at import. Under ``imagegate serve --workers N`` the
``PROMETHEUS_MULTIPROC_DIR`` variable is set before any worker starts (see
:mod:`.multiproc`), so prometheus_client keeps each worker's values in its own memory-mapped
file and a scrape of any worker sums them (gauges: the largest value among live workers).

Recording is on the hot path: label children are cached per label tuple (a dict lookup
instead of prometheus_client's locked ``labels()`` call and label checks).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from imagegate.errors import ClientError, RateLimited, UpstreamError, UpstreamTimeout

__all__ = [
    "UNMATCHED_ROUTE",
    "cooldown",
    "cost",
    "images",
    "outcome_of",
    "request",
    "upstream",
]

UNMATCHED_ROUTE: Final = "unmatched"
"""The ``route`` label of a request no route matched (raw paths would be unbounded)."""

REQUEST_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
UPSTREAM_BUCKETS: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

REQUESTS: Final = Counter(
    "imagegate_requests",
    "HTTP requests answered, by route template and status",
    ["route", "status"],
)
REQUEST_SECONDS: Final = Histogram(
    "imagegate_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["route"],
    buckets=REQUEST_BUCKETS,
)
IMAGES: Final = Counter(
    "imagegate_images", "Images an upstream delivered, by model and provider", ["model", "provider"]
)
COST: Final = Counter("imagegate_cost_usd", "US dollars charged, by model", ["model"])
UPSTREAM: Final = Counter(
    "imagegate_upstream_requests",
    "Calls to upstream deployments, by outcome",
    ["provider", "deployment", "outcome"],
)
UPSTREAM_SECONDS: Final = Histogram(
    "imagegate_upstream_duration_seconds",
    "Time of one upstream call (for task upstreams: submit and every poll)",
    ["provider"],
    buckets=UPSTREAM_BUCKETS,
)
COOLDOWN: Final = Gauge(
    "imagegate_deployment_cooldown",
    "Seconds of the cooldown a deployment's open circuit breaker sits out; 0 when healthy",
    ["deployment"],
    multiprocess_mode="livemax",
)

MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)
_children: dict[tuple[object, ...], object] = {}


def _child(metric: MetricT, *labels: str) -> MetricT:
    """``metric.labels(*labels)``, cached: every label value comes from the catalogue, the
    route table or a fixed set, so the cache stays as small as the series themselves."""
    key = (id(metric), *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found  # type: ignore[return-value]


def request(route: str, status: int, seconds: float) -> None:
    """One answered request (``route``: the template, e.g. ``/v1/assets/{asset_id}``)."""
    _child(REQUESTS, route, str(status)).inc()
    _child(REQUEST_SECONDS, route).observe(seconds)


def outcome_of(error: BaseException | None) -> str:
    """The ``outcome`` label of an upstream call that raised ``error`` (``None``: it worked)."""
    if error is None:
        return "ok"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    if isinstance(error, UpstreamError):
        return "error"
    if isinstance(error, ClientError):
        return "client_error"
    return "abandoned"


def upstream(provider: str, deployment: str, outcome: str, seconds: float) -> None:
    """One call to an upstream deployment and how it ended."""
    _child(UPSTREAM, provider, deployment, outcome).inc()
    _child(UPSTREAM_SECONDS, provider).observe(seconds)


def images(model: str, provider: str, count: int) -> None:
    if count:
        _child(IMAGES, model, provider).inc(count)


def cost(model: str | None, amount: Decimal) -> None:
    if amount > 0:
        _child(COST, model or "").inc(float(amount))


def cooldown(deployment: str, seconds: float) -> None:
    """A deployment's breaker opened for ``seconds`` (0: it closed again)."""
    _child(COOLDOWN, deployment).set(seconds)

"""The router: retries, failover, cooldown and recovery, caps, deadlines, fan-out, tasks."""

from __future__ import annotations

import asyncio
import io
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from PIL import Image

from imagegate.core.catalog import CatalogEntry, DeploymentSpec, ModelSpec
from imagegate.core.requests import GeneratedImage, ImageRequest, ImageResult, PartialImage, Usage
from imagegate.core.routing import Router, RouterSettings
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import (
    InvalidRequest,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from imagegate.providers.downloads import ResultDownloader
from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.registry import ProviderRegistry
from tests.providers.upstream_kit import request

PNG = image_bytes(32, 32)


class Clock:
    """Monotonic time the test moves: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Scripted:
    """An adapter that plays outcomes: an exception to raise, ``"ok"``, ``"empty"``, or an
    ``asyncio.Event`` to wait for before succeeding."""

    def __init__(self, *outcomes: Any, per_call: int = 10) -> None:
        self.name = "scripted"
        self.outcomes: deque[Any] = deque(outcomes)
        self.calls: list[ImageRequest] = []
        self.per_call = per_call

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return True

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return self.per_call

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return ["style"] if request.style else []

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        self.calls.append(request)
        outcome = self.outcomes.popleft() if self.outcomes else "ok"
        if isinstance(outcome, asyncio.Event):
            await outcome.wait()
        elif isinstance(outcome, BaseException):
            raise outcome
        if outcome == "empty":
            return ImageResult(images=[])
        image = GeneratedImage(PNG, "png", 0, 0)
        return ImageResult(images=[image] * request.n, usage=Usage(1, 0, 10, 0))

    async def stream(self, request: ImageRequest, ctx: ProviderContext) -> AsyncIterator[Any]:
        result = await self.generate(request, ctx)
        yield PartialImage(result.images[0], 0, 0)
        yield result


def entry(*deployments: dict[str, Any]) -> CatalogEntry:
    specs = [DeploymentSpec.model_validate({"model": "m", **d}) for d in deployments]
    spec = ModelSpec.model_validate(
        {
            "id": "test-model",
            "name": "Test",
            "provider": "Test",
            "provider_code": "test",
            "created": 0,
            "features": ["text-to-image"],
            "deployments": [d.model_dump() for d in specs],
        }
    )
    return CatalogEntry(spec, specs)


def router(clock: Clock, adapters: dict[str, Any], **settings: Any) -> Router:
    registry = ProviderRegistry({name: (lambda a=a: a) for name, a in adapters.items()})  # type: ignore[misc]
    defaults: dict[str, Any] = {"backoff_base": 0.5, "backoff_max": 4, "cooldown": 10}
    return Router(
        registry,
        None,
        downloader=ResultDownloader(None),
        settings=RouterSettings(**{**defaults, **settings}),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_5xx_twice_then_200_is_one_result_after_three_calls(clock: Clock) -> None:
    upstream = Scripted(UpstreamError("boom"), UpstreamError("boom"), "ok")
    result = await router(clock, {"a": upstream}).generate(entry({"provider": "a"}), request(), "r")
    assert len(upstream.calls) == 3 and len(result.images) == 1
    assert len(clock.slept) == 2 and 0.25 <= clock.slept[0] <= 0.5 and 0.5 <= clock.slept[1] <= 1


async def test_three_failures_are_the_last_error_and_then_the_model_cools_down(
    clock: Clock,
) -> None:
    upstream = Scripted(*[UpstreamError("boom")] * 3)
    route = router(clock, {"a": upstream})
    model = entry({"provider": "a"})
    with pytest.raises(UpstreamError) as first:
        await route.generate(model, request(), "r")
    assert first.value.status == 502 and len(upstream.calls) == 3
    with pytest.raises(Unavailable) as second:  # the breaker is open: nothing is called
        await route.generate(model, request(), "r")
    assert second.value.status == 503 and second.value.retry_after == pytest.approx(10, abs=1)
    assert len(upstream.calls) == 3


async def test_recovery_probe_closes_the_breaker_or_doubles_the_cooldown(clock: Clock) -> None:
    upstream = Scripted(*[UpstreamError("boom")] * 3, UpstreamError("still"), "ok")
    route = router(clock, {"a": upstream}, max_attempts=1)
    model = entry({"provider": "a"})
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await route.generate(model, request(), "r")
    breaker = route.deployments(model)[0].breaker
    assert breaker.state(clock.now) == "open"
    clock.now += 10.1
    assert breaker.state(clock.now) == "half-open"
    with pytest.raises(UpstreamError):  # the probe fails: open again, for twice as long
        await route.generate(model, request(), "r")
    assert breaker.open_until - clock.now == pytest.approx(20)
    clock.now += 20.1
    gate = asyncio.Event()
    upstream.outcomes.appendleft(gate)
    probe = asyncio.create_task(route.generate(model, request(), "r"))
    await asyncio.sleep(0.01)
    assert breaker.probing and not breaker.ready(clock.now)  # only one probe at a time
    gate.set()
    assert len((await probe).images) == 1
    assert breaker.state(clock.now) == "closed" and breaker.failures == 0


async def test_a_429_fails_over_at_once_and_the_limited_one_is_skipped(clock: Clock) -> None:
    first, second = Scripted(RateLimited("slow down", retry_after=30)), Scripted()
    route = router(clock, {"a": first, "b": second})
    model = entry({"provider": "a", "priority": 1}, {"provider": "b"})
    assert len((await route.generate(model, request(), "r")).images) == 1
    assert clock.slept == [] and len(first.calls) == len(second.calls) == 1
    await route.generate(model, request(), "r")
    assert len(first.calls) == 1 and len(second.calls) == 2
    clock.now += 31
    await route.generate(model, request(), "r")
    assert len(first.calls) == 2  # back to the preferred deployment once the hint has passed


async def test_a_short_429_is_waited_out_when_there_is_no_other(clock: Clock) -> None:
    upstream = Scripted(RateLimited("slow down", retry_after=2), "ok")
    result = await router(clock, {"a": upstream}).generate(entry({"provider": "a"}), request(), "r")
    assert len(result.images) == 1 and sum(clock.slept) >= 2


async def test_a_long_429_is_passed_on_with_its_hint(clock: Clock) -> None:
    upstream = Scripted(RateLimited("slow down", retry_after=120))
    with pytest.raises(RateLimited) as caught:
        await router(clock, {"a": upstream}).generate(entry({"provider": "a"}), request(), "r")
    assert caught.value.status == 429 and caught.value.retry_after == 120
    assert len(upstream.calls) == 1


async def test_every_deployment_unreachable_is_503_with_retry_after(clock: Clock) -> None:
    down = Unavailable("cannot connect", code="upstream_unreachable")
    a, b = Scripted(down, down, down), Scripted(down, down, down)
    route = router(clock, {"a": a, "b": b}, failure_threshold=1)
    with pytest.raises(Unavailable) as caught:
        await route.generate(entry({"provider": "a"}, {"provider": "b"}), request(), "r")
    assert caught.value.status == 503 and caught.value.code == "no_healthy_deployment"
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert len(a.calls) + len(b.calls) == 2  # both broke at once; no waiting out cooldowns


async def test_client_errors_are_never_retried(clock: Clock) -> None:
    a, b = Scripted(InvalidRequest("bad size", param="size")), Scripted()
    with pytest.raises(InvalidRequest):
        await router(clock, {"a": a, "b": b}).generate(
            entry({"provider": "a", "priority": 1}, {"provider": "b"}), request(), "r"
        )
    assert len(a.calls) == 1 and b.calls == []


async def test_rejected_credentials_fail_over_and_stay_away(clock: Clock) -> None:
    a, b = Scripted(UpstreamRejected("bad key", code="upstream_authentication_failed")), Scripted()
    route = router(clock, {"a": a, "b": b})
    model = entry({"provider": "a", "priority": 1}, {"provider": "b"})
    await route.generate(model, request(), "r")
    clock.now += 60
    await route.generate(model, request(), "r")
    assert len(a.calls) == 1 and len(b.calls) == 2


async def test_weights_share_one_priority(clock: Clock) -> None:
    a, b = Scripted(), Scripted()
    route = router(clock, {"a": a, "b": b})
    model = entry({"provider": "a", "weight": 3}, {"provider": "b", "weight": 1})
    for _ in range(200):
        await route.generate(model, request(), "r")
    assert 120 < len(a.calls) < 180 and len(a.calls) + len(b.calls) == 200


async def test_a_full_deployment_sends_work_to_one_with_room(clock: Clock) -> None:
    gate = asyncio.Event()
    a, b = Scripted(gate), Scripted()
    route = router(clock, {"a": a, "b": b})
    model = entry({"provider": "a", "priority": 1, "max_concurrency": 1}, {"provider": "b"})
    held = asyncio.create_task(route.generate(model, request(), "r"))
    await asyncio.sleep(0.01)
    await route.generate(model, request(), "r")
    assert len(b.calls) == 1
    gate.set()
    await held
    assert len(a.calls) == 1


async def test_rpm_limits_calls_per_minute(clock: Clock) -> None:
    a, b = Scripted(), Scripted()
    route = router(clock, {"a": a, "b": b})
    model = entry({"provider": "a", "priority": 1, "rpm": 2}, {"provider": "b"})
    for _ in range(3):
        await route.generate(model, request(), "r")
    assert (len(a.calls), len(b.calls)) == (2, 1)


async def test_the_deployment_timeout_is_a_504(clock: Clock) -> None:
    hang = asyncio.Event()
    upstream = Scripted(hang, hang, hang)
    route = router(clock, {"a": upstream}, max_attempts=1)
    with pytest.raises(UpstreamTimeout) as caught:
        await route.generate(entry({"provider": "a", "timeout": 0.05}), request(), "r")
    assert caught.value.status == 504


async def test_n_is_fanned_out_and_partial_delivery_is_kept(clock: Clock) -> None:
    upstream = Scripted("ok", UpstreamError("boom"), "ok", per_call=1)
    route = router(clock, {"a": upstream}, failure_threshold=10, max_attempts=1)
    result = await route.generate(entry({"provider": "a"}), request(n=3), "r")
    assert [r.n for r in upstream.calls] == [1] * len(upstream.calls)
    assert len(result.images) == 2  # one part failed; the others are delivered
    assert result.usage is not None and result.usage.output_image_tokens == 20


async def test_no_image_is_retried_and_formats_are_converted(clock: Clock) -> None:
    upstream = Scripted("empty", "ok")
    route = router(clock, {"a": upstream})
    result = await route.generate(entry({"provider": "a"}), request(output_format="jpeg"), "r")
    assert len(upstream.calls) == 2
    image = result.images[0]
    assert (image.output_format, image.width, image.height) == ("jpeg", 32, 32)
    assert Image.open(io.BytesIO(image.data)).format == "JPEG"


async def test_dropped_params_come_from_the_preferred_deployment(clock: Clock) -> None:
    route = router(clock, {"a": Scripted()})
    assert route.dropped_params(entry({"provider": "a"}), request(style="vivid")) == ["style"]


class Task:
    """A task upstream: ``pending`` polls, then the result; records cancels."""

    name = "task"

    def __init__(self, pending: int = 2, hang: bool = False) -> None:
        self.pending = pending
        self.hang = hang
        self.polls = 0
        self.cancelled: list[str] = []

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return True

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        return UpstreamJob("job-1", poll_after=0.5)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        self.polls += 1
        if self.hang:
            await asyncio.sleep(10)
        if self.polls <= self.pending:
            if self.polls == 1:
                raise UpstreamError("blip", code="upstream_connection_error")
            return JobStatus(progress=50, poll_after=1.0)
        return JobStatus(result=ImageResult(images=[GeneratedImage(PNG, "png", 0, 0)]))

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        self.cancelled.append(job.id)


async def test_task_upstreams_are_polled_through_transient_errors(clock: Clock) -> None:
    upstream = Task(pending=3)
    result = await router(clock, {"t": upstream}).generate(entry({"provider": "t"}), request(), "r")
    assert len(result.images) == 1 and upstream.polls == 4
    assert clock.slept[0] == 0.5


async def test_an_abandoned_task_is_cancelled_upstream(clock: Clock) -> None:
    upstream = Task(hang=True)
    route = router(clock, {"t": upstream}, max_attempts=1)
    with pytest.raises(UpstreamTimeout):
        await route.generate(entry({"provider": "t", "timeout": 0.05}), request(), "r")
    await asyncio.sleep(0.01)
    assert upstream.cancelled == ["job-1"]


async def test_a_stream_fails_over_before_its_first_event(clock: Clock) -> None:
    a, b = Scripted(UpstreamError("boom")), Scripted()
    route = router(clock, {"a": a, "b": b})
    model = entry({"provider": "a", "priority": 1}, {"provider": "b"})
    events = [event async for event in route.stream(model, request(), "r")]
    assert [type(e).__name__ for e in events] == ["PartialImage", "ImageResult"]
    assert len(a.calls) == len(b.calls) == 1


async def test_context_for_a_relay_skips_cooling_deployments(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_URL", "http://relay.internal:8080")
    monkeypatch.setenv("RELAY_KEY", "relay-secret")
    a, b = Scripted(), Scripted()
    route = router(clock, {"a": a, "b": b})
    model = entry(
        {"provider": "a", "priority": 1},
        {"provider": "b", "base_url_env": "RELAY_URL", "credentials": {"api_key": ["RELAY_KEY"]}},
    )
    route.deployments(model)[0].breaker.reject(clock.now)
    dep, ctx = route.context_for(model, "req-1")
    assert dep.name == "scripted" and dep.index == 1
    assert ctx.base_url == "http://relay.internal:8080" and ctx.credentials == {
        "api_key": "relay-secret"
    }
    assert ctx.request_id == "req-1" and ctx.deadline is not None and ctx.fetch is not None

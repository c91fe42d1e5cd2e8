"""OpenTelemetry spans: off unless asked for; then one per request, upstream call and poll,
storage write and webhook delivery, all in the caller's trace; the trace id in the access log."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from imagegate.core.webhooks import WebhookSender
from imagegate.observability import tracing
from imagegate.outbound import OutboundGuard
from imagegate.storage import db
from imagegate.storage.group_commit import Batch
from imagegate.storage.repositories.webhook_deliveries import SqlWebhookDeliveryRepository
from imagegate.storage.repositories.webhooks import SqlWebhookOutbox
from tests.conftest import Gateway
from tests.core.test_routing import Clock, Scripted, Task, entry, router
from tests.providers.upstream_kit import request
from tests.receiver import receiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure({}, exporter=exporter)
    yield exporter
    tracing.shutdown()


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "gw"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_traces_are_off_unless_the_standard_variables_ask(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing.wanted(environ) is on


def test_the_otlp_exporter_starts_from_the_environment() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_SCHEDULE_DELAY": "1"}
    try:
        assert tracing.configure(environ)
        assert tracing.active()
    finally:
        tracing.shutdown()
    assert not tracing.active()
    assert tracing.start_request({"headers": [], "method": "GET", "path": "/"}) is None


async def test_a_request_is_a_server_span_in_the_callers_trace_with_its_children(
    spans: InMemorySpanExporter, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imagegate.access")
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "sketch", "prompt": "a red house", "size": "256x256"},
        headers={**gateway.auth, "traceparent": TRACEPARENT},
    )
    assert response.status_code == 200

    (server,) = named(spans, "POST /v1/images/generations")
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 200
    (call,) = named(spans, "upstream.call")
    assert call.parent is not None and call.parent.span_id == server.context.span_id
    assert call.attributes is not None and call.attributes["imagegate.provider"] == "local"
    assert call.attributes["imagegate.outcome"] == "ok"
    (write,) = named(spans, "storage.write")
    assert write.context.trace_id == server.context.trace_id

    line = orjson.loads([r.getMessage() for r in caplog.records][-1])
    assert line["trace_id"] == TRACE_ID
    everything = str([(s.name, s.attributes) for s in spans.get_finished_spans()])
    assert gateway.key not in everything and response.json()["data"][0]["b64_json"][:40] not in (
        everything
    )


async def test_untraced_requests_log_no_trace_id(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imagegate.access")
    assert (await gateway.client.get("/healthz")).status_code == 200
    line = orjson.loads([r.getMessage() for r in caplog.records][-1])
    assert "trace_id" not in line and line["status"] == 200


async def test_a_failed_upstream_call_is_a_failed_span(spans: InMemorySpanExporter) -> None:
    from imagegate.errors import UpstreamError

    clock = Clock()
    route = router(clock, {"a": Scripted(UpstreamError("boom"), "ok")})
    await route.generate(entry({"provider": "a"}), request(), "r")
    first, second = named(spans, "upstream.call")
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes is not None and first.attributes["imagegate.outcome"] == "error"
    assert second.attributes is not None and second.attributes["imagegate.outcome"] == "ok"


async def test_task_upstreams_have_a_span_per_submit_and_poll(
    spans: InMemorySpanExporter,
) -> None:
    upstream = Task(pending=2)
    await router(Clock(), {"t": upstream}).generate(entry({"provider": "t"}), request(), "r")
    (call,) = named(spans, "upstream.call")
    polls = named(spans, "upstream.poll")
    assert len(named(spans, "upstream.submit")) == 1 and len(polls) == upstream.polls == 3
    assert all(p.parent is not None and p.parent.span_id == call.context.span_id for p in polls)
    assert polls[0].status.status_code is StatusCode.ERROR  # the transient blip


async def test_each_webhook_delivery_is_a_span(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await db.upgrade(engine)
    async with httpx.AsyncClient(trust_env=False) as http:
        deliveries = SqlWebhookDeliveryRepository(engine)
        sender = WebhookSender(deliveries, http, OutboundGuard(["127.0.0.1/32"]), b"s" * 32)
        async with receiver([503]) as box:
            async with engine.begin() as conn:
                message = await SqlWebhookOutbox().enqueue(
                    Batch(conn), url=box.url, secret=None, payload={}, task_id=None, now=time.time()
                )
            await sender.deliver_due()
            await sender.deliver_due(now=time.time() + 3600)
    await engine.dispose()
    tries = named(spans, "webhook.deliver")
    assert [(s.attributes or {}).get("http.response.status_code") for s in tries] == [503, 200]
    assert all((s.attributes or {})["imagegate.webhook_id"] == message for s in tries)


def test_without_the_otel_extra_the_gateway_runs_untraced_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    assert not tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert not tracing.active()
    assert "imagegate[otel] is not installed" in caplog.text

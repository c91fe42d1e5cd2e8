"""OpenTelemetry spans: off by default, on with the standard ``OTEL_*`` variables.

Tracing starts when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or,
without it, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set; ``OTEL_SDK_DISABLED=true`` keeps it off. Everything else is the SDK's own reading of the
standard variables (service name and resource attributes, sampler, batch sizes, the OTLP
endpoint, headers and timeout). It needs the ``imagegate[otel]`` extra; without it a warning
says so and the gateway runs untraced.

The gateway keeps its own tracer provider (never the process-global one), so one process can
start and stop tracing more than once (tests do). Off, every helper here is a dict-free
``None`` check: nothing is allocated per request.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("imagegate")

__all__ = [
    "ClientSpan",
    "RequestSpan",
    "active",
    "client_span",
    "configure",
    "shutdown",
    "span",
    "start_request",
    "wanted",
]

_tracer: Tracer | None = None
_provider: TracerProvider | None = None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(
    environ: Mapping[str, str] | None = None, *, exporter: SpanExporter | None = None
) -> bool:
    """Start tracing when ``environ`` (default: the process's) asks for it, or always with
    ``exporter`` (spans exported as they end: how tests read them). Returns whether on."""
    environ = os.environ if environ is None else environ
    if exporter is None and not wanted(environ):
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables ask for traces but imagegate[otel] is not installed")
        return False
    from imagegate import __version__

    resource = Resource.create({"service.name": "imagegate", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for processor in _processors(environ):
            provider.add_span_processor(processor)
    shutdown()
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer("imagegate", __version__)
    return True


def _processors(environ: Mapping[str, str]) -> Iterator[Any]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    names = environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")
    for name in (n.strip() for n in names):
        if name == "otlp":
            protocol = environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            yield BatchSpanProcessor(OTLPSpanExporter())
        elif name == "console":
            yield BatchSpanProcessor(ConsoleSpanExporter())
        elif name and name != "none":
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored", name)


def shutdown() -> None:
    """Flush and stop (a no-op when tracing is off)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def active() -> bool:
    return _tracer is not None


@contextlib.contextmanager
def _span(tracer: Tracer, name: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
    with tracer.start_as_current_span(name, attributes=dict(attributes)) as current:
        yield current


_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Span | None]:
    """A child of the current span (``None`` inside when tracing is off). An exception that
    leaves the block is recorded on the span and marks it failed."""
    tracer = _tracer
    if tracer is None:
        return _OFF
    return _span(tracer, name, attributes)


class RequestSpan:
    """The server span of one HTTP request, current while the request is handled."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    @property
    def trace_id(self) -> str:
        return format(self._span.get_span_context().trace_id, "032x")

    def finish(self, method: str, route: str, status: int) -> None:
        from opentelemetry import context
        from opentelemetry.trace import StatusCode

        self._span.update_name(f"{method} {route}")
        self._span.set_attribute("http.route", route)
        self._span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self._span.set_status(StatusCode.ERROR)
        self._span.end()
        context.detach(self._token)  # type: ignore[arg-type]


class ClientSpan:
    """A span around one outbound call, ended with how the call went."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object | None) -> None:
        self._span = span
        self._token = token

    def end(self, outcome: str, error: BaseException | None) -> None:
        from opentelemetry import context
        from opentelemetry.trace import StatusCode

        self._span.set_attribute("imagegate.outcome", outcome)
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(StatusCode.ERROR, type(error).__name__)
        self._span.end()
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]


def client_span(name: str, attributes: Mapping[str, Any], *, current: bool) -> ClientSpan | None:
    """A client span child of the current one (``current``: it becomes the current span until
    it ends, in this same task); ``None`` when tracing is off."""
    tracer = _tracer
    if tracer is None:
        return None
    from opentelemetry import context, trace

    started = tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=dict(attributes))
    token = context.attach(trace.set_span_in_context(started)) if current else None
    return ClientSpan(started, token)


def start_request(scope: Mapping[str, Any]) -> RequestSpan | None:
    """A server span for the ASGI request ``scope``, continuing the caller's trace when it
    sent a W3C ``traceparent``; ``None`` when tracing is off."""
    tracer = _tracer
    if tracer is None:
        return None
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in (b"traceparent", b"tracestate")
    }
    parent: Context | None = TraceContextTextMapPropagator().extract(carrier) if carrier else None
    method = scope["method"]
    server = tracer.start_span(
        method,
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": scope["path"]},
    )
    token = context.attach(trace.set_span_in_context(server, parent))
    return RequestSpan(server, token)

"""What an operator watches: Prometheus metrics and OpenTelemetry traces.

Boundary: this package records and exposes; it decides nothing. Request handling, routing,
tasks, storage and webhooks call its small recording functions (cheap, never raising into the
caller); :mod:`.exposition` renders ``GET /metrics`` (per-process series collected across
``--workers`` processes in Prometheus multiprocess mode, fleet-wide queue figures read from the
database at scrape time); :mod:`.tracing` makes spans only when the standard ``OTEL_*``
variables ask for them and the ``imagegate[otel]`` extra is installed.
"""

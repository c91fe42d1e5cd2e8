"""``GET /metrics``'s body: this process's series (or every worker's) plus fleet-wide figures.

The task queue and pending webhooks live in the shared database, so they are read from it at
scrape time (:mod:`imagegate.storage.fleet`) rather than counted in memory: every replica reports
the same fleet-wide value (aggregate them with ``max``, not ``sum``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "FleetFigures", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class FleetFigures:
    """What the shared database says about the whole fleet's backlog."""

    tasks: dict[str, int] = field(default_factory=dict)
    oldest_queued_age: float = 0.0
    webhooks_pending: int = 0


class _Fleet(Collector):
    def __init__(self, figures: FleetFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterable[Metric]:
        states = GaugeMetricFamily(
            "imagegate_tasks", "Unfinished tasks in the fleet, by state", labels=["state"]
        )
        for state, count in sorted(self.figures.tasks.items()):
            states.add_metric([state], count)
        yield states
        yield GaugeMetricFamily(
            "imagegate_task_queue_age_seconds",
            "Age of the oldest task waiting for a worker (0 when none waits)",
            value=self.figures.oldest_queued_age,
        )
        yield GaugeMetricFamily(
            "imagegate_webhooks_pending",
            "Webhook deliveries waiting for their first try or a retry",
            value=self.figures.webhooks_pending,
        )


_multiprocess: CollectorRegistry | None = None


def _process_registry() -> CollectorRegistry:
    """Every worker's series under ``--workers N``; this process's own otherwise."""
    global _multiprocess
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    if _multiprocess is None:
        _multiprocess = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(_multiprocess)  # type: ignore[no-untyped-call]
    return _multiprocess


def render(figures: FleetFigures | None) -> bytes:
    """The exposition text: the process (or workers') series, then the fleet's figures
    (``None``: the database could not say; they are left out rather than reported as 0)."""
    text = generate_latest(_process_registry())
    if figures is None:
        return text
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(_Fleet(figures))
    return text + generate_latest(fleet)

"""One upstream call, measured: its outcome and duration as metrics and, when tracing is on,
a client span (``upstream.call``) that the task runner's submit and polls nest under."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Protocol

from imagegate.observability import metrics, tracing


class Called(Protocol):
    """What is known about the deployment being called (a router ``Deployment``)."""

    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def model_id(self) -> str: ...


class observed_call:  # noqa: N801 - used like a function: ``async with observed_call(dep):``
    """Times the block; its exception (or none) is the call's outcome. ``current``: whether
    the span is the current one inside the block (not across an async generator's yields,
    where the consumer's code would run inside it)."""

    __slots__ = ("_current", "_dep", "_span", "_started")

    def __init__(self, dep: Called, *, current: bool = True) -> None:
        self._dep = dep
        self._current = current
        self._span: Any = None
        self._started = 0.0

    async def __aenter__(self) -> None:
        if tracing.active():
            attributes = {
                "imagegate.provider": self._dep.name,
                "imagegate.deployment": self._dep.key,
                "imagegate.model": self._dep.model_id,
            }
            self._span = tracing.client_span("upstream.call", attributes, current=self._current)
        self._started = time.perf_counter()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outcome = metrics.outcome_of(error)
        metrics.upstream(
            self._dep.name, self._dep.key, outcome, time.perf_counter() - self._started
        )
        if self._span is not None:
            self._span.end(outcome, error)

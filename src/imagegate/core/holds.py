"""A quote held for one request, and the one rule for a request refused after its quote was
held: the hold is given back, once, and one usage row says why.

A hold ends in exactly one way, and whatever comes after its end does nothing:

- handed over (:meth:`Hold.handed_over`): a delivery settles it, or a task takes it over (and
  settles or releases it when the task ends);
- refused (:meth:`Hold.refuse`, or the block of :meth:`Hold.handed_over` raising): given back,
  with the refusal's usage row;
- given back quietly (:meth:`Hold.give_back`): nothing was refused (a Midjourney task parked
  for its modal holds again when it gets its input), or the request's refusal is recorded
  where it was raised (one of several requests of one call refused while preparing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

from imagegate.core.billing import Reservation
from imagegate.core.usage import UsageRow
from imagegate.errors import ImagegateError, ServerError

log = logging.getLogger("imagegate.holds")

Release = Callable[[Reservation], Awaitable[bool]]
"""Gives a reservation back (``Billing.release``)."""
Record = Callable[[UsageRow], None]
"""Queues a usage row (``UsageRecorder.record``)."""


class Hold:
    """A reservation that gives itself back at most once."""

    def __init__(
        self,
        reservation: Reservation,
        *,
        release: Release,
        record: Record,
        row: UsageRow,
        started: float,
    ) -> None:
        """``row``: the usage row of a refusal, but for its status, latency and error code;
        ``started``: when the request began (``time.perf_counter()``)."""
        self.reservation = reservation
        self._release = release
        self._record = record
        self._row = row
        self._started = started
        self._open = True

    @property
    def open(self) -> bool:
        """Whether the hold has not ended yet."""
        return self._open

    @asynccontextmanager
    async def handed_over(self) -> AsyncIterator[str]:
        """The reservation's id, for whatever takes the hold over inside the block (a task, a
        delivery); the hold ends handed over when the block ends, refused if it raises."""
        try:
            yield self.reservation.id
        except BaseException as exc:
            await self.refuse(exc)
            raise
        self._open = False

    async def refuse(self, exc: BaseException) -> None:
        """Give the hold back and record one usage row for ``exc`` (an error that is not the
        domain's is logged, and recorded as a 500)."""
        if not self._end():
            return
        await asyncio.shield(self._release(self.reservation))
        error = exc if isinstance(exc, ImagegateError) else ServerError("internal error")
        if isinstance(exc, Exception) and not isinstance(exc, ImagegateError):
            log.error("request %s failed", self._row.request_id, exc_info=exc)
        self._record(
            replace(
                self._row,
                status=error.status,
                latency_ms=ms_since(self._started),
                error_code=error.code or error.type,
            )
        )

    async def give_back(self) -> None:
        """Give the hold back without recording a refusal."""
        if self._end():
            await asyncio.shield(self._release(self.reservation))

    def _end(self) -> bool:
        """End the hold; whether it was still open."""
        was_open, self._open = self._open, False
        return was_open


def ms_since(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter()``), as usage rows keep them."""
    return round((time.perf_counter() - started) * 1000, 3)

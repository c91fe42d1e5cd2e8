"""The usage page: spend and images per day as a chart drawn server-side (inline SVG, no
script), totals by model and key, and the CSV download of the rows behind them."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from imagegate.core.console_views import Totals
from imagegate.core.usage_report import UsageFilter, to_csv
from imagegate.fronts.console.render import html, signed_in
from imagegate.fronts.console.security import SECURITY_HEADERS, Viewer
from imagegate.fronts.console.state import console_state
from imagegate.fronts.http.deps import services_of

router = APIRouter(include_in_schema=False)
PERIODS = (7, 30, 90)
CSV_ROWS = 100_000
WIDTH, HEIGHT, PAD = 720, 220, 36


def _days(request: Request) -> int:
    asked = request.query_params.get("days", "30")
    return int(asked) if asked.isdigit() and int(asked) in PERIODS else 30


def _since(days: int) -> float:
    return time.time() - days * 86400


def _filter(viewer: Viewer, days: int) -> UsageFilter:
    """A client key sees its own usage; an admin key sees every key's."""
    return UsageFilter(start=_since(days), key_id=None if viewer.key.is_admin else viewer.key.id)


def _series(by_day: dict[str, Totals], days: int) -> list[tuple[str, float, int]]:
    """(day, spend, images) for every day of the period, zero where nothing happened."""
    today = dt.datetime.now(dt.UTC).date()
    series = []
    for back in range(days - 1, -1, -1):
        day = (today - dt.timedelta(days=back)).isoformat()
        found = by_day.get(day, Totals())
        series.append((day, float(found.cost_usd), found.images))
    return series


@dataclass(frozen=True, slots=True)
class Bar:
    day: str
    spend: float
    images: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    """Geometry of the usage chart (``_chart.html`` draws it as inline SVG)."""

    width: int
    height: int
    pad: int
    bars: list[Bar]
    points: str
    top_spend: float
    top_images: int
    first: str
    last: str


def chart(series: list[tuple[str, float, int]]) -> Chart:
    """Bars of spend per day and a line of images per day, each on its own scale."""
    top_spend = max((spend for _d, spend, _i in series), default=0) or 1.0
    top_images = max((images for _d, _s, images in series), default=0) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(1, len(series))
    bars, points = [], []
    for i, (day, spend, images) in enumerate(series):
        x = PAD + i * step
        h = inner_h * spend / top_spend
        bars.append(
            Bar(day, spend, images, round(x + step * 0.15, 1), round(PAD + inner_h - h, 1),
                round(step * 0.7, 1), round(h, 1))
        )  # fmt: skip
        points.append(f"{x + step / 2:.1f},{PAD + inner_h - inner_h * images / top_images:.1f}")
    first, last = (series[0][0], series[-1][0]) if series else ("", "")
    return Chart(WIDTH, HEIGHT, PAD, bars, " ".join(points), top_spend, top_images, first, last)


async def usage(request: Request, viewer: Viewer) -> Response:
    days = _days(request)
    services = services_of(request)
    await services.usage.flush()  # this process's latest rows first
    where = _filter(viewer, days)
    summary = await console_state(request).views.usage_summary(_since(days), where.key_id)
    by_model = sorted(summary.by_model.items(), key=lambda item: -item[1].cost_usd)
    by_key = sorted(summary.by_key.items(), key=lambda item: -item[1].cost_usd)
    return html(
        request,
        "usage.html",
        viewer,
        days=days,
        periods=PERIODS,
        chart=chart(_series(summary.by_day, days)),
        totals=summary.totals,
        by_model=by_model,
        by_key=by_key,
    )


async def usage_csv(request: Request, viewer: Viewer) -> Response:
    days = _days(request)
    services = services_of(request)
    await services.usage.flush()
    rows = await services.usage_report.rows(_filter(viewer, days), CSV_ROWS)
    headers = {
        **SECURITY_HEADERS,
        "content-disposition": f'attachment; filename="imagegate-usage-{days}d.csv"',
    }
    return Response(to_csv(rows), media_type="text/csv", headers=headers)


router.add_api_route("/console/usage", signed_in(usage), methods=["GET"])
router.add_api_route("/console/usage.csv", signed_in(usage_csv), methods=["GET"])

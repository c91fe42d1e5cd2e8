"""``DirectRoutes``: hot routes answered before FastAPI's router, a few per loop iteration."""

from __future__ import annotations

import asyncio

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.fronts.http.direct import DirectRoutes
from imagegate.pacing import Pacer
from tests.test_pacing import iteration_counter


async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("fallback")(scope, receive, send)


def render(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ImagegateError)
    return PlainTextResponse(exc.message, status_code=exc.status)


async def test_a_burst_of_requests_starts_a_few_per_iteration() -> None:
    now = iteration_counter()
    started: list[int] = []

    async def endpoint(_request: Request) -> Response:
        started.append(now())
        return PlainTextResponse("direct")

    app = DirectRoutes(
        fallback,
        routes={("POST", "/hot"): endpoint},
        on_error=render,
        handles=(ImagegateError,),
        pacer=Pacer(per_tick=2),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = await asyncio.gather(*(client.post("/hot") for _ in range(12)))
        other = await client.get("/hot")

    assert [a.text for a in answers] == ["direct"] * 12
    assert other.text == "fallback"  # another method: not a direct route
    assert max(started.count(iteration) for iteration in started) <= 2


async def test_handled_errors_are_rendered_and_others_propagate() -> None:
    async def refuses(_request: Request) -> Response:
        raise InvalidRequest("no")

    async def crashes(_request: Request) -> Response:
        raise RuntimeError("boom")

    app = DirectRoutes(
        fallback,
        routes={("POST", "/refuses"): refuses, ("POST", "/crashes"): crashes},
        on_error=render,
        handles=(ImagegateError,),
        pacer=Pacer(),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.post("/refuses")
        try:
            await client.post("/crashes")
        except RuntimeError as exc:
            crashed = str(exc)
    assert (refused.status_code, refused.text) == (400, "no")
    assert crashed == "boom"

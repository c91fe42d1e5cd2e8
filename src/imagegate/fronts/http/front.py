"""What one wire format adds to the gateway; the composition root (:mod:`imagegate.app`)
collects every front's registration and wires it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter

from imagegate.fronts.http.direct import Endpoint
from imagegate.fronts.http.errors import ErrorBody

if TYPE_CHECKING:
    from imagegate.services import Services


@dataclass(frozen=True, slots=True)
class Front:
    """One wire format's registration.

    ``routers``: its routes (also what OpenAPI shows); ``direct_routes``: the hot ones answered
    without FastAPI's router (see :mod:`imagegate.fronts.http.direct`); ``install``: called
    once the services exist and before the workers start (task kinds, webhook renderers);
    ``error_envelopes``: path prefixes whose errors this front renders in its own envelope;
    ``credential_headers``: headers besides ``Authorization`` that carry a key here."""

    name: str
    routers: tuple[APIRouter, ...]
    direct_routes: Mapping[tuple[str, str], Endpoint] = field(default_factory=dict)
    install: Callable[[Services], None] | None = None
    error_envelopes: tuple[tuple[str, ErrorBody], ...] = ()
    credential_headers: tuple[str, ...] = ()

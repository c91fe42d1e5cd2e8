"""Replicate's predictions API under ``/replicate/v1``: create (``Prefer: wait``), get, cancel,
webhooks."""

from imagegate.fronts.http.front import Front
from imagegate.fronts.replicate import routes

FRONT = Front(name="replicate", routers=(routes.router,), install=routes.install)

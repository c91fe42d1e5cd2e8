"""The console's long-lived parts, taken on first use from the gateway's services and kept on
the app: the session store and the read models."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from imagegate.core.console_sessions import SessionStore
from imagegate.core.console_views import ConsoleViews
from imagegate.fronts.http.deps import services_of

SIGN_IN_ATTEMPTS_PER_MINUTE = 10


@dataclass(frozen=True, slots=True)
class ConsoleState:
    sessions: SessionStore
    views: ConsoleViews


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState | None = getattr(request.app.state, "console", None)
    if state is None:
        services = services_of(request)
        state = ConsoleState(sessions=services.console_sessions, views=services.console_views)
        request.app.state.console = state
    return state

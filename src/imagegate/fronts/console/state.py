"""The console's long-lived parts, built on first use from the gateway's services and kept on
the app (they only hold references): the session store and the read models."""

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
        sessions = SessionStore(
            services.engine,
            idle_seconds=services.settings.console_idle_seconds,
            absolute_seconds=services.settings.console_session_seconds,
        )
        state = ConsoleState(sessions=sessions, views=ConsoleViews(services.engine))
        request.app.state.console = state
    return state

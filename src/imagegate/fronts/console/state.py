"""The console's long-lived parts, built on first use from the gateway's services and kept on
the app (they only hold references): the session store, the read models, the Midjourney
service the playground submits to."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from imagegate.core.console_sessions import SessionStore
from imagegate.core.console_views import ConsoleViews
from imagegate.core.midjourney.intake import Deps
from imagegate.core.midjourney.relay import MidjourneyRelay, default_model, relays
from imagegate.core.midjourney.service import MidjourneyService
from imagegate.fronts.common.tasks import input_loader
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


def midjourney_service(request: Request) -> MidjourneyService:
    """The app's one Midjourney service (the ``/mj`` front keeps it under the same name, so the
    queue limit and concurrency are counted once whichever front builds it first)."""
    service: MidjourneyService | None = getattr(request.app.state, "midjourney", None)
    if service is None:
        services = services_of(request)
        deps = Deps(
            images=services.images,
            assets=services.assets,
            tasks=services.tasks,
            billing=services.billing,
            inputs=input_loader(services),
            engine=services.engine,
        )
        model = services.settings.mj_model or default_model(deps)
        service = MidjourneyService(
            deps,
            model=model,
            queue_limit=services.settings.mj_queue_limit,
            concurrency=services.settings.task_concurrency,
            relay=MidjourneyRelay(deps, model) if relays(deps, model) else None,
        )
        request.app.state.midjourney = service
    return service

"""Black Forest Labs' Flux wire format: ``POST /flux/v1/{model}`` tasks polled at
``GET /flux/v1/get_result``; BFL's ``x-key`` header accepted."""

from imagegate.fronts.flux import routes
from imagegate.fronts.http.front import Front

FRONT = Front(
    name="flux",
    routers=(routes.router,),
    direct_routes=routes.DIRECT_ROUTES,
    install=routes.install,
    credential_headers=("x-key",),
)

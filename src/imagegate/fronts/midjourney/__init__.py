"""The Midjourney task API (``/mj/*`` and its speed prefixes): submits with business codes,
task objects, buttons, image links, ``notifyHook`` payloads; relayed 1:1 to a midjourney-proxy
relay when the model is served by one."""

from imagegate.fronts.http.front import Front
from imagegate.fronts.midjourney import routes
from imagegate.fronts.midjourney.errors import submit_error_body

FRONT = Front(
    name="midjourney",
    routers=(routes.router,),
    direct_routes=routes.DIRECT_ROUTES,
    install=routes.install,
    error_envelopes=tuple(
        (f"{prefix}/mj/submit/", submit_error_body) for prefix in routes.PREFIXES
    ),
    credential_headers=("mj-api-secret",),
)

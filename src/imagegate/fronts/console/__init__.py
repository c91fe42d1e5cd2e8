"""The web console (``/console``): server-rendered pages for people, on the same core
operations the API routes use — sign-in with an API key (a server-side session; the key never
reaches the page), the playground of every front, the model directory, the gallery, tasks,
usage and, for admin keys, keys and providers. Also ``/docs`` from local files and the
browser redirect of ``/``.

Its boundary: it reads and writes only through the core services (never the HTTP API), imports
no other front, and ships every template, style and script it serves (no CDN, no build step)."""

from imagegate.fronts.console import admin, browse, playground, sign_in, static_files, usage
from imagegate.fronts.http.front import Front

FRONT = Front(
    name="console",
    routers=(
        static_files.router,
        sign_in.router,
        playground.router,
        browse.router,
        usage.router,
        admin.router,
    ),
)

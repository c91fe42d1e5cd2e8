"""The AUTOMATIC1111 / Forge web UI API under ``/sdapi/v1`` (txt2img, img2img, the model list
and per-key checkpoint option, and the start-up lists tools read), with HTTP Basic auth and
FastAPI's ``{"detail": …}`` error shape, so Open WebUI, SillyTavern and other A1111 clients
reach every catalogue model by changing only the URL and the password."""

from imagegate.fronts.a1111 import routes
from imagegate.fronts.a1111.errors import a1111_error_body
from imagegate.fronts.http.front import Front

FRONT = Front(
    name="a1111", routers=(routes.router,), error_envelopes=(("/sdapi/", a1111_error_body),)
)

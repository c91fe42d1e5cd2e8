"""Replicate's predictions API under ``/replicate/v1``: create (by model or version, with
``Prefer: wait``), get, list, cancel, webhooks, the model object; errors as Replicate's
problem details."""

from imagegate.fronts.http.front import Front
from imagegate.fronts.replicate import routes
from imagegate.fronts.replicate.errors import replicate_error_body

FRONT = Front(
    name="replicate",
    routers=(routes.router,),
    install=routes.install,
    error_envelopes=(("/replicate/", replicate_error_body),),
)

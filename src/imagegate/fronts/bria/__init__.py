"""Bria's wire format: synchronous text-to-image/vector and asynchronous image-edit actions
polled at ``GET /bria/{request_id}``; Bria's ``api_token`` header accepted."""

from imagegate.fronts.bria import routes
from imagegate.fronts.http.front import Front

FRONT = Front(
    name="bria",
    routers=(routes.router,),
    credential_headers=("api_token",),
)

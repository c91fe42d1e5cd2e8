"""OpenAI's wire format: Images (generations, edits, variations; SSE streaming) and Files
(``/v1/files``), in OpenAI's error envelope."""

from imagegate.fronts.http.front import Front
from imagegate.fronts.openai import files, images

FRONT = Front(
    name="openai", routers=(images.router, files.router), direct_routes=images.DIRECT_ROUTES
)

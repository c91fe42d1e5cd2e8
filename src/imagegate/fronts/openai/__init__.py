"""OpenAI's wire format: Images (generations, edits, variations; SSE streaming; async image
tasks), images through Chat Completions (OpenRouter's shape) and Files (``/v1/files``), in
OpenAI's error envelope."""

from imagegate.fronts.http.front import Front
from imagegate.fronts.openai import chat, files, images, tasks

FRONT = Front(
    name="openai",
    routers=(images.router, tasks.router, chat.router, files.router),
    direct_routes=images.DIRECT_ROUTES,
    install=tasks.install,
)

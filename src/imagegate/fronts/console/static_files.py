"""The console's static files (its stylesheet and script, vendored Swagger UI) under content-
hashed names, so each can be cached for a year and a new release is fetched at once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console/static/"
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter(include_in_schema=False)


def _hashed(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    relative = path.relative_to(STATIC_DIR)
    return str(relative.with_name(f"{relative.stem}.{digest}{relative.suffix}"))


def _index() -> tuple[dict[str, str], dict[str, Path]]:
    urls: dict[str, str] = {}
    files: dict[str, Path] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in MEDIA_TYPES:
            hashed = _hashed(path)
            urls[str(path.relative_to(STATIC_DIR))] = PREFIX + hashed
            files[hashed] = path
    return urls, files


URLS, FILES = _index()
"""Logical name (``console.css``) → hashed URL; hashed name → file."""


def static_url(name: str) -> str:
    return URLS[name]


@router.get(PREFIX + "{name:path}")
async def static_file(name: str) -> Response:
    path = FILES.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    headers = {"cache-control": IMMUTABLE, "x-content-type-options": "nosniff"}
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for it on every page, the API's (an image link) included."""
    path = STATIC_DIR / "favicon.svg"
    headers = {"cache-control": "public, max-age=86400"}
    return FileResponse(path, media_type=MEDIA_TYPES[".svg"], headers=headers)

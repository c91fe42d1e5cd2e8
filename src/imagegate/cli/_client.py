"""What the client commands share: the gateway's address and key, HTTP calls that turn any
error answer into the server's own message and a non-zero exit, progress, saving images.

The client commands talk HTTP only (to this machine's ``imagegate serve`` or any other), so they
never touch the data directory.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import pybase64
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = [
    "BaseUrl",
    "Client",
    "Key",
    "die",
    "error_message",
    "output_paths",
    "spinner",
    "stderr",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"

BaseUrl = Annotated[
    str,
    typer.Option(
        "--base-url",
        envvar="IMAGEGATE_BASE_URL",
        help="The imagegate to talk to [env: IMAGEGATE_BASE_URL]",
    ),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="IMAGEGATE_KEY",
        help="An API key, e.g. the one `imagegate serve` printed [env: IMAGEGATE_KEY]",
        show_default=False,
    ),
]

stderr = Console(stderr=True)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg")
_MIME_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
}


def die(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def error_message(response: httpx.Response) -> str:
    """The server's own words for a failed answer, in any of imagegate's envelopes."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()[:500]
        return f"HTTP {response.status_code}: {text or response.reason_phrase}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"HTTP {response.status_code}: {error['message']}"
        for field in ("description", "detail", "message", "error"):
            if isinstance(body.get(field), str) and body[field]:
                return f"HTTP {response.status_code}: {body[field]}"
    return f"HTTP {response.status_code}: {str(body)[:500]}"


class Client:
    """An HTTP client for one gateway; every call either succeeds or ends the command."""

    def __init__(self, base_url: str, key: str | None, *, need_key: bool = True) -> None:
        if need_key and not key:
            die(
                "no API key: pass --key or `export IMAGEGATE_KEY=ig-…` "
                "(the admin key `imagegate serve` printed, or one from `imagegate keys create`)"
            )
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # Rendering and upstream models can take minutes; the server has its own deadline.
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=660)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            die(f"cannot reach imagegate at {self.base_url}: {exc} (is `imagegate serve` running?)")
        if response.status_code >= 400:
            die(error_message(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            die(f"{path} answered something that is not JSON: {response.text[:200]!r}")

    def download(self, url: str) -> httpx.Response:
        """A signed image link (absolute, or a path on this gateway)."""
        return self.request("GET", url)

    def cost(self, request_id: str, since: float) -> float | None:
        """What ``request_id`` (a request's id or a task's) was charged, from the usage log."""
        if not request_id:
            return None
        rows = self.json(
            "GET", "/api/usage", params={"start": str(int(since) - 5), "limit": 100_000}
        )["data"]
        found = [row for row in rows if row.get("request_id") == request_id]
        return sum(float(row["cost_usd"]) for row in found) if found else None


@contextlib.contextmanager
def spinner(what: str) -> Iterator[None]:
    """A spinner with elapsed time on stderr while something runs (none when not a terminal)."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        progress.add_task(what, total=None)
        yield


def print_cost(cost: float | None) -> None:
    typer.echo(f"cost: ${cost:.6f}" if cost is not None else "cost: not recorded yet")


def output_paths(out: Path, count: int, stem: str, suffix: str) -> list[Path]:
    """Where ``count`` images go: ``out`` itself when it names an image file (numbered when
    there are several), else files ``stem-1.png``… inside the directory ``out``."""
    if out.suffix.lower() in IMAGE_SUFFIXES:
        out.parent.mkdir(parents=True, exist_ok=True)
        if count == 1:
            return [out]
        return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]
    out.mkdir(parents=True, exist_ok=True)
    return [out / f"{stem}-{i}{suffix}" for i in range(1, count + 1)]


def save_openai_images(client: Client, body: dict[str, Any], out: Path, stem: str) -> list[Path]:
    """Write every image of an OpenAI Images answer (``b64_json`` or ``url``) under ``out``."""
    data = body.get("data") or []
    if not data:
        die("the answer has no images")
    suffix = "." + str(body.get("output_format") or "png").replace("jpeg", "jpg")
    contents: list[bytes] = []
    for item in data:
        if item.get("b64_json"):
            contents.append(pybase64.b64decode(item["b64_json"]))
        else:
            downloaded = client.download(item["url"])
            suffix = _MIME_SUFFIX.get(downloaded.headers.get("content-type", ""), suffix)
            contents.append(downloaded.content)
    paths = output_paths(out, len(contents), stem, suffix)
    for path, content in zip(paths, contents, strict=True):
        path.write_bytes(content)
        typer.echo(f"saved {path}")
    return paths


def slug(text: str, default: str = "image") -> str:
    """A short file-name stem from a prompt: ``a red fox!`` → ``a-red-fox``."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:6]
    return "-".join(words) or default


def now() -> float:
    return time.time()

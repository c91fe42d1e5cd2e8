"""``imagegate generate``, ``edit``, ``vary`` and ``estimate``: the OpenAI Images routes of any
imagegate, from the command line, with the images saved and their cost printed."""

from __future__ import annotations

import mimetypes
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from imagegate.cli._client import (
    BaseUrl,
    Client,
    Key,
    die,
    now,
    print_cost,
    save_openai_images,
    slug,
    spinner,
)

DEFAULT_URL = "http://127.0.0.1:8000"

Model = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="A catalogue id (see `imagegate models`); default: the server's"
    ),
]
Count = Annotated[int, typer.Option("--n", "-n", min=1, help="How many images")]
Size = Annotated[str | None, typer.Option("--size", "-s", help="e.g. 1024x1024")]
Quality = Annotated[str | None, typer.Option("--quality", "-q", help="low, medium, high or auto")]
Out = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="An image file (out.png; numbered when -n > 1) or a directory for the images",
    ),
]
Seed = Annotated[int | None, typer.Option(help="Same seed, same picture (models that take it)")]
Format = Annotated[str | None, typer.Option("--format", help="png, jpeg or webp")]


def _fields(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw")],
    model: Model = None,
    n: Count = 1,
    size: Size = None,
    quality: Quality = None,
    seed: Seed = None,
    output_format: Format = None,
    out: Out = Path("."),
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Make images from a prompt (POST /v1/images/generations) and save them."""
    body = _fields(
        model=model,
        prompt=prompt,
        n=n,
        size=size,
        quality=quality,
        seed=seed,
        output_format=output_format,
    )
    with Client(base_url, key) as client:
        started = now()
        with spinner(f"generating {n} image{'s' if n > 1 else ''}"):
            response = client.request("POST", "/v1/images/generations", json=body)
        _save(client, response, out, slug(prompt), started)


def edit(
    image: Annotated[Path, typer.Argument(help="The picture to edit", exists=True, dir_okay=False)],
    prompt: Annotated[str, typer.Argument(help="What to change")],
    mask: Annotated[
        Path | None,
        typer.Option(
            help="PNG with alpha, the image's size; transparent = the area to change",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(help="Further images (references); repeat", exists=True, dir_okay=False),
    ] = None,
    model: Model = None,
    n: Count = 1,
    size: Size = None,
    quality: Quality = None,
    seed: Seed = None,
    input_fidelity: Annotated[str | None, typer.Option(help="high keeps more of the input")] = None,
    out: Out = Path("."),
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Edit a picture with a prompt, inside a mask if given (POST /v1/images/edits)."""
    fields = _fields(
        model=model,
        prompt=prompt,
        n=n,
        size=size,
        quality=quality,
        seed=seed,
        input_fidelity=input_fidelity,
    )
    with Client(base_url, key) as client, ExitStack() as files:
        parts: list[tuple[str, Any]] = [
            ("image[]", _upload(files, path)) for path in (image, *(reference or ()))
        ]
        if mask is not None:
            parts.append(("mask", _upload(files, mask)))
        started = now()
        with spinner(f"editing {image.name}"):
            response = client.request(
                "POST",
                "/v1/images/edits",
                data={name: str(value) for name, value in fields.items()},
                files=parts,
            )
        _save(client, response, out, slug(prompt, "edit"), started)


def vary(
    image: Annotated[Path, typer.Argument(help="The picture to vary", exists=True, dir_okay=False)],
    model: Model = None,
    n: Count = 1,
    size: Size = None,
    out: Out = Path("."),
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """Variations: the picture's subject and layout, new details (POST /v1/images/variations)."""
    fields = _fields(model=model, n=n, size=size)
    with Client(base_url, key) as client, ExitStack() as files:
        started = now()
        with spinner(f"varying {image.name}"):
            response = client.request(
                "POST",
                "/v1/images/variations",
                data={name: str(value) for name, value in fields.items()},
                files=[("image", _upload(files, image))],
            )
        save_openai_images(client, response.json(), out, slug(image.stem, "variation"))
        print_cost(client.cost(response.headers.get("x-request-id", ""), started))


def estimate(
    prompt: Annotated[str, typer.Argument(help="The prompt to price")],
    model: Model = None,
    n: Count = 1,
    size: Size = None,
    quality: Quality = None,
    edit_images: Annotated[
        int, typer.Option("--edit", min=0, help="Price an edit with this many input images")
    ] = 0,
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """What a generation (or an edit) would cost; charges nothing (POST /api/estimate)."""
    body = _fields(model=model, prompt=prompt, n=n, size=size, quality=quality)
    if edit_images:
        body["endpoint"] = "openai-image-edit"
        body["images"] = [{}] * edit_images  # only their number is priced
    with Client(base_url, key) as client:
        quote = client.json("POST", "/api/estimate", json=body)
    typer.echo(f"model: {quote.get('model')}")
    typer.echo(f"estimated cost: ${float(quote['estimated_cost']):.6f} {quote.get('currency', '')}")
    for name, value in (quote.get("breakdown") or {}).items():
        typer.echo(f"  {name}: {value}")


def _upload(files: ExitStack, path: Path) -> tuple[str, Any, str]:
    if not path.is_file():
        die(f"{path} is not a file")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.name, files.enter_context(path.open("rb")), mime


def _save(client: Client, response: httpx.Response, out: Path, stem: str, started: float) -> None:
    """Save the answer's images, say which parameters the model ignored, print the cost."""
    save_openai_images(client, response.json(), out, stem)
    _warn_ignored(response.headers.get("x-imagegate-ignored-params"))
    print_cost(client.cost(response.headers.get("x-request-id", ""), started))


def _warn_ignored(ignored: str | None) -> None:
    if ignored:
        typer.echo(f"note: the model ignored {ignored}", err=True)

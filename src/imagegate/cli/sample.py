"""``imagegate sample``: a picture (and a mask) to try edits, variations and uploads on.

Drawn offline by the built-in renderer, so it needs no server, no key and no network.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated

import typer
from PIL import Image

from imagegate.providers.local.draw import render_scene
from imagegate.providers.local.scene import parse_prompt

DEFAULT_PROMPT = "a red house and green trees under a yellow sun in a blue sky, green grass"


def sample(
    image: Annotated[Path, typer.Argument(help="Where to write the picture (PNG)")],
    mask: Annotated[
        Path | None,
        typer.Option(help="Also write a mask: transparent (to edit) in the lower half"),
    ] = None,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT")] = "512x512",
    prompt: Annotated[str, typer.Option(help="What the picture shows")] = DEFAULT_PROMPT,
    seed: Annotated[int, typer.Option(help="Same seed, same picture")] = 7,
) -> None:
    """Write a sample picture and, with --mask, a mask for it (no server needed)."""
    try:
        width, height = (int(side) for side in size.lower().split("x"))
    except ValueError:
        raise typer.BadParameter("--size must look like 512x512") from None
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise typer.BadParameter("--size sides must be 16 to 4096 pixels")
    picture = render_scene(
        parse_prompt(prompt), width, height, random.Random(seed), transparent=False
    ).final
    picture.convert("RGB").save(image, "PNG")
    typer.echo(f"wrote {image} ({width}x{height})")
    if mask is not None:
        layer = Image.new("RGBA", (width, height), (0, 0, 0, 255))
        layer.paste((0, 0, 0, 0), (0, height // 2, width, height))
        layer.save(mask, "PNG")
        typer.echo(f"wrote {mask} (transparent in the lower half: the area an edit changes)")

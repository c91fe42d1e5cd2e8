"""Encoding images to PNG, JPEG and WebP bytes."""

from __future__ import annotations

from io import BytesIO
from typing import Literal

import pytest
from PIL import Image, ImageDraw

from imagegate.imaging.encode import encode_image

Format = Literal["png", "jpeg", "webp"]
FORMATS: list[Format] = ["png", "jpeg", "webp"]
PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def picture(mode: str = "RGB", size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A small picture with edges and a transparent surround when ``mode`` has alpha."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rectangle((20, 10, 70, 50), fill=(200, 30, 30, 255))
    pen.ellipse((40, 20, 90, 60), fill=(30, 60, 200, 255))
    if mode == "RGBA":
        return image
    flat = Image.new("RGB", size, (240, 240, 240))
    flat.paste(image, mask=image.getchannel("A"))
    return flat.convert(mode)


def decode(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_decodes_as_the_right_format_and_size(fmt: Format, mode: str) -> None:
    decoded = decode(encode_image(picture(mode), fmt))
    assert decoded.format == PIL_NAMES[fmt]
    assert decoded.size == (96, 64)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_same_image_gives_identical_bytes(fmt: Format, mode: str) -> None:
    assert encode_image(picture(mode), fmt) == encode_image(picture(mode), fmt)


def test_png_is_lossless_and_keeps_alpha() -> None:
    source = picture("RGBA")
    decoded = decode(encode_image(source, "png"))
    assert decoded.mode == "RGBA"
    assert decoded.tobytes() == source.tobytes()


def test_webp_keeps_alpha() -> None:
    decoded = decode(encode_image(picture("RGBA"), "webp"))
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((1, 1))[3] == 0  # type: ignore[index]
    assert decoded.getpixel((60, 40))[3] == 255  # type: ignore[index]


def test_jpeg_flattens_transparency_onto_white() -> None:
    decoded = decode(encode_image(picture("RGBA"), "jpeg"))
    assert decoded.mode == "RGB"
    assert all(channel > 245 for channel in decoded.getpixel((2, 2)))  # type: ignore[union-attr]


def test_jpeg_default_quality_is_high() -> None:
    source = picture("RGB")
    decoded = decode(encode_image(source, "jpeg"))
    red = decoded.getpixel((30, 15))
    assert isinstance(red, tuple)
    assert red[0] > 180 and red[1] < 60 and red[2] < 60


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_more_compression_gives_fewer_bytes(fmt: Format) -> None:
    noisy = Image.effect_noise((256, 256), 60).convert("RGB")
    sizes = [len(encode_image(noisy, fmt, compression)) for compression in (0, 50, 95)]
    assert sizes[0] > sizes[1] > sizes[2]
    assert len(encode_image(noisy, fmt)) == len(encode_image(noisy, fmt, 10))


def test_png_compression_picks_the_zlib_level() -> None:
    image = Image.radial_gradient("L").convert("RGB").resize((512, 512))
    fastest = encode_image(image, "png", 0)
    smallest = encode_image(image, "png", 100)
    assert len(smallest) < len(fastest)
    assert decode(smallest).tobytes() == decode(fastest).tobytes() == image.tobytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_metadata_is_written(fmt: Format) -> None:
    image = picture("RGB")
    exif = Image.Exif()
    exif[0x010E] = "secret description"  # ImageDescription
    image.info.update({"exif": exif.tobytes(), "comment": b"secret comment", "dpi": (300, 300)})
    image.info["parameters"] = "secret parameters"
    data = encode_image(image, fmt)
    assert b"secret" not in data
    assert data == encode_image(picture("RGB"), fmt)
    if fmt == "png":
        for chunk in (b"tIME", b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
            assert chunk not in data
    assert image.info["comment"] == b"secret comment"  # the caller's image is untouched


@pytest.mark.parametrize("compression", [-1, 101])
def test_compression_out_of_range_is_rejected(compression: int) -> None:
    with pytest.raises(ValueError, match="compression"):
        encode_image(picture(), "png", compression)


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="gif"):
        encode_image(picture(), "gif")  # type: ignore[arg-type]

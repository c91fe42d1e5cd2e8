"""Checking client images: formats, limits, bombs, corrupt files and metadata removal."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFile, PngImagePlugin

from imagegate.errors import InvalidRequest, PayloadTooLarge, ServerError
from imagegate.imaging.inspect import inspect_image, sniff_format
from imagegate.imaging.limits import ImageLimits

LIMITS = ImageLimits()
PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}


def picture(mode: str = "RGB", size: tuple[int, int] = (64, 40)) -> Image.Image:
    """A red square in the top-left corner of a grey picture (transparent where it has alpha)."""
    image = Image.new("RGBA", size, (128, 128, 128, 0 if "A" in mode else 255))
    ImageDraw.Draw(image).rectangle((0, 0, 15, 15), fill=(220, 20, 20, 255))
    return image if mode == "RGBA" else image.convert("RGB").convert(mode)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = BytesIO()
    image.save(buffer, PIL_NAMES[fmt], **options)
    return buffer.getvalue()


def open_image(data: bytes) -> ImageFile.ImageFile:
    image = Image.open(BytesIO(data))
    image.load()
    return image


@contextmanager
def pillow_opens() -> Iterator[list[object]]:
    """The arguments of every ``Image.open`` call made inside (Pillow still opens them)."""
    opened: list[object] = []
    real_open = Image.open

    def counting_open(*a: Any, **k: Any) -> Image.Image:
        opened.append(a)
        return real_open(*a, **k)

    with mock.patch.object(Image, "open", counting_open):
        yield opened


def check(data: bytes, limits: ImageLimits = LIMITS, param: str = "image") -> Any:
    return inspect_image(data, param=param, limits=limits)


def refused(data: bytes, limits: ImageLimits = LIMITS, param: str = "image") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check(data, limits, param)
    assert type(caught.value) is InvalidRequest
    assert caught.value.param == param
    return caught.value


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its IHDR declaring ``width``×``height``, CRC fixed so it still parses."""
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def patch_gif_size(data: bytes, width: int, height: int) -> bytes:
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def patch_webp_size(data: bytes, width: int, height: int) -> bytes:
    assert data[12:16] == b"VP8X"
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return data[:24] + size + data[30:]


def webp_with_vp8x() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "x"
    return encode(picture("RGBA", (8, 8)), "webp", exif=exif)


BOMBS: dict[str, Callable[[], bytes]] = {
    "png": lambda: patch_png_size(encode(picture(size=(1, 1)), "png"), 20000, 20000),
    "gif": lambda: patch_gif_size(encode(picture("P", (1, 1)), "gif"), 20000, 20000),
    "jpeg": lambda: patch_jpeg_size(encode(picture(size=(8, 8)), "jpeg"), 20000, 20000),
    "webp": lambda: patch_webp_size(webp_with_vp8x(), 20000, 20000),
}


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_accepts_allowed_formats_as_they_are(fmt: str, mode: str) -> None:
    if fmt == "jpeg" and mode == "RGBA":
        mode = "RGB"
    data = encode(picture(mode), fmt)
    image = check(data)
    assert (image.format, image.width, image.height) == (fmt, 64, 40)
    assert image.has_alpha == (mode == "RGBA")
    assert image.data == data  # nothing to strip: the client's bytes, untouched
    assert image.mime_type == f"image/{fmt}"
    assert image.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"GIF89a", "gif"),
        (b"GIF87a", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", None),
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"BM\x00\x00", "bmp"),
        (b"%PDF-1.7", "pdf"),
        (b"\x00\x00\x00\x1cftypheic", "heic"),
        (b"\x00\x00\x00\x1cftypavif", "avif"),
        (b"\x00\x00\x00\x1cftypisom", "mp4"),
        (b"\xef\xbb\xbf  <?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "svg"),
        (b"<svg/>", "svg"),
        (b"<?xml version='1.0'?><doc/>", "xml"),
        (b"<!DOCTYPE html><html></html>", "html"),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_sniffs_formats_from_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='9'/>", "svg"),
        (b"II*\x00" + b"\x00" * 64, "tiff"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "pdf"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic"),
    ],
)
def test_refuses_other_formats_naming_them(data: bytes, name: str) -> None:
    assert name in refused(data).message


@pytest.mark.parametrize(("pil_name", "name"), [("TIFF", "tiff"), ("BMP", "bmp"), ("PDF", "pdf")])
def test_refuses_real_files_of_other_formats(pil_name: str, name: str) -> None:
    buffer = BytesIO()
    picture().save(buffer, pil_name)
    assert name in refused(buffer.getvalue()).message


def test_refuses_bytes_that_are_no_image_whatever_the_name() -> None:
    error = refused(b"this is not a png, whatever the file name says", param="image[2]")
    assert "not a recognised image" in error.message
    assert error.param == "image[2]"


def test_refuses_formats_the_model_does_not_take() -> None:
    limits = ImageLimits(formats=frozenset({"png", "jpeg"}))
    error = refused(encode(picture(), "webp"), limits)
    assert "webp" in error.message and "jpeg, png" in error.message


def test_refuses_empty_input() -> None:
    assert "empty" in refused(b"").message


# --- limits ----------------------------------------------------------------------------------


def test_byte_limit_is_checked_from_the_length_first() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        check(b"\x00" * 1001, ImageLimits(max_bytes=1000), "mask")
    assert caught.value.status == 413
    assert caught.value.param == "mask"
    assert "1001 bytes" in caught.value.message


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_bombs_are_refused_from_the_header_without_a_pixel_buffer(fmt: str) -> None:
    # Not timed (a busy machine stretches any wall-clock bound): a bomb that Pillow never opens
    # and that allocates under 20 MB was refused from its header, which is what makes it fast.
    bomb = BOMBS[fmt]()
    assert len(bomb) < 1024
    tracemalloc.start()
    try:
        with pillow_opens() as opened:
            error = refused(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "20000x20000 pixels" in error.message
    assert peak < 20 * 1024 * 1024
    assert opened == []  # refused from the header: Pillow never saw the file


def test_pillow_bomb_checks_are_400s_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Our limits are normally far below Pillow's, so its checks only fire when an operator
    # raises ours past them; they must still be a 400, warning or error.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert "too many pixels" in refused(encode(picture(size=(40, 40)), "png")).message  # warning
    assert "too many pixels" in refused(encode(picture(size=(64, 40)), "png")).message  # error


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 80), height=st.integers(1, 80))
def test_accepted_exactly_when_within_the_pixel_limits(width: int, height: int) -> None:
    limits = ImageLimits(max_side=64, max_pixels=2000)
    data = encode(Image.new("L", (width, height), 7), "png")
    within = max(width, height) <= 64 and width * height <= 2000
    if within:
        image = check(data, limits)
        assert (image.width, image.height) == (width, height)
    else:
        assert f"{width}x{height} pixels" in refused(data, limits).message


@settings(max_examples=60, deadline=None)
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1))
def test_declared_sizes_are_refused_from_the_header(width: int, height: int) -> None:
    data = patch_png_size(encode(Image.new("L", (4, 4)), "png"), width, height)
    over = max(width, height) > LIMITS.max_side or width * height > LIMITS.max_pixels
    error: InvalidRequest | None = None
    with pillow_opens() as opened:
        try:
            check(data)
        except InvalidRequest as exc:
            error = exc
    assert not (over and opened)  # a size over the limits is refused from the header
    # Within the limits the pixel data no longer matches the header: it may well be refused,
    # but never for its size.
    assert (error is not None and "pixels; the limit is" in error.message) == over


# --- corrupt files ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "gif"])
def test_truncated_images_are_refused(fmt: str) -> None:
    noisy = Image.effect_noise((128, 128), 50).convert("RGB" if fmt != "gif" else "L")
    data = encode(noisy, fmt)
    error = refused(data[: len(data) * 2 // 3])
    assert "truncated or corrupt" in error.message or "truncated" in error.message


def test_png_without_its_end_chunk_is_refused() -> None:
    data = encode(picture(), "png")
    assert "truncated" in refused(data[:-12]).message


def test_corrupt_png_chunk_is_refused() -> None:
    data = bytearray(encode(picture(), "png"))
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    refused(bytes(data))


def test_truncated_images_stay_refused_even_if_pillow_is_told_to_load_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ServerError):
        check(encode(picture(), "png"))


# --- metadata --------------------------------------------------------------------------------


def test_gif_becomes_its_first_frame_as_png() -> None:
    frames = [Image.new("P", (30, 20), 0), Image.new("P", (30, 20), 1)]
    for frame in frames:
        frame.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    buffer = BytesIO()
    frames[0].save(
        buffer, "GIF", save_all=True, append_images=frames[1:], comment=b"secret", loop=0
    )
    image = check(buffer.getvalue())
    assert (image.format, image.width, image.height) == ("png", 30, 20)
    decoded = open_image(image.data)
    assert decoded.format == "PNG"
    assert decoded.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    assert b"secret" not in image.data


def test_gif_transparency_survives_as_alpha() -> None:
    frame = Image.new("P", (10, 10), 0)
    frame.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    image = check(encode(frame, "gif", transparency=0))
    assert image.has_alpha
    assert open_image(image.data).convert("RGBA").getpixel((1, 1))[3] == 0  # type: ignore[index]


def exif(orientation: int) -> Image.Exif:
    data = Image.Exif()
    data[ExifTags.Base.Orientation] = orientation
    data[ExifTags.Base.Make] = "SpyCam"
    data[ExifTags.Base.ImageDescription] = "taken at home"
    return data


def test_jpeg_exif_is_removed_and_its_orientation_applied() -> None:
    data = encode(picture(size=(64, 40)), "jpeg", exif=exif(6), quality=95)
    image = check(data)
    assert (image.format, image.width, image.height) == ("jpeg", 40, 64)
    decoded = open_image(image.data)
    assert "exif" not in decoded.info and not decoded.getexif()
    assert b"SpyCam" not in image.data
    # Orientation 6 means "turn 90° clockwise to view": the red corner moves to the top right.
    red, green, _ = decoded.getpixel((34, 5))  # type: ignore[misc]
    assert red > 180 and green < 80
    assert decoded.getpixel((5, 58))[0] < 160  # type: ignore[index]


def corrupt_exif_jpeg() -> bytes:
    data = bytearray(encode(picture(), "jpeg", exif=exif(6)))
    ifd = data.index(b"Exif\x00\x00") + 6 + 8
    data[ifd : ifd + 32] = b"\xff" * 32  # entry count and entries: garbage
    return bytes(data)


def test_corrupt_exif_is_a_client_error_where_warnings_are_errors() -> None:
    # Pillow warns while opening it; where warnings raise (this suite), that is a 400, never
    # a 500.
    assert "could not be decoded" in refused(corrupt_exif_jpeg()).message


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corrupt_exif_is_dropped_where_warnings_are_only_warnings() -> None:
    image = check(corrupt_exif_jpeg())
    assert (image.width, image.height) == (64, 40)  # orientation unreadable: left as stored
    assert b"SpyCam" not in image.data


def test_jpeg_metadata_is_removed_keeping_its_quality() -> None:
    data = encode(picture(), "jpeg", exif=exif(1), comment=b"secret", xmp=b"<x:xmpmeta/>")
    image = check(data)
    decoded = open_image(image.data)
    assert (image.width, image.height) == (64, 40)
    assert not {"exif", "comment", "xmp"} & decoded.info.keys()
    for secret in (b"SpyCam", b"secret", b"xmpmeta"):
        assert secret not in image.data
    assert decoded.quantization == open_image(data).quantization  # type: ignore[attr-defined]


def test_jpeg_segments_after_the_first_scan_are_dropped() -> None:
    # Pillow only lists the segments before the first scan; a decoder skips APPn/COM markers
    # between scans, so they can smuggle metadata past a header-only check.
    data = encode(picture(), "jpeg")
    late = b"\xff\xe1" + struct.pack(">H", 2 + 17) + b"Exif\x00\x00late secret"
    image = check(data[:-2] + late + data[-2:])
    assert b"late secret" not in image.data


def test_jpeg_bytes_after_the_image_are_dropped() -> None:
    data = encode(picture(), "jpeg") + b"PK\x03\x04 a zip hiding behind the image"
    image = check(data)
    assert b"PK\x03\x04" not in image.data
    assert image.data.endswith(b"\xff\xd9")


def test_png_metadata_is_removed_losslessly() -> None:
    source = picture("RGBA")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret one")
    info.add_text("Author", "secret two", zip=True)
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret three</x:xmpmeta>")
    data = encode(source, "png", pnginfo=info, exif=exif(1), dpi=(300, 300)) + b"trailing"
    image = check(data)
    for marker in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"pHYs", b"secret", b"trailing"):
        assert marker not in image.data
    decoded = open_image(image.data)
    assert decoded.tobytes() == source.tobytes()
    assert image.has_alpha


def test_png_colour_chunks_are_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(picture("P"), "png", transparency=0, icc_profile=icc)
    image = check(data)
    assert image.data == data
    assert open_image(image.data).info["icc_profile"] == icc
    assert image.has_alpha


def test_jpeg_icc_profile_is_kept_when_metadata_goes() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = check(encode(picture(), "jpeg", icc_profile=icc, comment=b"secret"))
    assert b"secret" not in image.data
    assert open_image(image.data).info["icc_profile"] == icc


def test_png_orientation_is_applied() -> None:
    image = check(encode(picture(size=(64, 40)), "png", exif=exif(8)))
    assert (image.width, image.height) == (40, 64)
    assert b"eXIf" not in image.data


def test_animated_png_becomes_its_first_frame() -> None:
    first, second = picture(), picture().transpose(Image.Transpose.ROTATE_180)
    data = encode(first, "png", save_all=True, append_images=[second])
    assert b"acTL" in data
    image = check(data)
    assert b"acTL" not in image.data and b"fdAT" not in image.data
    assert open_image(image.data).convert("RGB").tobytes() == first.tobytes()


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_metadata_is_removed(lossless: bool) -> None:
    data = encode(picture("RGBA"), "webp", exif=exif(1), xmp=b"<x:xmpmeta/>", lossless=lossless)
    image = check(data)
    assert image.format == "webp" and image.has_alpha
    assert b"EXIF" not in image.data and b"XMP " not in image.data and b"SpyCam" not in image.data
    if lossless:
        assert open_image(image.data).tobytes() == open_image(data).tobytes()


def test_palette_and_grey_alpha_are_reported() -> None:
    assert check(encode(picture("LA"), "png")).has_alpha
    assert check(encode(picture("P"), "png", transparency=3)).has_alpha
    assert not check(encode(picture("P"), "png")).has_alpha

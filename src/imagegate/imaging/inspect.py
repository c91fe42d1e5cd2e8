"""Check one client image and turn it into an :class:`~imagegate.imaging.image.InputImage`.

Boundary: bytes in; a checked ``InputImage`` or an :class:`~imagegate.errors.InvalidRequest`
(400) / :class:`~imagegate.errors.PayloadTooLarge` (413) out, naming the client's field. It knows
nothing of base64, URLs or HTTP (that is :mod:`imagegate.imaging.sources`). Everything here is
synchronous CPU work: callers on the event loop run it in a worker thread.

The order is what makes saying no cheap:

1. the byte limit, from ``len`` alone (413);
2. the format, from magic bytes, never a file name or a content type (400 naming it);
3. width and height, read from the header by hand and checked before Pillow opens the file, so
   a bomb (a few hundred bytes declaring 20000×20000) never gets a pixel buffer. Pillow's
   ``Image.open`` is lazy for PNG, JPEG and GIF, but libwebp allocates the whole canvas as soon
   as a WebP file is opened, and Pillow's own bomb check only starts at ~89 megapixels;
4. one full decode, so truncated or corrupt files fail here (400) rather than upstream;
5. metadata removal. PNG ancillary chunks (text, EXIF, XMP, time, private chunks) are dropped
   losslessly by rewriting the chunk list, without touching the pixels. A JPEG or WebP carrying
   metadata (APPn/COM segments, EXIF/XMP chunks, bytes after the image, animation) is
   re-encoded from the decoded pixels in its own format, a JPEG with its own quantisation
   tables so that its quality is kept. An EXIF orientation is applied first, so the pixels
   stand the way the client saw them. A GIF (or an animated PNG) becomes its first frame as a
   PNG. ICC profiles are kept: they define what the pixel values mean. Clean files keep their
   original bytes.

The pixels are decoded exactly once; re-encoding works from that decode. A JPEG that needs no
re-encoding is decoded at 1/8 scale (every block is still read): the check costs a 64th of the
memory of a full decode.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator
from io import BytesIO
from typing import Any, Final

from PIL import ExifTags, Image, ImageFile, ImageOps, JpegImagePlugin

from imagegate.errors import InvalidRequest, PayloadTooLarge, ServerError
from imagegate.imaging.image import InputFormat, InputImage
from imagegate.imaging.limits import ImageLimits

__all__ = ["decode_cost", "inspect_image", "sniff_format"]

_PIL_NAMES: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
_OUTPUT_FORMAT: Final[dict[str, InputFormat]] = {
    "png": "png",
    "jpeg": "jpeg",
    "webp": "webp",
    "gif": "png",
}

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
# (offset, magic bytes, name). Only the first four are accepted; the rest are named so that
# the error can say what the client actually sent.
_SIGNATURES: Final[tuple[tuple[int, bytes, str], ...]] = (
    (0, _PNG_MAGIC, "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"II+\x00", "tiff"),
    (0, b"MM\x00+", "tiff"),
    (0, b"%PDF", "pdf"),
    (0, b"%!PS", "postscript"),
    (0, b"8BPS", "psd"),
    (0, b"qoif", "qoi"),
    (0, b"\xff\x0a", "jxl"),
    (4, b"JXL \r\n\x87\n", "jxl"),
    (4, b"jP  \r\n\x87\n", "jpeg2000"),
    (0, b"\xff\x4f\xff\x51", "jpeg2000"),
    (0, b"\x00\x00\x01\x00", "ico"),
    (0, b"\x00\x00\x02\x00", "cur"),
    (0, b"#?RADIANCE", "hdr"),
    (0, b"v/1\x01", "exr"),
    (0, b"DDS ", "dds"),
    (0, b"PK\x03\x04", "zip"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"BM", "bmp"),
)
_ISO_BRANDS: Final = {
    b"avif": "avif",
    b"avis": "avif",
    b"heic": "heic",
    b"heix": "heic",
    b"hevc": "heic",
    b"hevx": "heic",
    b"heim": "heic",
    b"heis": "heic",
    b"mif1": "heif",
    b"msf1": "heif",
}

_JPEG_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD})
_JPEG_STANDALONE: Final = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
# APPn segments that carry no metadata: JFIF without a thumbnail, ICC profile, Adobe colour
# transform. (segment name, payload prefix, longest payload).
_JPEG_KEPT_SEGMENTS: Final = (
    ("APP0", b"JFIF\x00", 16),
    ("APP2", b"ICC_PROFILE\x00", 1 << 16),
    ("APP14", b"Adobe", 1 << 16),
)
# In entropy-coded data every 0xFF is followed by 0x00 or a restart marker, so these bytes
# are always real APPn/COM markers there; in header payloads they may be false positives,
# which only cost a needless re-encode.
_JPEG_APP_OR_COM: Final = re.compile(rb"\xff[\xe0-\xef\xfe]")
_PNG_KEPT_CHUNKS: Final = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT"}
    | {b"cICP", b"mDCV", b"cLLI"}
)
_WEBP_KEPT_CHUNKS: Final = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP"})
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_UPRIGHT_ORIENTATIONS: Final = frozenset({None, 1})
# Re-encoded PNGs are rare (GIFs, rotated or animated PNGs); zlib level 1 is several times
# faster than 6 on photos and only slightly larger.
_PNG_COMPRESS_LEVEL: Final = 1
_WEBP_QUALITY: Final = 95

# Pillow raises a zoo of exception types on hostile input; each means "not a valid image".
_DECODE_ERRORS: Final = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
)


def sniff_format(data: bytes) -> str | None:
    """The format named by ``data``'s magic bytes, or ``None`` when unrecognised.

    Returns ``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"`` for the formats imagegate may
    accept, and a descriptive name (``"svg"``, ``"tiff"``, ``"bmp"``, ``"heic"``, ``"avif"``,
    ``"pdf"``, …) for recognised formats it always refuses.
    """
    head = data[:32]
    if head.startswith(b"RIFF"):
        return "webp" if head[8:12] == b"WEBP" else None
    if head[4:8] == b"ftyp":
        return _ISO_BRANDS.get(head[8:12], "mp4")
    for offset, magic, name in _SIGNATURES:
        if head.startswith(magic, offset):
            return name
    return _sniff_markup(data[:4096])


def inspect_image(data: bytes, *, param: str, limits: ImageLimits) -> InputImage:
    """Check ``data`` against ``limits`` and return it as a clean :class:`InputImage`.

    ``param`` names the client's field in every error. Raises :class:`PayloadTooLarge` when
    ``data`` is over ``limits.max_bytes`` and :class:`InvalidRequest` for anything else wrong;
    see the module docstring for the order of the checks and what "clean" means.
    """
    _check_pillow_config()
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"{param} is {len(data)} bytes; the limit is {limits.max_bytes} bytes", param=param
        )
    if not data:
        raise InvalidRequest(f"{param} is empty", param=param)
    fmt = _allowed_format(data, param, limits)
    _check_header(data, fmt, param, limits)
    decoded, size = _decode(data, fmt, param, limits)
    out, final = _sanitise(decoded, data, fmt, param)
    if final is not decoded:
        size = final.size
    if len(out) > limits.max_bytes:
        raise PayloadTooLarge(
            f"{param} is {len(out)} bytes once re-encoded as {_OUTPUT_FORMAT[fmt]};"
            f" the limit is {limits.max_bytes} bytes",
            param=param,
        )
    return InputImage(
        data=out,
        format=_OUTPUT_FORMAT[fmt],
        width=size[0],
        height=size[1],
        has_alpha=final.mode in _ALPHA_MODES or "transparency" in final.info,
        sha256=hashlib.sha256(out).hexdigest(),
    )


def decode_cost(data: bytes, limits: ImageLimits) -> int:
    """The pixels :func:`inspect_image` may hold while decoding ``data``, from its header alone
    (for :mod:`imagegate.imaging.budget`): 0 for what is refused before any decode."""
    fmt = sniff_format(data)
    if fmt not in _PIL_NAMES or len(data) > limits.max_bytes:
        return 0
    size = _header_size(data, fmt)
    if size is None:
        return limits.max_pixels
    return min(size[0] * size[1], limits.max_pixels)


def _check_pillow_config() -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Fail closed: with the flag on, Pillow pads truncated files with grey and we would
        # accept them. Something in this process switched it on; find it and turn it off.
        raise ServerError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; imagegate needs it off")


def _sniff_markup(head: bytes) -> str | None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if not text.startswith(b"<"):
        return None
    if b"<svg" in text:
        return "svg"
    if b"<html" in text or text.startswith(b"<!doctype html"):
        return "html"
    return "xml"


def _allowed_format(data: bytes, param: str, limits: ImageLimits) -> str:
    fmt = sniff_format(data)
    allowed = ", ".join(sorted(limits.formats & _PIL_NAMES.keys()))
    if fmt is None:
        raise InvalidRequest(f"{param} is not a recognised image; send {allowed}", param=param)
    if fmt not in limits.formats or fmt not in _PIL_NAMES:
        raise InvalidRequest(
            f"{param} is in {fmt} format, which is not accepted; send {allowed}", param=param
        )
    return fmt


def _check_header(data: bytes, fmt: str, param: str, limits: ImageLimits) -> None:
    size = _header_size(data, fmt)
    if size is not None:
        _check_dimensions(size, param, limits)
    elif fmt == "webp":  # without a size, libwebp would be the first to read one
        raise InvalidRequest(f"{param} is not a valid webp image", param=param)


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height as the file's header declares them, without Pillow."""
    if fmt == "png":
        if data[12:16] != b"IHDR" or len(data) < 24:
            return None
        width, height = struct.unpack_from(">II", data, 16)
        return width, height
    if fmt == "gif":
        if len(data) < 10:
            return None
        width, height = struct.unpack_from("<HH", data, 6)
        return width, height
    if fmt == "webp":
        return _webp_size(data)
    return _jpeg_size(data)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the segments before the first scan to the frame header (SOFn)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _JPEG_STANDALONE:
            pos += 2
        elif marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        elif marker in (0xD9, 0xDA):
            return None
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def _check_dimensions(size: tuple[int, int], param: str, limits: ImageLimits) -> None:
    width, height = size
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise InvalidRequest(
            f"{param} is {width}x{height} pixels; the limit is {limits.max_side} pixels a side"
            f" and {limits.max_pixels} pixels in all",
            param=param,
        )


def _decode(
    data: bytes, fmt: str, param: str, limits: ImageLimits
) -> tuple[ImageFile.ImageFile, tuple[int, int]]:
    """The decoded image and its full size. A clean JPEG is kept as it is, so its pixels are
    only checked: libjpeg decodes every block at 1/8 scale (a truncated or corrupt file
    still fails) into a 64th of the memory."""
    try:
        image = Image.open(BytesIO(data), formats=[_PIL_NAMES[fmt]])
        # Pillow's size can differ from the header's (a GIF frame may enlarge the canvas).
        _check_dimensions(image.size, param, limits)
        size = image.size
        if fmt == "jpeg" and _jpeg_is_clean(image, data):
            image.draft(image.mode, (-(-size[0] // 8), -(-size[1] // 8)))
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequest(
            f"{param} has too many pixels; the limit is {limits.max_pixels}", param=param
        ) from None
    except (*_DECODE_ERRORS, Warning):  # Pillow's warnings raise where they are errors
        raise InvalidRequest(
            f"{param} could not be decoded as {fmt}: the file is truncated or corrupt",
            param=param,
        ) from None
    if image.width < 1 or image.height < 1:
        raise InvalidRequest(f"{param} has no pixels", param=param)
    return image, size


def _sanitise(
    image: ImageFile.ImageFile, data: bytes, fmt: str, param: str
) -> tuple[bytes, Image.Image]:
    """The bytes to keep (without metadata) and the image they hold."""
    if fmt == "gif":
        return _encode(image, "png", source=image, data=data), image
    upright = _upright(image)
    if upright is not image:
        return _encode(upright, fmt, source=image, data=data), upright
    if fmt == "png":
        stripped = _strip_png(data, param)
        if stripped is None:
            return _encode(image, "png", source=image, data=data), image
        return stripped, image
    clean = _jpeg_is_clean(image, data) if fmt == "jpeg" else _webp_is_clean(data)
    return (data if clean else _encode(image, fmt, source=image, data=data)), image


def _upright(image: ImageFile.ImageFile) -> Image.Image:
    """``image`` turned by its EXIF orientation; ``image`` itself when already upright."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except (*_DECODE_ERRORS, Warning):
        return image  # unreadable EXIF: it is dropped with the rest of the metadata
    if orientation in _UPRIGHT_ORIENTATIONS:
        return image
    return ImageOps.exif_transpose(image)


def _encode(image: Image.Image, fmt: str, *, source: ImageFile.ImageFile, data: bytes) -> bytes:
    """Re-encode ``image`` as ``fmt`` with no metadata but the ICC profile and transparency.

    ``source`` and ``data`` are the decoded original and its bytes, for encoder settings
    that keep the original's quality.
    """
    options = _save_options(fmt, source, data)
    transparency = image.info.get("transparency")
    # Savers fall back to ``image.info`` for comments and the like; leave nothing to find.
    image.info = {} if transparency is None else {"transparency": transparency}
    buffer = BytesIO()
    image.save(buffer, _PIL_NAMES[fmt], **options)
    return buffer.getvalue()


def _save_options(fmt: str, source: ImageFile.ImageFile, data: bytes) -> dict[str, Any]:
    icc = source.info.get("icc_profile")
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "png":
        options["compress_level"] = _PNG_COMPRESS_LEVEL
    elif fmt == "jpeg" and isinstance(source, JpegImagePlugin.JpegImageFile):
        options["qtables"] = source.quantization
        options["subsampling"] = JpegImagePlugin.get_sampling(source)
    elif fmt == "webp":
        lossless = b"VP8L" in _webp_chunk_ids(data)
        options.update(lossless=lossless, quality=100 if lossless else _WEBP_QUALITY)
    return options


def _png_chunks(data: bytes, param: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk up to IEND; bytes after IEND are not chunks."""
    pos = len(_PNG_MAGIC)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end
    raise InvalidRequest(f"{param} is a truncated png (it has no end chunk)", param=param)


def _strip_png(data: bytes, param: str) -> bytes | None:
    """``data`` without its ancillary chunks; ``None`` for an animated PNG."""
    view = memoryview(data)
    kept: list[memoryview] = [view[: len(_PNG_MAGIC)]]
    dropped = False
    end = 0
    for kind, start, end in _png_chunks(data, param):
        if kind == b"acTL":
            return None
        if kind in _PNG_KEPT_CHUNKS:
            kept.append(view[start:end])
        else:
            dropped = True
    if not dropped and end == len(data):
        return data
    return b"".join(kept)


def _jpeg_is_clean(image: ImageFile.ImageFile, data: bytes) -> bool:
    if not isinstance(image, JpegImagePlugin.JpegImageFile) or not data.endswith(b"\xff\xd9"):
        return False
    for name, payload in image.applist:
        if not any(
            name == kept and payload.startswith(prefix) and len(payload) <= longest
            for kept, prefix, longest in _JPEG_KEPT_SEGMENTS
        ):
            return False
    # Pillow lists only the segments before the first scan; count every marker in the file.
    return sum(1 for _ in _JPEG_APP_OR_COM.finditer(data)) == len(image.applist)


def _webp_chunk_ids(data: bytes) -> list[bytes]:
    """The top-level RIFF chunk ids; a final ``b""`` marks bytes that are not a whole chunk."""
    ids: list[bytes] = []
    pos = 12
    while pos + 8 <= len(data):
        (size,) = struct.unpack_from("<I", data, pos + 4)
        ids.append(data[pos : pos + 4])
        pos += 8 + size + (size & 1)
    if pos != len(data):
        ids.append(b"")
    return ids


def _webp_is_clean(data: bytes) -> bool:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    return riff_size + 8 == len(data) and all(
        chunk in _WEBP_KEPT_CHUNKS for chunk in _webp_chunk_ids(data)
    )

"""core.inputs on its own: where each input image comes from (upload, base64, URL, file id),
the model's limits applied to it, and what edits require (square inputs, the mask rules)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from imagegate.core.catalog import InputSpec
from imagegate.core.files import FileService
from imagegate.core.inputs import InputLoader, check_mask
from imagegate.core.params import FileRef, ImageSource
from imagegate.errors import InvalidRequest, NotFound, PayloadTooLarge
from imagegate.imaging.fetch import ImageFetcher
from imagegate.imaging.image import InputFormat, InputImage
from imagegate.imaging.limits import ImageLimits

OWNER = "key_owner"


def picture(
    width: int, height: int, *, fmt: str = "PNG", mode: str = "RGB", alpha: int = 255
) -> bytes:
    color = (200, 30, 30, alpha) if mode == "RGBA" else (200, 30, 30)
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, fmt)
    return out.getvalue()


class FakeFiles(FileService):
    """Only :meth:`FileService.read`: uploads by (file id, owner), as the real one scopes them."""

    def __init__(self, files: dict[tuple[str, str], bytes]) -> None:
        self.files = files
        self.reads: list[tuple[str, str]] = []

    async def read(self, file_id: str, owner_key_id: str) -> bytes:
        self.reads.append((file_id, owner_key_id))
        data = self.files.get((file_id, owner_key_id))
        if data is None:
            raise NotFound(f"no such file: {file_id!r}", param="file_id", code="file_not_found")
        return data


class FakeFetcher(ImageFetcher):
    """Serves URLs from a dict; remembers what was asked and with which byte limit."""

    def __init__(self, urls: dict[str, bytes] | None = None) -> None:
        self.urls = urls or {}
        self.calls: list[tuple[str, int, str]] = []

    async def fetch(self, url: str, *, max_bytes: int, param: str) -> bytes:
        self.calls.append((url, max_bytes, param))
        return self.urls[url]


def loader(
    files: dict[tuple[str, str], bytes] | None = None, urls: dict[str, bytes] | None = None
) -> tuple[InputLoader, FakeFiles, FakeFetcher]:
    fake_files, fetcher = FakeFiles(files or {}), FakeFetcher(urls)
    return InputLoader(fake_files, fetcher), fake_files, fetcher


async def test_an_upload_base64_and_a_data_uri_load_the_same_checked_image() -> None:
    inputs, _, fetcher = loader()
    png = picture(40, 30)
    encoded = base64.b64encode(png).decode()
    loaded = [
        await inputs.load(ImageSource("image", value), owner_key_id=OWNER, limits=ImageLimits())
        for value in (png, encoded, f"data:image/png;base64,{encoded}")
    ]
    assert {(i.format, i.width, i.height, i.has_alpha) for i in loaded} == {("png", 40, 30, False)}
    assert len({i.sha256 for i in loaded}) == 1
    assert fetcher.calls == []


async def test_a_url_is_fetched_within_the_limit_and_names_its_param() -> None:
    url = "https://images.example/cat.jpg"
    inputs, _, fetcher = loader(urls={url: picture(16, 16, fmt="JPEG")})
    limits = ImageLimits(max_bytes=123_456)
    image = await inputs.load(ImageSource("image[0]", url), owner_key_id=OWNER, limits=limits)
    assert (image.format, image.width) == ("jpeg", 16)
    assert fetcher.calls == [(url, 123_456, "image[0]")]


async def test_a_file_id_is_read_as_its_owner() -> None:
    inputs, files, _ = loader({("file_1", OWNER): picture(8, 8)})
    image = await inputs.load(
        ImageSource("image", FileRef("file_1")), owner_key_id=OWNER, limits=ImageLimits()
    )
    assert (image.width, image.height) == (8, 8)
    assert files.reads == [("file_1", OWNER)]


async def test_a_missing_or_foreign_file_is_a_404_naming_the_clients_field() -> None:
    inputs, files, _ = loader({("file_1", "someone_else"): picture(8, 8)})
    for file_id in ("file_1", "file_gone"):
        with pytest.raises(NotFound) as missing:
            await inputs.load(
                ImageSource("image[2]", FileRef(file_id)), owner_key_id=OWNER, limits=ImageLimits()
            )
        assert missing.value.param == "image[2]"  # not the file service's "file_id"
        assert missing.value.code == "file_not_found" and file_id in missing.value.message
    assert files.reads == [("file_1", OWNER), ("file_gone", OWNER)]


async def test_load_inputs_keeps_the_order_and_applies_the_models_limits() -> None:
    url = "https://images.example/b.png"
    inputs, _, fetcher = loader({("file_c", OWNER): picture(30, 10)}, {url: picture(20, 10)})
    spec = InputSpec(max_images=3, max_image_bytes=2_000_000, formats=["png"])
    sources = [
        ImageSource("image[0]", picture(10, 10)),
        ImageSource("image[1]", url),
        ImageSource("image[2]", FileRef("file_c")),
    ]
    images, mask = await inputs.load_inputs(spec, sources, None, owner_key_id=OWNER)
    assert [(i.width, i.height) for i in images] == [(10, 10), (20, 10), (30, 10)]
    assert mask is None
    assert fetcher.calls == [(url, 2_000_000, "image[1]")]


async def test_a_format_the_model_does_not_take_is_refused_by_name() -> None:
    inputs, _, _ = loader()
    spec = InputSpec(formats=["png"])
    jpeg = ImageSource("image[1]", picture(10, 10, fmt="JPEG"))
    with pytest.raises(InvalidRequest) as refused:
        await inputs.load_inputs(
            spec, [ImageSource("image[0]", picture(10, 10)), jpeg], None, owner_key_id=OWNER
        )
    assert refused.value.param == "image[1]"


async def test_an_image_over_the_models_byte_limit_is_a_413() -> None:
    inputs, _, _ = loader()
    big = picture(64, 64)
    spec = InputSpec(max_image_bytes=len(big) - 1)
    with pytest.raises(PayloadTooLarge) as refused:
        await inputs.load_inputs(spec, [ImageSource("image", big)], None, owner_key_id=OWNER)
    assert refused.value.param == "image" and str(len(big) - 1) in refused.value.message


async def test_a_square_model_refuses_a_wide_input_and_says_its_size() -> None:
    inputs, _, _ = loader()
    spec = InputSpec(max_images=2, square=True)
    square = ImageSource("image[0]", picture(16, 16))
    wide = ImageSource("image[1]", picture(32, 16))
    assert len((await inputs.load_inputs(spec, [square], None, owner_key_id=OWNER))[0]) == 1
    with pytest.raises(InvalidRequest) as refused:
        await inputs.load_inputs(spec, [square, wide], None, owner_key_id=OWNER)
    assert refused.value.param == "image[1]" and "32x16" in refused.value.message
    # without the rule, the same inputs pass
    relaxed = InputSpec(max_images=2)
    images, _ = await inputs.load_inputs(relaxed, [square, wide], None, owner_key_id=OWNER)
    assert images[1].width == 32


async def test_a_good_mask_comes_back_beside_the_images() -> None:
    inputs, _, _ = loader()
    spec = InputSpec(mask=True)
    mask = ImageSource("mask", picture(24, 24, mode="RGBA", alpha=0))
    images, loaded = await inputs.load_inputs(
        spec, [ImageSource("image", picture(24, 24))], mask, owner_key_id=OWNER
    )
    assert loaded is not None and loaded.has_alpha and (loaded.width, loaded.height) == (24, 24)
    assert len(images) == 1 and not images[0].has_alpha


@pytest.mark.parametrize(
    ("mask_bytes", "words"),
    [
        (picture(24, 24), "alpha channel"),  # a PNG without alpha
        (picture(24, 24, fmt="WEBP", mode="RGBA", alpha=0), "PNG"),
        (picture(12, 24, mode="RGBA", alpha=0), "12x24 but the image is 24x24"),
    ],
)
async def test_a_bad_mask_is_refused_naming_the_mask(mask_bytes: bytes, words: str) -> None:
    inputs, _, _ = loader()
    with pytest.raises(InvalidRequest) as refused:
        await inputs.load_inputs(
            InputSpec(mask=True),
            [ImageSource("image", picture(24, 24))],
            ImageSource("mask", mask_bytes),
            owner_key_id=OWNER,
        )
    assert refused.value.param == "mask" and words in refused.value.message


def image(fmt: InputFormat, width: int, height: int, *, alpha: bool) -> InputImage:
    return InputImage(b"", fmt, width, height, alpha, "0" * 64)


def test_check_mask_compares_against_the_first_image() -> None:
    first = image("jpeg", 10, 20, alpha=False)
    check_mask(image("png", 10, 20, alpha=True), first, param="mask")
    with pytest.raises(InvalidRequest, match="10x20"):
        check_mask(image("png", 20, 10, alpha=True), first, param="mask")
    with pytest.raises(InvalidRequest, match="alpha"):
        check_mask(image("png", 10, 20, alpha=False), first, param="mask")
    with pytest.raises(InvalidRequest) as refused:
        check_mask(image("webp", 10, 20, alpha=True), first, param="mask_image")
    assert refused.value.param == "mask_image"

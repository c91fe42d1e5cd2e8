"""Large ``b64_json`` values lifted out of an OpenAI answer before it is parsed: the same
results as the plain parse, and the plain parse whenever anything is unusual."""

from __future__ import annotations

import orjson
import pybase64
import pytest

from imagegate.errors import UpstreamError
from imagegate.providers import openai_wire as wire
from imagegate.providers._http import parse
from imagegate.providers.lifted import MIN_LIFTED, lift_strings
from imagegate.providers.openai import _parse_images

IMAGE = bytes(range(256)) * 40  # 10 KB: its base64 is over MIN_LIFTED
B64 = pybase64.b64encode(IMAGE).decode()


def _body(*items: dict[str, object], **extra: object) -> bytes:
    return orjson.dumps({"created": 1, "data": list(items), "quality": "low", **extra})


def test_a_large_value_is_lifted_and_the_rest_parses_as_before() -> None:
    other = pybase64.b64encode(IMAGE[::-1]).decode()
    body = _body({"b64_json": B64, "revised_prompt": "a cat"}, {"b64_json": other})
    response, decoded = _parse_images(body, "openai")
    plain = parse(wire.ImagesResponse, body, "openai")
    assert response.model_dump(exclude={"data"}) == plain.model_dump(exclude={"data"})
    assert response.data is not None and plain.data is not None
    for item, expected in zip(response.data, plain.data, strict=True):
        assert item.b64_json is not None and item.b64_json in decoded
        data, text = decoded[item.b64_json]
        assert expected.b64_json is not None
        assert bytes(text) == expected.b64_json.encode()
        assert data == pybase64.b64decode(expected.b64_json)
        assert item.revised_prompt == expected.revised_prompt


@pytest.mark.parametrize(
    "body",
    [
        # an escape the parser must read (JSON allows \/ in base64)
        _body({"b64_json": B64}).replace(b"/", b"\\/"),
        # an escaped quote: the lifted value is cut there, holds a backslash, is not base64
        _body({"b64_json": B64[:5000] + '"' + B64[5000:]}),
        # not base64: the plain path's own error
        _body({"b64_json": "!" * (MIN_LIFTED + 4)}),
        # a lifted value that is no image's
        _body({"url": "https://x/y.png"}, extra={"b64_json": B64}),
        # two values for one image
        _body({"b64_json": B64}).replace(
            b'"b64_json"', b'"b64_json":"' + B64.encode() + b'","b64_json"', 1
        ),
    ],
)
def test_anything_unusual_is_parsed_whole(body: bytes) -> None:
    response, decoded = _parse_images(body, "openai")
    assert decoded == {}
    assert response == parse(wire.ImagesResponse, body, "openai")


def test_a_body_cut_short_fails_as_the_plain_parse_does() -> None:
    body = _body({"b64_json": B64})[:-3]
    with pytest.raises(UpstreamError) as lifted:
        _parse_images(body, "openai")
    with pytest.raises(UpstreamError) as plain:
        parse(wire.ImagesResponse, body, "openai")
    assert str(lifted.value) == str(plain.value)


def test_only_string_values_of_the_key_itself_are_lifted() -> None:
    quoted = orjson.dumps({"revised_prompt": f'"b64_json": "{B64}"', "b64_json": None})
    assert lift_strings(quoted, "b64_json") is None
    assert lift_strings(orjson.dumps({"b64_json": "QUFB"}), "b64_json") is None  # short
    lifted = lift_strings(b'{"b64_json" :\n "' + B64.encode() + b'"}', "b64_json")
    assert lifted is not None and len(lifted.body) < 100
    ((marker, text),) = lifted.values.items()
    assert orjson.loads(lifted.body) == {"b64_json": marker}
    assert bytes(text) == B64.encode()

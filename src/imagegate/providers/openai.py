"""The OpenAI Images adapter, bound to a host described as data.

One translator (:mod:`.openai_wire`), many hosts: ``openai`` (api.openai.com, or wherever
``OPENAI_BASE_URL`` points), ``azure`` (:mod:`.azure`: deployment paths, ``api-version``,
``api-key`` header), ``xai`` (:mod:`.xai`: xAI's host, plus the two fields of its own) and
``openai-compatible`` (:mod:`.openai_compatible`: relays, another imagegate, other gateways —
base URL, auth header and model-name map from the deployment's ``options``). A host is a
:class:`HostOptions` value; a subclass only adds what its dialect adds to the protocol.

Boundary: domain request in, domain result or domain error out, through the injected context's
shared HTTP client, within its deadline. Result URLs are downloaded at once through
``ctx.fetch``. Nothing is logged but sizes; credentials never appear in errors.
"""

from __future__ import annotations

import binascii
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import orjson
import pybase64
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import (
    GeneratedImage,
    ImageRequest,
    ImageResult,
    PartialImage,
    StreamEvent,
    Usage,
)
from imagegate.core.upstream import ProviderContext
from imagegate.errors import ImagegateError, InvalidRequest, ServerError
from imagegate.providers import openai_wire as wire
from imagegate.providers._http import (
    Answer,
    answer_error,
    join,
    json_body,
    open_stream,
    parse,
    read_capped,
    send,
)
from imagegate.providers.errors import bad_response, redact, status_error
from imagegate.providers.lifted import lift_strings
from imagegate.providers.output import decode_b64, no_image, upstream_image

__all__ = ["HostOptions", "OpenAIImagesAdapter", "OpenAIProvider"]

OPENAI_BASE_URL = "https://api.openai.com/v1"


class HostOptions(BaseModel):
    """How one host speaks the OpenAI Images dialect (a deployment's ``options`` table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    """Default base URL (the deployment's ``base_url``/``base_url_env`` win)."""
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    """Put before the key (``""`` sends the bare key, as Azure's ``api-key`` wants)."""
    headers: dict[str, str] = {}
    """Extra static headers (never credentials: those come from the environment)."""
    api_version: str | None = None
    """Sent as the ``api-version`` query parameter (Azure)."""
    deployment_paths: bool = False
    """``/openai/deployments/{model}/images/…`` instead of ``/images/…`` (Azure)."""
    model_map: dict[str, str] = {}
    """Upstream model name → the name this host wants."""
    family: Literal["gpt-image", "dall-e-3", "dall-e-2"] | None = None
    """Which fields the model takes; read from the model name when not given."""
    params: list[str] | None = None
    """The optional fields this host takes, replacing the family's list."""
    response_format: Literal["b64_json", "url"] | None = "b64_json"
    """What to ask for when the host takes ``response_format``."""
    streaming: bool = True
    max_n: int | None = Field(default=None, ge=1, le=10)
    """Most images one call returns (the router fans ``n`` out above it)."""


class _Host:
    __slots__ = ("accepted", "base_url", "family", "headers", "model", "options", "query")

    def __init__(self, options: HostOptions, ctx: ProviderContext, label: str) -> None:
        base_url = ctx.base_url or options.base_url
        if not base_url:
            raise ServerError(f"the {label} deployment has no base URL; set its base_url")
        key = ctx.credentials.get("api_key", "")
        self.options = options
        self.base_url = base_url
        self.model = options.model_map.get(ctx.upstream_model, ctx.upstream_model)
        self.family = wire.family_of(self.model, options.family)
        self.accepted = (
            frozenset(options.params)
            if options.params is not None
            else wire.FAMILY_PARAMS[self.family]
        )
        auth = f"{options.auth_scheme} {key}".strip() if options.auth_scheme else key
        self.headers = {**options.headers, **({options.auth_header: auth} if key else {})}
        self.query = {"api-version": options.api_version} if options.api_version else None

    def url(self, operation: str) -> str:
        path = f"images/{operation}"
        if self.options.deployment_paths:
            path = f"openai/deployments/{self.model}/{path}"
        return join(self.base_url, path)


class OpenAIImagesAdapter:
    """Generations, edits (multipart, several images, mask), variations and streaming."""

    name = "openai"
    defaults: Mapping[str, Any] = {"base_url": OPENAI_BASE_URL}

    def __init__(self) -> None:
        self._hosts: dict[bytes, HostOptions] = {}

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def host_options(self, options: Mapping[str, Any]) -> HostOptions:
        """The validated host for a deployment's ``options`` (cached: deployments are few)."""
        key = orjson.dumps(options, option=orjson.OPT_SORT_KEYS) if options else b""
        found = self._hosts.get(key)
        if found is None:
            try:
                found = HostOptions.model_validate({**self.defaults, **options})
            except ValidationError as exc:
                raise ServerError(f"invalid options for a {self.name} deployment: {exc}") from None
            if len(self._hosts) < 256:
                self._hosts[key] = found
        return found

    def _host(self, ctx: ProviderContext) -> _Host:
        return _Host(self.host_options(ctx.options), ctx, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        host = self._host(ctx)
        if host.options.max_n is not None:
            return host.options.max_n
        return 1 if host.family == "dall-e-3" else 10

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return wire.dropped_params(request, self._host(ctx).accepted)

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        host = self._host(ctx)
        answer = await self._post(request, ctx, host, stream=False)
        if not answer.ok:
            raise self._error(answer, ctx)
        response, decoded = _parse_images(answer.body, self.name)
        items = [item for item in wire.images_of(response) if item.b64_json or item.url]
        images = [await self._image(item, ctx, decoded) for item in items]
        if not images:
            raise no_image(self.name)
        return wire.result_of(response, images, request)

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        host = self._host(ctx)
        if not host.options.streaming:
            yield await self.generate(request, ctx)
            return
        url, content, files, data, headers = self._payload(request, host, stream=True)
        async with open_stream(
            ctx, "POST", url, provider=self.name, headers=headers, content=content,
            files=files, data=data, params=host.query,
        ) as response:  # fmt: skip
            if response.status_code >= 300:
                body = await read_capped(response, self.name, 1 << 20)
                raise self._error(Answer(response.status_code, response.headers, body), ctx)
            finals: list[GeneratedImage] = []
            usage: Usage | None = None
            async for line in response.aiter_lines():
                event = _event(line, self.name)
                if event is None:
                    continue
                if event.type == "error":
                    raise self._stream_error(event, ctx)
                if not event.b64_json:
                    continue
                image = upstream_image(decode_b64(event.b64_json, self.name))
                if event.type.endswith(".partial_image"):
                    yield PartialImage(image, len(finals), event.partial_image_index or 0)
                elif event.type.endswith(".completed"):
                    finals.append(image)
                    usage = event.usage.domain() if event.usage else usage
        if not finals:
            raise bad_response(self.name, "the stream ended without a final image")
        yield ImageResult(
            images=finals,
            usage=usage,
            background="transparent" if request.background == "transparent" else "opaque",
        )

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /models/{model}`` (free); Azure: the ``models`` list of the resource."""
        host = self._host(ctx)
        path = "openai/models" if host.options.deployment_paths else f"models/{host.model}"
        answer = await send(
            ctx, "GET", join(host.base_url, path), provider=self.name,
            headers=host.headers, params=host.query, max_bytes=4 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return f"{host.model}: reachable, credentials accepted"

    def _payload(
        self, request: ImageRequest, host: _Host, *, stream: bool
    ) -> tuple[str, bytes | None, Any, dict[str, str] | None, dict[str, str]]:
        b64 = host.options.response_format == "b64_json"
        if request.operation == "generate":
            body = wire.generation_body(request, host.model, host.accepted, stream=stream, b64=b64)
            headers = {**host.headers, "content-type": "application/json"}
            return host.url("generations"), json_body(body), None, None, headers
        if request.operation in ("edit", "variation"):
            fields, files = wire.edit_form(
                request, host.model, host.accepted, stream=stream, b64=b64
            )
            path = "edits" if request.operation == "edit" else "variations"
            return host.url(path), None, files, fields, host.headers
        raise InvalidRequest(
            f"the {self.name} upstream cannot {request.operation.replace('_', ' ')}",
            code="unsupported_operation",
        )

    async def _post(
        self, request: ImageRequest, ctx: ProviderContext, host: _Host, *, stream: bool
    ) -> Answer:
        url, content, files, data, headers = self._payload(request, host, stream=stream)
        return await send(
            ctx, "POST", url, provider=self.name, headers=headers, content=content,
            files=files, data=data, params=host.query,
        )  # fmt: skip

    async def _image(
        self,
        item: wire.ImageData,
        ctx: ProviderContext,
        decoded: Mapping[str, tuple[bytes, memoryview]],
    ) -> GeneratedImage:
        if item.b64_json:
            lifted = decoded.get(item.b64_json)
            if lifted is not None:
                data, text = lifted
                return upstream_image(data, revised_prompt=item.revised_prompt, b64=text)
            data = decode_b64(item.b64_json, self.name)
            return upstream_image(data, revised_prompt=item.revised_prompt, b64=item.b64_json)
        if ctx.fetch is None or item.url is None:
            raise ServerError("no result downloader was given to the provider adapter")
        data = await ctx.fetch(item.url)
        return upstream_image(data, revised_prompt=item.revised_prompt)

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            envelope: wire.ErrorEnvelope | None = wire.ErrorEnvelope.model_validate_json(
                answer.body
            )
        except ValidationError:
            envelope = None
        message, code, param = wire.error_of(envelope)
        message = redact(message or _plain(answer), ctx.credentials)
        if answer.status < 500:
            passed_on = wire.client_error(answer.status, message, code, param)
            if passed_on is not None:
                return passed_on
        return answer_error(
            answer,
            message,
            provider=self.name,
            credentials=ctx.credentials,
            code=code,
        )

    def _stream_error(self, event: wire.StreamEvent, ctx: ProviderContext) -> ImagegateError:
        envelope = wire.ErrorEnvelope(error=event.error) if event.error else None
        message, code, param = wire.error_of(envelope)
        message = redact(message, ctx.credentials)
        passed_on = wire.client_error(400, message, code, param)
        return passed_on or status_error(
            502, message, provider=self.name, credentials=ctx.credentials, code=code
        )


def _parse_images(
    body: bytes, provider: str
) -> tuple[wire.ImagesResponse, dict[str, tuple[bytes, memoryview]]]:
    """The answer, parsed with its large ``b64_json`` values lifted out first (see
    :mod:`~imagegate.providers.lifted`), and those values decoded: ``{marker: (image bytes,
    base64 text)}`` for the items whose ``b64_json`` is a marker. Anything unusual (the body
    does not parse, a marker is not an image's, a payload is not base64) is parsed again
    whole, so errors and results are exactly those of the plain parse."""
    lifted = lift_strings(body, "b64_json")
    if lifted is not None:
        try:
            response = wire.ImagesResponse.model_validate_json(lifted.body)
        except ValidationError:
            response = None
        if response is not None:
            placed = [i.b64_json for i in wire.images_of(response) if i.b64_json in lifted.values]
            if len(placed) == len(set(placed)) == len(lifted.values):
                try:
                    decoded = {
                        marker: (bytes(pybase64.b64decode(text, validate=True)), text)
                        for marker, text in lifted.values.items()
                    }
                except (ValueError, binascii.Error):
                    pass
                else:
                    return response, decoded
    return parse(wire.ImagesResponse, body, provider), {}


def _event(line: str, provider: str) -> wire.StreamEvent | None:
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        return wire.StreamEvent.model_validate(orjson.loads(payload))
    except (orjson.JSONDecodeError, ValidationError):
        raise bad_response(provider, "a stream event that is not valid JSON") from None


def _plain(answer: Answer) -> str:
    content_type = answer.headers.get("content-type", "")
    return answer.text()[:200] if content_type.startswith("text/") else ""


class OpenAIProvider(OpenAIImagesAdapter):
    """``openai``: api.openai.com (``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` redirects it)."""

    name = "openai"

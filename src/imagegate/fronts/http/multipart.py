"""Multipart form parsing with limits, so a hostile form fails fast with a 400/413."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from imagegate.errors import InvalidRequest, PayloadTooLarge

MAX_FIELDS = 64
MAX_FIELD_BYTES = 1024 * 1024


@asynccontextmanager
async def read_form(request: Request, *, max_files: int) -> AsyncIterator[FormData]:
    """The parsed form, its spooled files closed afterwards; a non-multipart body is a 400."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("send the request as multipart/form-data")
    async with request.form(
        max_files=max_files, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES
    ) as form:
        yield form


async def read_upload(upload: UploadFile, *, param: str, max_bytes: int) -> bytes:
    """An uploaded file's bytes, refused by its size before it is read into memory."""
    if upload.size is not None and upload.size > max_bytes:
        raise PayloadTooLarge(
            f"{param} is {upload.size} bytes; the limit is {max_bytes}", param=param
        )
    return await upload.read()


def text_field(form: FormData, name: str) -> str | None:
    """A plain form field; a file sent where text belongs is a 400."""
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"{name} must be a text field, not a file", param=name)

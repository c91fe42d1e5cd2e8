"""OpenAI Files API: upload, retrieve, download and delete files usable as image inputs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from imagegate.core.files import PURPOSES
from imagegate.core.keys import ApiKey
from imagegate.errors import InvalidRequest
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.blobs import blob_response
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.multipart import read_form, read_upload, text_field
from imagegate.fronts.http.responses import json_response

router = APIRouter(prefix="/v1/files", tags=["Files"])

UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file", "purpose"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"type": "string", "enum": list(PURPOSES)},
    },
}


@router.post(
    "",
    summary="Upload a file (purpose vision or user_data)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": UPLOAD_SCHEMA}},
        }
    },
)
async def upload_file(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    services = services_of(request)
    async with read_form(request, max_files=1) as form:
        purpose = text_field(form, "purpose")
        if purpose not in PURPOSES:
            raise InvalidRequest(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("file is required and must be a file part", param="file")
        data = await read_upload(upload, param="file", max_bytes=services.settings.max_file_bytes)
        filename, content_type = upload.filename, upload.content_type
    stored = await services.files.create(
        owner_key_id=key.id,
        filename=filename or "upload",
        purpose=purpose,
        content_type=content_type or "application/octet-stream",
        data=data,
    )
    return json_response(stored.public())


@router.get("", summary="List your files")
async def list_files(
    request: Request, purpose: str | None = None, key: ApiKey = Depends(require_key)
) -> Response:
    stored = await services_of(request).files.list(key.id, purpose)
    return json_response(
        {"object": "list", "data": [item.public() for item in stored], "has_more": False}
    )


@router.get("/{file_id}", summary="Retrieve a file object")
async def get_file(file_id: str, request: Request, key: ApiKey = Depends(require_key)) -> Response:
    return json_response((await services_of(request).files.get(file_id, key.id)).public())


@router.get("/{file_id}/content", summary="Download a file's content")
async def get_file_content(
    file_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    files = services_of(request).files
    stored = await files.get(file_id, key.id)
    return blob_response(await files.content(stored), stored.content_type)


@router.delete("/{file_id}", summary="Delete a file")
async def delete_file(
    file_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    await services_of(request).files.delete(file_id, key.id)
    return json_response({"id": file_id, "object": "file", "deleted": True})

"""Parse JSON request bodies into pydantic models, turning failures into a 400 naming the field."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from imagegate.errors import InvalidRequest

Body = TypeVar("Body", bound=BaseModel)


async def parse_json_body(request: Request, model: type[Body]) -> Body:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def invalid_request_from(exc: ValidationError) -> InvalidRequest:
    """The first validation problem as a client-facing 400."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return InvalidRequest("the request body is not valid JSON")
    location = [str(part) for part in first["loc"]]
    if not location:
        return InvalidRequest("the request body must be a JSON object")
    param = ".".join(location)
    if first["type"] == "missing":
        return InvalidRequest(f"{param} is required", param=param)
    return InvalidRequest(f"invalid value for {param}: {first['msg']}", param=param)

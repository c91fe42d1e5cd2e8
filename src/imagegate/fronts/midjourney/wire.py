"""Midjourney request bodies (camelCase JSON, unknown fields ignored as the reference does) and
the submit answer ``{"code", "description", "result", "properties"}`` with its business codes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.midjourney.errors import QueueFull
from imagegate.errors import ContentPolicyViolation, ImagegateError, InvalidRequest

PARAMETER_ERROR, QUEUE_FULL, BANNED = 4, 23, 24
DESCRIPTIONS = {1: "Submit success", 21: "Waiting for window confirm", 22: "In queue"}
MAX_IDS = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Task(_Body):
    """Fields every task-making submit takes."""

    bot_type: Literal["MID_JOURNEY", "NIJI_JOURNEY"] | None = Field(None, alias="botType")
    notify_hook: str | None = Field(None, alias="notifyHook")
    state: str | None = None


class AccountFilter(_Body):
    modes: list[Literal["RELAX", "FAST", "TURBO"]] = []


class ImagineBody(_Task):
    prompt: str
    base64_array: list[str] = Field(default_factory=list, alias="base64Array")
    account_filter: AccountFilter | None = Field(None, alias="accountFilter")


class ActionBody(_Task):
    custom_id: str = Field(alias="customId")
    task_id: str = Field(alias="taskId")
    enable_remix: bool = Field(False, alias="enableRemix")
    choose_same_channel: bool = Field(False, alias="chooseSameChannel")


class ModalBody(_Body):
    task_id: str = Field(alias="taskId")
    prompt: str | None = None
    mask_base64: str | None = Field(None, alias="maskBase64")


class BlendBody(_Task):
    base64_array: list[str] = Field(alias="base64Array")
    dimensions: str | None = None


class DescribeBody(_Task):
    base64: str | None = None
    link: str | None = None


class ShortenBody(_Task):
    prompt: str


class EditsBody(_Task):
    image: str
    prompt: str
    mask_base64: str | None = Field(None, alias="maskBase64")


class UploadBody(_Body):
    base64_array: list[str] = Field(alias="base64Array")


class ListBody(_Body):
    ids: list[str] = Field(max_length=MAX_IDS)


def answer(code: int, result: Any, description: str | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "description": description or DESCRIPTIONS.get(code, ""),
        "result": result,
        "properties": {},
    }


def business_code(error: ImagegateError) -> int | None:
    """The code a submit answers ``error`` with (HTTP 200), or None for an HTTP error."""
    if isinstance(error, QueueFull):
        return QUEUE_FULL
    if isinstance(error, ContentPolicyViolation):
        return BANNED
    if isinstance(error, InvalidRequest):
        return PARAMETER_ERROR
    return None


def refusal(error: ImagegateError, code: int) -> dict[str, Any]:
    if code == PARAMETER_ERROR and error.param and error.param not in error.message:
        return answer(code, None, f"{error.message} ({error.param})")
    return answer(code, None, error.message)

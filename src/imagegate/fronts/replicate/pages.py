"""Cursor pagination of ``GET /v1/predictions``: an opaque token for the last prediction a
page showed (its creation time and id), as Replicate's ``next`` links carry one."""

from __future__ import annotations

import binascii

import pybase64

from imagegate.core.task_model import TaskRecord
from imagegate.errors import InvalidRequest

PAGE_SIZE = 100


def encode_cursor(task: TaskRecord) -> str:
    return pybase64.urlsafe_b64encode(f"{task.created_at!r}|{task.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, _, task_id = pybase64.urlsafe_b64decode(cursor).decode().partition("|")
        return float(created_at), task_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("cursor is not one this gateway issued", param="cursor") from None

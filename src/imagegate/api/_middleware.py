"""Raw ASGI middleware: request ids, the body-size limit and one access-log line per request."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.api._errors import error_response_for_path
from imagegate.errors import PayloadTooLarge
from imagegate.storage.outage import outage_error

log = logging.getLogger("imagegate.access")

CLIENT_CLOSED_REQUEST = 499
"""The access log's status for a request that got no answer because its client went away
(nginx's convention)."""


class GatewayMiddleware:
    """Gives each request an id (``x-request-id``), refuses oversize bodies, logs one line."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = CLIENT_CLOSED_REQUEST
        answered = False
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                extra = [
                    (k.encode(), v.encode()) for k, v in state.get("response_headers", {}).items()
                ]
                message["headers"] = [*message.get("headers", []), header, *extra]
            await send(message)

        try:
            if self._declared_too_large(scope):
                await self._refuse(scope, receive, send_with_id, request_id)
                return
            await self.app(scope, self._limited(receive), send_with_id)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send_with_id, request_id)
        except Exception as exc:
            unavailable = None if answered else outage_error(exc)
            if unavailable is None:
                status = 500
                raise
            log.warning("storage unavailable on %s: %s", scope["path"], type(exc).__name__)
            response = error_response_for_path(scope["path"], unavailable, request_id)
            await response(scope, receive, send_with_id)
        finally:
            release = state.get("release")
            if release is not None:
                release()
            self._log(scope, state, status, started)

    def _declared_too_large(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return not value.isdigit() or int(value) > self.max_body_bytes
        return False

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        return limited

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        error = PayloadTooLarge(
            f"request body exceeds the {self.max_body_bytes} byte limit", code="body_too_large"
        )
        response = error_response_for_path(scope["path"], error, request_id)
        await response(scope, receive, send)

    @staticmethod
    def _log(scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        line = {
            "request_id": state["request_id"],
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            **state.get("log", {}),
        }
        log.info(orjson.dumps(line).decode())


class _BodyTooLarge(Exception):
    pass

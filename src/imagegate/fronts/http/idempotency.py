"""``Idempotency-Key`` on every POST: same key and body within 24 h → the stored answer is
replayed and nothing runs or is charged again; same key still running → 409; same key with
another body → 422. Keys are scoped to the caller's credential."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.core.idempotency import IdempotencyStore, StoredResponse
from imagegate.errors import Conflict, IdempotencyMismatch, ImagegateError, InvalidRequest
from imagegate.fronts.http.errors import Envelopes

MAX_KEY_LENGTH = 255
_CREDENTIAL_HEADERS = (
    b"authorization", b"x-goog-api-key", b"mj-api-secret", b"x-key", b"api_token",
)  # fmt: skip
_NOT_KEPT = frozenset({401, 409, 429})
"""Answers a retry should not get again: it may succeed once the cause is gone."""


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, envelopes: Envelopes) -> None:
        self.app = app
        self.envelopes = envelopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key")
        if scope["type"] != "http" or scope["method"] != "POST" or key is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._idempotent(scope, receive, send, key)
        except ImagegateError as error:
            request_id = scope.get("state", {}).get("request_id", "")
            await self.envelopes.response(scope["path"], error, request_id)(scope, receive, send)

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidRequest(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                param="Idempotency-Key",
            )
        body = await _read_body(receive)
        owner = _owner(scope)
        digest = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        store: IdempotencyStore = scope["app"].state.services.idempotency
        claim = await store.claim(owner, key, digest)
        if claim.outcome == "mismatch":
            raise IdempotencyMismatch(
                "this Idempotency-Key was used with a different request body",
                param="Idempotency-Key",
            )
        if claim.outcome == "in_flight":
            raise Conflict(
                "a request with this Idempotency-Key is still running; retry later",
                param="Idempotency-Key",
                retry_after=1,
            )
        if claim.response is not None:
            await _replay(claim.response, send)
            return
        await self._run_and_keep(scope, body, send, store, owner, key)

    async def _run_and_keep(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        store: IdempotencyStore,
        owner: str,
        key: str,
    ) -> None:
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def replay_body() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        kept = False
        try:
            await self.app(scope, replay_body, capture)
            status = captured["status"]
            if status < 500 and status not in _NOT_KEPT:
                response = StoredResponse(status, captured["headers"], b"".join(captured["body"]))
                await store.store(owner, key, response)
                kept = True
        finally:
            if not kept:
                await store.forget(owner, key)


async def _replay(response: StoredResponse, send: Send) -> None:
    headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
    ]
    headers = [(name, value) for name, value in headers if name != b"x-request-id"]
    headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope.get("headers", []):
        if header == name:
            return str(value.decode("latin-1"))
    return None


def _owner(scope: Scope) -> str:
    """A hash of the caller's credential, so keys never collide across callers."""
    parts = [value for name, value in scope.get("headers", []) if name in _CREDENTIAL_HEADERS]
    parts.append(scope.get("query_string", b"") if not parts else b"")
    return hashlib.sha256(b"\0".join(parts)).hexdigest()

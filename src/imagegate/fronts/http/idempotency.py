"""``Idempotency-Key`` on every POST: same key and body within 24 h → the stored answer is
replayed and nothing runs or is charged again; same key still running → 409; same key with
another body → 422. Keys are scoped to the caller's API key (its id, whichever header carried
it), and only an authenticated caller's key is recorded: a request whose credentials match no
key passes through untouched (its route answers 401), and an answer that comes from
authentication or routing (401, 403, 404, 405) is never kept."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.core.idempotency import IdempotencyStore, StoredResponse
from imagegate.core.lost_attempts import void_attempt
from imagegate.errors import Conflict, IdempotencyMismatch, ImagegateError, InvalidRequest
from imagegate.fronts.http.errors import Envelopes

log = logging.getLogger("imagegate.idempotency")

MAX_KEY_LENGTH = 255
_NOT_KEPT = frozenset({401, 403, 404, 405, 409, 429})
"""Answers a retry should not get again: it may succeed once the cause is gone, or they come
from authentication and routing, before anything ran."""


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        envelopes: Envelopes,
        credential_headers: Iterable[str] = (),
        outages: tuple[type[Exception], ...] = (),
    ) -> None:
        """``credential_headers``: where the fronts take a key besides ``Authorization``;
        ``outages``: what a storage service that is down raises (logged, never answered)."""
        self.app = app
        self.envelopes = envelopes
        self.credentials = frozenset(
            {b"authorization", *(name.lower().encode() for name in credential_headers)}
        )
        self.outages = outages

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
        owner = await _key_id(scope, self.credentials)
        if owner is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        digest = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        services = scope["app"].state.services
        store: IdempotencyStore = services.idempotency
        request_id = scope.get("state", {}).get("request_id")
        claim = await store.claim(owner, key, digest, request_id=request_id)
        if claim.replaces is not None:
            # The attempt this retry replaces never got its answer to the client: its tasks are
            # cancelled and what it charged is given back, as this run does it again.
            await void_attempt(services.billing, services.tasks, owner, claim.replaces)
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

        last: list[Message] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Held until the answer is recorded: a client that has its whole answer
                    # must find it kept if it retries (a crash in between only drops the
                    # connection, and the retry takes the record over).
                    last.append(message)
                    return
            await send(message)

        kept = False
        try:
            await self.app(scope, replay_body, capture)
            status = captured["status"]
            if status < 500 and status not in _NOT_KEPT:
                response = StoredResponse(status, captured["headers"], b"".join(captured["body"]))
                kept = await _quietly(store.store(owner, key, response), self.outages)
        finally:
            if not kept:
                # Failing now would only hide the answer. A record left in flight is taken
                # over by a retry once its lease runs out.
                await _quietly(store.forget(owner, key), self.outages)
            for message in last:
                await send(message)


async def _quietly(write: Awaitable[None], outages: tuple[type[Exception], ...]) -> bool:
    """Whether ``write`` succeeded; a storage outage (one of ``outages``) is logged, not
    raised."""
    try:
        await write
    except outages as exc:
        log.warning("could not record an Idempotency-Key: %s", type(exc).__name__)
        return False
    return True


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


async def _key_id(scope: Scope, credentials: frozenset[bytes]) -> str | None:
    """The id of the API key among the request's credentials (any header or the ``?key=``
    parameter a route accepts), or None when none is a valid key."""
    keys = scope["app"].state.services.keys
    for secret in _presented(scope, credentials):
        key = await keys.authenticate(secret)
        if key is not None:
            return str(key.id)
    return None


def _presented(scope: Scope, credentials: frozenset[bytes]) -> list[str]:
    secrets: list[str] = []
    for name, raw in scope.get("headers", []):
        if name not in credentials:
            continue
        value = raw.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, rest = value.partition(" ")
            value = rest.strip() if scheme.lower() == "bearer" else value
        if value:
            secrets.append(value)
    query = scope.get("query_string", b"").decode("latin-1")
    secrets.extend(value for name, value in parse_qsl(query) if name == "key" and value)
    return secrets

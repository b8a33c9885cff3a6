"""A pure-ASGI guard around the whole application: how much of a request body each route may read, and how long
a client may take to send it (DESIGN §9: unauthenticated endpoints read at most what they need; 408 for a body
that does not arrive within the read timeout).

It runs for every request, so a route that never reads its body is covered too:
- a declared Content-Length over the route's cap is answered 413 before the application sees the request, and a
  body that streams past the cap is answered 413 as soon as it does;
- the time the application spends waiting for body bytes adds up, and past the timeout the client gets a 408;
- a response that leaves part of the body unread closes the connection, so a client trickling a body the route
  never wanted cannot keep the connection open (uvicorn would otherwise read and discard it for as long as the
  client keeps sending).
When the guard answers, the application's own reading ends as if the client had gone away, and whatever the
application still tries to send is dropped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB = 1024
MIB = 1024 * KIB
# `POST /login` reads one small form field; GitHub caps webhook payloads at 25 MB; a route not named here takes
# no body worth more than a small JSON document.
LOGIN_BYTES = 4 * KIB
WEBHOOK_BYTES = 25 * MIB
OTHER_BYTES = 64 * KIB
_DISCONNECT: Message = {"type": "http.disconnect"}


def body_cap(path: str, *, ingest_bytes: int) -> int:
    """The most body bytes a request to `path` may send."""
    if path == "/login":
        return LOGIN_BYTES
    if path == "/github/webhook":
        return WEBHOOK_BYTES
    if path == "/v1/usage" or path.startswith("/v1/ingest/"):
        return ingest_bytes
    return OTHER_BYTES


class BodyGuard:
    def __init__(self, app: App, *, ingest_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.ingest_bytes = ingest_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(scope["path"], ingest_bytes=self.ingest_bytes)
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        declared = _content_length(headers.get(b"content-length"))
        if declared is not None and declared > cap:
            await _answer(send, 413, f"body is larger than {cap} bytes")
            return
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        request = _Request(cap=cap, timeout=self.timeout_seconds, receive=receive, send=send)
        request.body_done = not chunked and not declared
        try:
            await self.app(scope, request.receive, request.send)
        except Exception:
            if request.answered:
                return  # the application failed because the guard ended its body: the client has its answer
            raise


class _Request:
    """One request's reading: bytes received, seconds spent waiting for them, and whether the guard answered."""

    def __init__(self, *, cap: int, timeout: float, receive: Receive, send: Send) -> None:
        self.cap, self.timeout, self.receive_next, self.send_next = cap, timeout, receive, send
        self.received, self.waited = 0, 0.0
        self.body_done = self.response_started = self.answered = False

    async def receive(self) -> Message:
        if self.answered:
            return _DISCONNECT
        if self.body_done:
            return await self.receive_next()  # e.g. waiting for a disconnect while streaming a response
        remaining = self.timeout - self.waited
        started = time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                message = await self.receive_next()
        except TimeoutError:
            await self.refuse(408, f"the request body did not arrive within {self.timeout:g} s")
            return _DISCONNECT
        finally:
            self.waited += time.monotonic() - started
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.cap:
                await self.refuse(413, f"body is larger than {self.cap} bytes")
                return _DISCONNECT
            if not message.get("more_body", False):
                self.body_done = True
        elif message["type"] == "http.disconnect":
            self.body_done = True
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the guard already answered this request
        if message["type"] == "http.response.start":
            self.response_started = True
            if not self.body_done:
                # Part of the body is still unread: close rather than read and discard it for as long as the
                # client keeps sending.
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await self.send_next(message)

    async def refuse(self, status: int, detail: str) -> None:
        self.answered = True
        if not self.response_started:
            await _answer(self.send_next, status, detail)


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _content_length(value: bytes | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)

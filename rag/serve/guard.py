"""The server's gate, as ASGI middleware before the API and the chat: rate, read token, body size.

Each request is checked in this order, and refused with the API's JSON error shape:

1. the client's rate (``Access.limiter``), for the API and the chat's queue: 429 with ``Retry-After``;
2. the read token, when one is set: a ``Bearer`` token or the login cookie; a browser asking
   for a page is sent to ``/login``, anything else gets 401;
3. the body's size: 413 above ``Limits.body_bytes`` (an upload: ``Limits.upload_request_bytes``),
   from ``Content-Length``, or counted as it arrives when there is none.

Writing is checked where it happens (``rag.serve.api``, ``rag.serve.ui``), against the write token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from rag.serve.access import COOKIE, Access, bearer, retry_after

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/login",)  # reachable without the read token
COUNTED = ("/api/", "/gradio_api/queue/join", "/gradio_api/run/", "/gradio_api/upload")  # rate-limited
UPLOADS = ("/api/documents", "/gradio_api/upload")  # bodies of files, not JSON


class Guard:
    """ASGI middleware that applies ``access`` to every HTTP request (see the module's notes)."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = (scope.get("client") or ("unknown", 0))[0]
        if path.startswith(COUNTED):
            wait = self.access.limiter.take(client)
            if wait:
                await _error(send, 429, f"too many requests from {client}: try again in {retry_after(wait)} s",
                             [(b"retry-after", retry_after(wait).encode())])
                return
        tokens = self.access.tokens
        if tokens.reading_needs_token and not path.startswith(OPEN_PATHS):
            if not (tokens.can_read(bearer(headers.get("authorization"))) or
                    tokens.can_read_session(_cookie(headers.get("cookie", ""), COOKIE))):
                if method == "GET" and "text/html" in headers.get("accept", ""):
                    target = quote(path + ("?" + scope["query_string"].decode("latin-1")
                                           if scope.get("query_string") else ""), safe="")
                    await _send(send, 303, b"", [(b"location", f"/login?next={target}".encode())])
                else:
                    await _error(send, 401, "this server needs the read token: send Authorization: Bearer TOKEN")
                return
        limit = self.access.limits.upload_request_bytes if path.startswith(UPLOADS) else \
            self.access.limits.body_bytes
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await _error(send, 413, f"the request body is over this server's limit of {limit:,} bytes")
                return
        elif method in ("POST", "PUT", "PATCH"):
            body = await _read_at_most(receive, limit)
            if body is None:
                await _error(send, 413, f"the request body is over this server's limit of {limit:,} bytes")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """A chunked body, whole, or None once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send(send, status, json.dumps({"error": message}).encode(),
                [(b"content-type", b"application/json"), *(headers or [])])


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})

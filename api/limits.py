"""Request body size limit: over NEWSRAG_MAX_BODY_BYTES is a 413 JSON error, before any parsing.

A pure ASGI middleware, so it sees the body as it streams: a declared `Content-Length` over the limit
is refused without reading anything, and a chunked body is counted and cut off at the limit.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.validation import MAX_BODY_BYTES

from .errors import error_body


class BodyTooLarge(HTTPException):
    """Raised inside `receive` once a streamed body passes the limit; the app's handler makes it a 413."""

    def __init__(self, limit: int):
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"request body is over {limit} bytes, the limit (NEWSRAG_MAX_BODY_BYTES)"


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with `{"error": {"code": "too_large", ...}}` and 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._refuse(send, 400, "bad_request", "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await self._refuse(send, 413, "too_large", too_large_message(self.max_bytes))
                return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(send, 413, "too_large", exc.detail)

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps(error_body(code, message)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def install(app, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Add the limit as the outermost middleware, so nothing reads a body before it is counted."""
    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)

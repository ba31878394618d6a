"""One pure ASGI middleware that times every HTTP request, tags it with a request id, and tells listeners."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from fastapi import FastAPI

HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a caller's id is kept only when it is this tame


@dataclass
class Finished:
    """A request that has been answered (or failed): what logs and metrics record."""

    scope: dict
    request_id: str
    status: int
    seconds: float


Listener = Callable[[Finished], None]


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is well formed, else a fresh random one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            given = value.decode("latin-1").strip()
            if _GOOD_ID.match(given):
                return given
    return uuid.uuid4().hex


class RequestObserver:
    """Echoes the request id in the response and reports status and duration once the request ends."""

    def __init__(self, app, listeners: list[Listener]):
        self.app = app
        self.listeners = listeners

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope.get("headers", []))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER.lower().encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            done = Finished(scope, rid, status, time.perf_counter() - started)
            for listener in self.listeners:
                listener(done)


def listen(app: FastAPI, listener: Listener) -> None:
    """Have `listener` told of every finished request; the middleware is added with the first listener."""
    listeners = getattr(app.state, "request_listeners", None)
    if listeners is None:
        app.state.request_listeners = listeners = []
        app.add_middleware(RequestObserver, listeners=listeners)
    listeners.append(listener)

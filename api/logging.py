"""Structured request logs: one JSON line per request on stderr, tied together by an `X-Request-ID`."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from fastapi import FastAPI

from .metrics import route_label

LOGGER = "newsrag.requests"
HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a caller's id is kept only when it is this tame


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, message, and the fields passed in `extra={"fields": ...}`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time, so redirected or captured stderr gets the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never break a request
            self.handleError(record)


def request_logger() -> logging.Logger:
    """The request logger, given its JSON stderr handler once per process."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is well formed, else a fresh random one."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            given = value.decode("latin-1").strip()
            if _GOOD_ID.match(given):
                return given
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Pure ASGI middleware: assigns the request id, echoes it in the response, logs the request."""

    def __init__(self, app, logger: logging.Logger):
        self.app = app
        self.logger = logger

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
            client = scope.get("client")
            fields = {"request_id": rid, "method": scope["method"], "path": scope["path"],
                      "route": route_label(scope), "status": status,
                      "ms": round((time.perf_counter() - started) * 1e3, 3),
                      "client": client[0] if client else None}
            self.logger.log(logging.INFO if status < 500 else logging.ERROR, "request", extra={"fields": fields})


def install(app: FastAPI) -> None:
    """Log every request as one JSON line with its request id."""
    app.add_middleware(RequestLogMiddleware, logger=request_logger())

"""Structured request logs: one JSON line per request on stderr, tied together by an `X-Request-ID`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from fastapi import FastAPI

from .metrics import route_label
from .observe import Finished, listen

LOGGER = "newsrag.requests"


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


def log_request(logger: logging.Logger):
    """A listener that logs a finished request as one JSON line, at ERROR for a 5xx."""

    def log(done: Finished) -> None:
        client = done.scope.get("client")
        fields = {"request_id": done.request_id, "method": done.scope["method"], "path": done.scope["path"],
                  "route": route_label(done.scope), "status": done.status, "ms": round(done.seconds * 1e3, 3),
                  "client": client[0] if client else None}
        logger.log(logging.INFO if done.status < 500 else logging.ERROR, "request", extra={"fields": fields})

    return log


def install(app: FastAPI) -> None:
    """Log every request as one JSON line with its request id."""
    listen(app, log_request(request_logger()))

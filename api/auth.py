"""Write access: a key when NEWSRAG_API_KEY is set, else writes only while bound to loopback."""

from __future__ import annotations

import hmac
import ipaddress
import os

from fastapi import HTTPException, Request


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def require_write(request: Request) -> None:
    """401 without a key, 403 with a wrong one; compared in constant time."""
    expected = os.environ.get("NEWSRAG_API_KEY")
    if not expected:
        if is_loopback(request.app.state.newsrag.host):
            return
        raise HTTPException(403, "writes are disabled: set NEWSRAG_API_KEY to allow them on a non-loopback address")
    key = presented_key(request)
    if key is None:
        raise HTTPException(401, "this endpoint needs an API key (Authorization: Bearer KEY or X-API-Key)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(403, "wrong API key")

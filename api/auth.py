"""Access: writes need NEWSRAG_API_KEY (or, when it is unset, a loopback server, a loopback Host and no
foreign Origin: a DNS-rebinding page reaches 127.0.0.1 but sends its own Host and Origin); reads are open
unless NEWSRAG_READ_KEY is set. Keys come as `Authorization: Bearer KEY` or `X-API-Key: KEY`; for reads
also as the `newsrag_read_key` cookie, which the web page sets when the user types the key (a browser cannot
add headers to a link it follows). Writes never take the cookie, so another site cannot borrow it.

401 means no key was presented; 403 means a key was presented and is wrong, or writes are off.
Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from urllib.parse import unquote, urlsplit

from fastapi import HTTPException, Request

OPEN_PATHS = frozenset({"/health", "/"})  # liveness and the page shell (no articles in it) stay open
READ_COOKIE = "newsrag_read_key"


def is_loopback(host: str) -> bool:
    """True only for addresses that accept no connection from another machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "", "0.0.0.0" and host names may listen on every interface


def _host_name(netloc: str) -> str:
    """The host of a `Host` header or an origin's netloc, without port or brackets ('' when malformed)."""
    try:
        return urlsplit("//" + netloc).hostname or ""
    except ValueError:
        return ""


def from_this_machine(request: Request) -> str | None:
    """Why a keyless write is refused, or None: the Host must be a loopback name, and an Origin, when a
    page sent one, this server's own (its host and port those of the Host header)."""
    host = request.headers.get("host", "")
    if not is_loopback(_host_name(host)):
        return f"Host {host!r} is not a loopback name"
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
            return f"Origin {origin!r} is not this server's own"
    return None


def presented_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer` or `X-API-Key`; None when neither carries one."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip() or None


def _matches(key: str, expected: list[str]) -> bool:
    """Compare against every accepted key in constant time (no early exit on the first match)."""
    found = False
    for candidate in expected:
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


def _require_key(key: str | None, expected: list[str], what: str) -> None:
    if key is None:
        raise HTTPException(401, f"{what} need an API key (Authorization: Bearer KEY or X-API-Key: KEY)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not _matches(key, expected):
        raise HTTPException(403, "wrong API key")


def require_write(request: Request) -> None:
    """Writes: the NEWSRAG_API_KEY when set; without it, only a server bound to loopback accepts them,
    and only from this machine's own clients (`from_this_machine`)."""
    expected = os.environ.get("NEWSRAG_API_KEY")
    if expected:
        _require_key(presented_key(request), [expected], "writes")
        return
    if not is_loopback(request.app.state.newsrag.host):
        raise HTTPException(403, "writes are disabled: set NEWSRAG_API_KEY to allow them on a non-loopback address")
    refused = from_this_machine(request)
    if refused:
        raise HTTPException(403, f"writes without NEWSRAG_API_KEY come from this machine only: {refused}")


def holds_write_key(request: Request) -> bool:
    """Whether the request presents NEWSRAG_API_KEY (False when it is unset): the MCP tools' writes
    need the key even from this machine."""
    expected = os.environ.get("NEWSRAG_API_KEY")
    key = presented_key(request)
    return bool(expected and key and _matches(key, [expected]))


def require_read(request: Request) -> None:
    """Reads: open unless NEWSRAG_READ_KEY is set; then that key (or the write key) is needed."""
    read_key = os.environ.get("NEWSRAG_READ_KEY")
    if not read_key or request.url.path in OPEN_PATHS:
        return
    write_key = os.environ.get("NEWSRAG_API_KEY")
    key = presented_key(request) or unquote(request.cookies.get(READ_COOKIE, "")).strip() or None
    _require_key(key, [read_key] + ([write_key] if write_key else []), "reads")

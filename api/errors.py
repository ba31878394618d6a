"""Maps library exceptions and HTTP errors to `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import errors

STATUS = {
    errors.InvalidInput: 422,
    errors.TooLarge: 413,
    errors.IndexNotFound: 404,
    errors.ArticleNotFound: 404,
    errors.EmptyIndex: 409,
    errors.IndexMismatch: 409,
    errors.IndexLocked: 409,
    errors.LoadError: 422,
}
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_input",
               429: "too_many_requests"}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def install(app: FastAPI) -> None:
    """Register the handlers so every error, validation, 404/405 and server bugs included, has one JSON shape."""

    @app.exception_handler(errors.NewsragError)
    async def _library(_: Request, exc: errors.NewsragError):
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        return JSONResponse(error_body(exc.code, exc.message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse(error_body("invalid_input", "; ".join(parts) or "invalid request"), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        # A server bug, not bad input: still the one JSON shape, never a text/plain page. Starlette
        # re-raises it after this response, so the traceback reaches the server log.
        return JSONResponse(error_body("internal_error", f"internal error ({type(exc).__name__}); "
                                       "the server log has the details"), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return http_error(exc)


def http_error(exc: StarletteHTTPException) -> JSONResponse:
    """An HTTP error (auth, 404, 405, ...) as the envelope, its headers kept (`WWW-Authenticate`)."""
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

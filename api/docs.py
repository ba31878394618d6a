"""`/openapi.json`, `/docs`, `/redoc` as ordinary routes, so the app's read guard covers them too:
FastAPI's own copies sit outside its dependencies and would describe a closed API to anyone."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

BUILT_IN_OFF = {"openapi_url": None, "docs_url": None, "redoc_url": None}  # FastAPI(...) kwargs: ours replace them

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi(request: Request) -> dict:
    return request.app.openapi()


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} docs")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} docs")


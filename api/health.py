"""`GET /health`: whether the model and index are loaded."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness, and whether the index is loaded")
def health(request: Request) -> dict:
    state = request.app.state.newsrag
    loaded = state.loaded()
    body = {"status": "ok", "index_loaded": loaded, "index": state.default}
    if loaded:
        archive = state.archive()
        body["articles"] = archive.count("articles")
        body["chunks"] = archive.count("chunks")
    return body

"""`newsrag serve --shards URL,URL`: a front that fans `/search` out to shard servers and merges exactly."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.shards import HttpShards
from rag.validation import MAX_K, MAX_QUESTION_CHARS, validate_question

from . import errors


class FrontSearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    k: int = Field(5, ge=1, le=MAX_K)
    mode: str | None = Field(None, description="dense (exact merge, the default) or bm25 (per-shard statistics)")


def create_front(urls: list[str]) -> FastAPI:
    """The front app: POST /search over all shards, GET /health naming them."""
    shards = HttpShards(urls)
    app = FastAPI(title="newsrag shard front", version="0.1.0")
    errors.install(app)

    @app.post("/search", summary="Cited passages from every shard, merged as one index would rank them")
    def search(body: FrontSearchIn) -> dict:
        question = validate_question(body.question, body.k)
        passages = shards.search(question, body.k, body.mode)
        return {"question": question, "passages": [p.to_json() for p in passages],
                "retrieval": {"mode": body.mode or "dense", "k": body.k, "shards": len(shards.urls)}}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "index_loaded": True, "shards": shards.urls}

    @app.exception_handler(httpx.HTTPError)
    def shard_failed(request: Request, exc: httpx.HTTPError) -> JSONResponse:
        return JSONResponse(errors.error_body("shard_unavailable", f"a shard failed: {exc}"), status_code=502)

    return app

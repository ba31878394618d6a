"""Sharded serving over HTTP: the `/shard/*` rounds every `newsrag serve` answers, and the front
(`newsrag serve --shards URL,URL`) that asks them and merges as one index ranks (rag/shards.py)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rag import shards as sharding
from rag.errors import InvalidInput
from rag.lexical import CorpusStats
from rag.retrieval import Filters
from rag.shards import HttpShards
from rag.validation import MAX_K, MAX_QUESTION_CHARS, validate_question

from . import auth, docs, errors
from .schemas import FiltersIn

MAX_DEPTH = 1000  # chunks one shard ranks per list (a front asks for max(3k, fusion depth))


Count = Annotated[int, Field(ge=0, le=2**48)]


class CorpusIn(BaseModel):
    documents: Count
    length: Count
    df: dict[str, Count] = Field(..., max_length=1000)


class ShardAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    index: str | None = Field(None, description="index name (default: the served index)")


class PlanIn(ShardAsk):
    dated: FiltersIn | None = Field(None, description="the time the question names: does any article fall in it?")


class HitsIn(ShardAsk):
    depth: int = Field(..., ge=1, le=MAX_DEPTH)
    mode: Literal["dense", "bm25", "hybrid"]
    filters: FiltersIn | None = None
    corpus: CorpusIn


class RescoreIn(ShardAsk):
    candidates: list[tuple[Annotated[int, Field(ge=0, lt=2**63)], float | None]] = Field(..., max_length=MAX_DEPTH)
    corpus: CorpusIn


class ArticlesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(..., max_length=MAX_DEPTH)
    index: str | None = None


def _filters(body: FiltersIn | None) -> Filters | None:
    return None if body is None else sharding.filters_from_json(body.model_dump())


def _corpus(body: CorpusIn) -> CorpusStats:
    """Statistics a front summed; inconsistent ones (a term in more documents than exist, terms in
    documents of no length) are refused rather than scored."""
    if any(n < 0 or n > body.documents for n in body.df.values()) or (body.length == 0 and any(body.df.values())):
        raise InvalidInput("corpus statistics are inconsistent: 0 <= df <= documents, and length > 0 when df > 0")
    return CorpusStats(body.documents, body.length, dict(body.df))


shard_router = APIRouter(prefix="/shard", tags=["shards"])


@shard_router.post("/plan", summary="Round 1 of a sharded search: BM25 statistics for the question's terms")
def shard_plan(body: PlanIn, request: Request) -> dict:
    archive = request.app.state.newsrag.archive(body.index)
    return sharding.plan(archive, validate_question(body.question, 1), _filters(body.dated)).to_json()


@shard_router.post("/hits", summary="Round 2: this shard's ranked chunks, BM25 under the collection's statistics")
def shard_hits(body: HitsIn, request: Request) -> dict:
    archive = request.app.state.newsrag.archive(body.index)
    found = sharding.hits(archive, validate_question(body.question, 1), body.depth, body.mode, _filters(body.filters), _corpus(body.corpus))
    return {"hits": {kind: [h.to_json() for h in rows] for kind, rows in found.items()}}


@shard_router.post("/rescore", summary="Round 3 (hybrid): second-stage scores of this shard's fused candidates")
def shard_rescore(body: RescoreIn, request: Request) -> dict:
    archive = request.app.state.newsrag.archive(body.index)
    scored = sharding.rescore(archive, validate_question(body.question, 1), [tuple(c) for c in body.candidates], _corpus(body.corpus))
    return {"scores": [[cid, score, dense] for cid, (score, dense) in scored.items()]}


@shard_router.post("/articles", summary="The articles a front's passages cite")
def shard_articles(body: ArticlesIn, request: Request) -> dict:
    found = request.app.state.newsrag.archive(body.index).store.get_articles(body.ids)
    return {"articles": [{"id": a.id, "title": a.title, "date": a.date, "url": a.url, "source": a.source,
                          "text": a.text} for a in found.values()]}


class FrontSearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    k: int = Field(5, ge=1, le=MAX_K)
    mode: str | None = Field(None, description="dense, bm25 or hybrid (default), merged as one index ranks")
    filters: FiltersIn | None = None
    recency: Literal["none", "prefer_recent"] = "none"
    as_of: str | None = Field(None, description="YYYY-MM-DD: 'today' for relative times in the question")


def create_front(urls: list[str]) -> FastAPI:
    """The front app: POST /search over all shards, GET /health naming them. Reads are guarded as on
    a shard server (NEWSRAG_READ_KEY), and that key is passed on to the shards."""
    read_key = os.environ.get("NEWSRAG_READ_KEY")
    shards = HttpShards(urls, headers={"X-API-Key": read_key} if read_key else None)
    app = FastAPI(title="newsrag shard front", version="0.1.0", dependencies=[Depends(auth.require_read)],
                  **docs.BUILT_IN_OFF)
    errors.install(app)
    app.include_router(docs.router)

    @app.post("/search", summary="Cited passages from every shard, merged as one index would rank them")
    def search(body: FrontSearchIn) -> dict:
        question = validate_question(body.question, body.k)
        passages, retrieval = shards.search(question, body.k, body.mode, _filters(body.filters), body.recency,
                                            body.as_of)
        return {"question": question, "passages": [p.to_json() for p in passages], "retrieval": retrieval}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "index_loaded": True, "shards": shards.urls}

    @app.exception_handler(httpx.HTTPError)
    def shard_failed(request: Request, exc: httpx.HTTPError) -> JSONResponse:
        return JSONResponse(errors.error_body("shard_unavailable", f"a shard failed: {exc}"), status_code=502)

    return app

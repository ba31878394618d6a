"""Sharded serving over HTTP: the `/shard/*` rounds every `newsrag serve` answers (rag/source.py's
protocol), and the front (`newsrag serve --shards URL,URL`) that asks them through the one search
pipeline (rag/search.py), so its `/search` and `/answer` equal one index's."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.errors import InvalidInput
from rag.lexical import CorpusStats
from rag.query import Filters
from rag.reader import load_reader
from rag.settings import Settings
from rag.shards import HttpShards
from rag.validation import MAX_QUESTION_CHARS, validate_question

from . import auth, docs, errors
from .answer import query_of
from .schemas import AskIn, FiltersIn

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
    with_stats: bool = Field(True, description="report BM25 statistics for the question's terms")


class HitsIn(ShardAsk):
    depth: int = Field(..., ge=1, le=MAX_DEPTH)
    mode: Literal["dense", "bm25", "hybrid"]
    filters: FiltersIn | None = None
    corpus: CorpusIn | None = Field(None, description="the collection's statistics; none: this shard is all of it")


class RescoreIn(ShardAsk):
    candidates: list[tuple[Annotated[int, Field(ge=0, lt=2**63)], float | None]] = Field(..., max_length=MAX_DEPTH)
    corpus: CorpusIn | None = None


class ArticlesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(..., max_length=MAX_DEPTH)
    index: str | None = None


class SentencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    article_id: str = Field(..., max_length=256)
    start: int = Field(..., ge=0, lt=2**63)
    end: int = Field(..., ge=0, lt=2**63)
    index: str | None = None


def _filters(body: FiltersIn | None) -> Filters | None:
    return None if body is None else Filters.from_dict(body.model_dump())


def _corpus(body: CorpusIn | None) -> CorpusStats | None:
    """Statistics a front summed; inconsistent ones (a term in more documents than exist, terms in
    documents of no length) are refused rather than scored."""
    if body is None:
        return None
    if any(n < 0 or n > body.documents for n in body.df.values()) or (body.length == 0 and any(body.df.values())):
        raise InvalidInput("corpus statistics are inconsistent: 0 <= df <= documents, and length > 0 when df > 0")
    return CorpusStats(body.documents, body.length, dict(body.df))


shard_router = APIRouter(prefix="/shard", tags=["shards"])


def _source(request: Request, index: str | None):
    return request.app.state.newsrag.archive(index).source


@shard_router.post("/plan", summary="Round 1 of a sharded search: BM25 statistics for the question's terms")
def shard_plan(body: PlanIn, request: Request) -> dict:
    question = validate_question(body.question, 1)
    return _source(request, body.index).plan(question, _filters(body.dated), body.with_stats).to_json()


@shard_router.post("/hits", summary="Round 2: this shard's ranked chunks, BM25 under the collection's statistics")
def shard_hits(body: HitsIn, request: Request) -> dict:
    found = _source(request, body.index).hits(validate_question(body.question, 1), body.depth, body.mode,
                                              _filters(body.filters), _corpus(body.corpus))
    return {"hits": {kind: [h.to_json() for h in rows] for kind, rows in found.items()}}


@shard_router.post("/rescore", summary="Round 3 (hybrid): second-stage scores of this shard's fused candidates")
def shard_rescore(body: RescoreIn, request: Request) -> dict:
    scored = _source(request, body.index).rescore(validate_question(body.question, 1),
                                                  [tuple(c) for c in body.candidates], _corpus(body.corpus))
    return {"scores": [[cid, score, dense] for cid, (score, dense) in scored.items()]}


@shard_router.post("/articles", summary="The articles a front's passages cite")
def shard_articles(body: ArticlesIn, request: Request) -> dict:
    found = _source(request, body.index).articles(body.ids)
    return {"articles": [{"id": a.id, "title": a.title, "date": a.date, "url": a.url, "source": a.source,
                          "text": a.text} for a in found.values()]}


@shard_router.post("/stories", summary="The stories of a front's ranked articles: members and signatures")
def shard_stories(body: ArticlesIn, request: Request) -> dict:
    return {"stories": {aid: view.to_json() for aid, view in _source(request, body.index).stories(body.ids).items()}}


@shard_router.post("/sentences", summary="A passage's stored sentences and their dates, for a front's answer")
def shard_sentences(body: SentencesIn, request: Request) -> dict:
    rows = _source(request, body.index).sentences(body.article_id, body.start, body.end)
    return {"sentences": [r.to_json() for r in rows]}


def create_front(urls: list[str]) -> FastAPI:
    """The front app: POST /search and /answer over all shards, GET /health naming them. Reads are
    guarded as on a shard server (NEWSRAG_READ_KEY), and that key is passed on to the shards."""
    read_key = os.environ.get("NEWSRAG_READ_KEY")
    settings = Settings.from_env()
    shards = HttpShards(urls, settings, headers={"X-API-Key": read_key} if read_key else None)
    load_reader(settings.answer.reader_dir).read("warm up", ["warm up"])
    app = FastAPI(title="newsrag shard front", version="0.1.0", dependencies=[Depends(auth.require_read)],
                  **docs.BUILT_IN_OFF)
    errors.install(app)
    app.include_router(docs.router)

    @app.post("/search", summary="Cited passages from every shard, merged as one index would rank them")
    def search(body: AskIn) -> dict:
        return shards.search(query_of(body)).to_json()

    @app.post("/answer", summary="The answer over every shard, as one index would give it")
    def answer(body: AskIn) -> dict:
        return shards.answer(query_of(body))

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "index_loaded": True, "shards": shards.urls}

    @app.exception_handler(httpx.HTTPError)
    def shard_failed(request: Request, exc: httpx.HTTPError) -> JSONResponse:
        return JSONResponse(errors.error_body("shard_unavailable", f"a shard failed: {exc}"), status_code=502)

    return app

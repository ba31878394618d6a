"""`POST /answer`, `POST /search`, `GET /search`: questions in, cited passages out."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request

from rag.retrieval import Filters
from rag.validation import MAX_K, validate_question

from .schemas import AskIn

router = APIRouter(tags=["answers"])


def _filters(body: AskIn) -> Filters | None:
    f = body.filters
    if f is None:
        return None
    return Filters(date_from=f.date_from, date_to=f.date_to, source=f.source,
                   article_ids=tuple(f.article_ids) if f.article_ids else None, include_undated=f.include_undated)


@router.post("/answer", summary="Answer a question: the answer sentence and span, dates, cited passages")
def answer(body: AskIn, request: Request) -> dict:
    question = validate_question(body.question, body.k)
    archive = request.app.state.newsrag.archive(body.index)
    return archive.answer(question, k=body.k, mode=body.mode, filters=_filters(body), recency=body.recency,
                          as_of=body.as_of)


@router.post("/search", summary="Cited passages for a question, without an answer")
def search(body: AskIn, request: Request) -> dict:
    question = validate_question(body.question, body.k)
    return _search(request, question, body.k, body.mode, _filters(body), body.index, body.recency, body.as_of)


@router.get("/search", summary="Cited passages for a question (query-string form)")
def search_get(
    request: Request,
    q: str = Query(..., description="the question"),
    k: int = Query(5, ge=1, le=MAX_K),
    mode: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    source: str | None = None,
    article_ids: list[str] | None = Query(None, description="repeat to allow several articles"),
    include_undated: bool = False,
    recency: Literal["none", "prefer_recent"] = "none",
    as_of: str | None = Query(None, description="YYYY-MM-DD: 'today' for relative times in the question"),
    index: str | None = None,
) -> dict:
    question = validate_question(q, k)
    filters = Filters(date_from=date_from, date_to=date_to, source=source, article_ids=article_ids,
                      include_undated=include_undated)
    return _search(request, question, k, mode, filters, index, recency, as_of)


def _search(request: Request, question: str, k: int, mode, filters, index, recency, as_of) -> dict:
    archive = request.app.state.newsrag.archive(index)
    passages, retrieval, timings, _ = archive.search(question, k, mode, filters, recency, as_of)
    return {"question": question, "passages": [p.to_json() for p in passages], "retrieval": retrieval,
            "timings_ms": {name: round(v, 3) for name, v in timings.items()}}

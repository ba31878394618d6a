"""`POST /answer`, `POST /search`, `GET /search`: questions in, cited passages out."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query as Param, Request

from rag.query import Filters, Query
from rag.validation import MAX_K

from .schemas import AskIn

router = APIRouter(tags=["answers"])


def query_of(body: AskIn) -> Query:
    """The body as a checked `Query` (the `index` field picks the archive, not the question)."""
    return Query.from_json(body.model_dump(exclude={"index"}))


@router.post("/answer", summary="Answer a question: the answer sentence and span, dates, cited passages")
def answer(body: AskIn, request: Request) -> dict:
    query = query_of(body)
    return request.app.state.newsrag.archive(body.index).answer(query)


@router.post("/search", summary="Cited passages for a question, without an answer")
def search(body: AskIn, request: Request) -> dict:
    query = query_of(body)
    return request.app.state.newsrag.archive(body.index).search(query).to_json()


@router.get("/search", summary="Cited passages for a question (query-string form)")
def search_get(
    request: Request,
    q: str = Param(..., description="the question"),
    k: int = Param(5, ge=1, le=MAX_K),
    mode: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    source: str | None = None,
    article_ids: list[str] | None = Param(None, description="repeat to allow several articles"),
    include_undated: bool = False,
    recency: Literal["none", "prefer_recent"] = "none",
    as_of: str | None = Param(None, description="YYYY-MM-DD: 'today' for relative times in the question"),
    dedupe: bool = Param(True, description="false: every copy of a story, not one passage group per story"),
    index: str | None = None,
) -> dict:
    filters = Filters(date_from=date_from, date_to=date_to, source=source, article_ids=article_ids,
                      include_undated=include_undated)
    query = Query(q, k, mode, filters, recency, as_of, dedupe)
    return request.app.state.newsrag.archive(index).search(query).to_json()

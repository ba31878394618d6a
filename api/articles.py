"""`/articles`: list, read (full text, so any cited span can be checked), ingest and delete."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query, Request

from rag.articles import Article, LoadFailure, make_article
from rag.errors import LoadError

from .auth import require_write
from .pages import article_page, prefers_html
from .schemas import ArticleIn, ArticlesIn

router = APIRouter(tags=["articles"])


@router.get("/articles", summary="Articles in the index, newest first, paged")
def list_articles(request: Request, offset: int = Query(0, ge=0, le=2**63 - 1), limit: int = Query(50, ge=1, le=500),
                  index: str | None = None) -> dict:
    archive = request.app.state.newsrag.archive(index)
    return {"offset": offset, "limit": limit, "total": archive.count("articles"),
            "articles": archive.list_articles(offset, limit)}


@router.get("/articles/{article_id:path}", summary="One stored article with its full text",
            description="JSON, or the HTML article view when Accept prefers text/html; `start` and `end` "
                        "highlight those characters there.",
            responses={200: {"content": {"text/html": {}}}})
def get_article(article_id: str, request: Request, index: str | None = None,
                start: int | None = Query(None, ge=0), end: int | None = Query(None, ge=0)) -> dict:
    article = request.app.state.newsrag.archive(index).get_article(article_id)
    if prefers_html(request):
        return article_page(article, start, end)
    return article_json(article)


def article_json(article: Article) -> dict:
    """A stored article as JSON: its fields and extra fields (the MCP tool `get_article` shares it)."""
    body = asdict(article)
    body.pop("origin")  # where this process read it: not part of the stored article
    extra = body.pop("extra")
    return {**extra, **body}


@router.post("/articles", summary="Ingest articles given as JSON", dependencies=[Depends(require_write)])
def post_articles(body: ArticlesIn, request: Request) -> dict:
    return ingest_json(request.app.state.newsrag.archive(body.index, create=True), body.articles)


def ingest_json(archive, articles: list[ArticleIn]) -> dict:
    """Ingest articles given as JSON, each refused one named `articles[n]` (the MCP tool `add_articles` shares it)."""
    items = []
    for n, raw in enumerate(articles):
        try:
            items.append(make_article(raw.model_dump(exclude_none=True), f"api-{n}", f"articles[{n}]"))
        except LoadError as exc:
            items.append(LoadFailure(f"articles[{n}]", exc.message))
    report = archive.ingest(items)
    return {**report.to_json(), "ids": {"added": report.added, "replaced": report.replaced,
                                        "unchanged": report.unchanged}}


@router.delete("/articles/{article_id:path}", summary="Delete an article and its chunks",
               dependencies=[Depends(require_write)])
def delete_article(article_id: str, request: Request, index: str | None = None) -> dict:
    request.app.state.newsrag.archive(index).delete(article_id)
    return {"deleted": article_id}

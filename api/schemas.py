"""Request bodies: pydantic models, so the OpenAPI docs describe exactly what is accepted."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.validation import MAX_ARTICLE_CHARS, MAX_ARTICLES_PER_REQUEST, MAX_K, MAX_QUESTION_CHARS, MAX_TITLE_CHARS


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date_from: str | None = Field(None, description="inclusive lower bound, YYYY-MM-DD (YYYY-MM, YYYY: from its start)")
    date_to: str | None = Field(None, description="inclusive upper bound, YYYY-MM-DD (YYYY-MM, YYYY: to its end)")
    source: str | None = Field(None, description="only articles from this source (exact match)")
    article_ids: list[str] | None = Field(None, max_length=1000, description="only these articles")
    include_undated: bool = Field(False, description="keep articles without a date when a date bound is set")


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS, description=f"the question, 1-{MAX_QUESTION_CHARS} characters")
    k: int = Field(5, ge=1, le=MAX_K, description="passages to return")
    mode: str | None = Field(None, description="dense, bm25 or hybrid (default: the best measured)")
    filters: FiltersIn | None = None
    recency: Literal["none", "prefer_recent"] = Field(
        "none", description="prefer_recent: a bounded boost for newer articles after ranking")
    as_of: str | None = Field(None, description="YYYY-MM-DD: 'today' for relative times in the question")
    dedupe: bool = Field(True, description="one passage group per story, its other outlets in also_in; "
                                           "false: every copy (reprints included) as its own passage")
    index: str | None = Field(None, description="index name (default: the served index)")


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = Field(None, max_length=256)
    title: str | None = Field(None, max_length=MAX_TITLE_CHARS,
                              description="NEWSRAG_MAX_TITLE_CHARS (default 300); default: the first sentence")
    date: str | None = None
    url: str | None = None
    source: str | None = None
    text: str = Field(..., min_length=1, max_length=MAX_ARTICLE_CHARS,
                      description="the article text (NEWSRAG_MAX_ARTICLE_CHARS, default 1,000,000)")


class ArticlesIn(BaseModel):
    articles: list[ArticleIn] = Field(..., min_length=1, max_length=MAX_ARTICLES_PER_REQUEST,
                                      description="NEWSRAG_MAX_ARTICLES_PER_REQUEST per request (default 1,000)")
    index: str | None = None

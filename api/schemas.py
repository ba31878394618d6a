"""Request bodies: pydantic models, so the OpenAPI docs describe exactly what is accepted."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.validation import MAX_K, MAX_QUESTION_CHARS


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date_from: str | None = Field(None, description="inclusive lower bound, YYYY-MM-DD")
    date_to: str | None = Field(None, description="inclusive upper bound, YYYY-MM-DD")
    source: str | None = None
    article_ids: list[str] | None = Field(None, max_length=1000)
    include_undated: bool = False


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS, description="the question, 1-1000 characters")
    k: int = Field(5, ge=1, le=MAX_K, description="passages to return")
    mode: str | None = Field(None, description="dense, bm25 or hybrid (default: the best measured)")
    filters: FiltersIn | None = None
    recency: Literal["none", "prefer_recent"] = "none"
    as_of: str | None = Field(None, description="YYYY-MM-DD: 'today' for relative times in the question")
    index: str | None = Field(None, description="index name (default: the served index)")


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = Field(None, max_length=256)
    title: str | None = None
    date: str | None = None
    url: str | None = None
    source: str | None = None
    text: str = Field(..., min_length=1)


class ArticlesIn(BaseModel):
    articles: list[ArticleIn] = Field(..., min_length=1)
    index: str | None = None

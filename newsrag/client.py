"""A typed Python client for the HTTP API of `newsrag serve`, for scripts, notebooks and agents.

Replies come back as frozen dataclasses whose `to_json()` is the server's JSON, unchanged; the error
envelope `{"error": {"code", "message"}}` is raised as the library's own exception for that code
(`rag.errors`), or one of the HTTP-only ones below. Light on purpose: httpx and `rag.errors` only, so
importing it loads neither torch, FAISS nor the model.

    with Client("http://127.0.0.1:8000", key=None) as newsrag:
        result = newsrag.answer("When is Putin's visit to India expected?")
        print(result.answer.span.text, result.passages[0].citation)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal
from urllib.parse import quote

import httpx
from typing_extensions import TypedDict  # pydantic (LangChain's fields) refuses typing's before 3.12

from rag import errors

__all__ = ["Client", "Filters", "Passage", "Span", "DateMention", "Answer", "SearchResult", "AnswerResult",
           "Article", "ArticleSummary", "ArticlePage", "Source", "Sources", "Failure", "IngestResult", "Health",
           "Unauthorized", "Forbidden", "NotFound", "RequestRefused", "ServerError"]


class Unauthorized(errors.NewsragError):
    """401: the server wants a key and none was sent."""

    code = "unauthorized"


class Forbidden(errors.NewsragError):
    """403: the key sent is wrong, or the server takes no writes from this caller."""

    code = "forbidden"


class NotFound(errors.NewsragError):
    """404 for something other than an article or an index (those raise ArticleNotFound, IndexNotFound)."""

    code = "not_found"


class RequestRefused(errors.NewsragError):
    """Any other 4xx; `code` is the server's."""

    code = "refused"


class ServerError(errors.NewsragError):
    """The server could not be reached, failed (5xx), or answered something that is not its JSON."""

    code = "server_error"


ERRORS: dict[str, type[errors.NewsragError]] = {
    cls.code: cls for cls in (errors.InvalidInput, errors.TooLarge, errors.IndexNotFound, errors.EmptyIndex,
                              errors.IndexMismatch, errors.IndexLocked, errors.ArticleNotFound, errors.LoadError,
                              Unauthorized, Forbidden, NotFound, ServerError)
} | {"bad_request": errors.InvalidInput, "internal_error": ServerError, "shard_unavailable": ServerError}


def error_from(response: httpx.Response) -> errors.NewsragError:
    """The exception for a refused request: chosen by the envelope's `code`, carrying `status` and `code`."""
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "", f"{response.status_code} {response.reason_phrase}: {response.text[:200]}"
    cls = ERRORS.get(code) or (ServerError if response.status_code >= 500 else RequestRefused)
    exc = cls(message)
    exc.code = code or cls.code
    exc.status = response.status_code
    return exc


class Filters(TypedDict, total=False):
    """The `filters` of `/answer` and `/search`: exact, applied before ranking; dates inclusive."""

    date_from: str
    date_to: str
    source: str
    article_ids: list[str]
    include_undated: bool


@dataclass(frozen=True)
class Copy:
    """Another article of a passage's story (the same story carried elsewhere): `also_in`."""

    article_id: str
    source: str | None
    date: str | None
    url: str | None


@dataclass(frozen=True)
class Passage:
    """One cited passage: `text == article.text[start:end]`; passages of one article share `citation`."""

    citation: int
    article_id: str
    title: str
    date: str | None
    url: str | None
    source: str | None
    start: int
    end: int
    text: str
    score: float
    also_in: tuple[Copy, ...] = ()

    @classmethod
    def from_json(cls, doc: dict) -> Passage:
        return cls(doc["citation"], doc["article_id"], doc["title"], doc.get("date"), doc.get("url"),
                   doc.get("source"), doc["start"], doc["end"], doc["text"], doc["score"],
                   tuple(Copy(**c) for c in doc.get("also_in", [])))

    def to_json(self) -> dict:
        return {**asdict(self), "also_in": [asdict(c) for c in self.also_in]}

    def metadata(self) -> dict:
        """Everything but the text: what a LangChain or LlamaIndex document carries as metadata."""
        return {key: value for key, value in self.to_json().items() if key != "text"}


@dataclass(frozen=True)
class Span:
    """The answer's own words, `[start, end)` in the article."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class DateMention:
    """A date in the answer sentence, resolved against the article's date (ISO, any granularity)."""

    text: str
    start: int
    end: int
    resolved: str | None
    approximate: bool


@dataclass(frozen=True)
class Answer:
    """The sentence that answers, its span and dates, and which citation it comes from."""

    text: str
    article_id: str
    start: int
    end: int
    citation: int
    span: Span | None
    dates: tuple[DateMention, ...]

    @classmethod
    def from_json(cls, doc: dict) -> Answer:
        span = doc.get("span")
        return cls(doc["text"], doc["article_id"], doc["start"], doc["end"], doc["citation"],
                   Span(span["text"], span["start"], span["end"]) if span else None,
                   tuple(DateMention(d["text"], d["start"], d["end"], d.get("resolved"), bool(d.get("approximate")))
                         for d in doc.get("dates") or ()))


@dataclass(frozen=True)
class SearchResult:
    """`/search`: passages in rank order, how they were ranked (`retrieval`), timings in ms."""

    question: str
    passages: tuple[Passage, ...]
    retrieval: dict
    timings_ms: dict
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict) -> SearchResult:
        return cls(doc["question"], tuple(Passage.from_json(p) for p in doc["passages"]), doc.get("retrieval", {}),
                   doc.get("timings_ms", {}), doc)

    def to_json(self) -> dict:
        """The server's JSON, as it came."""
        return self.raw


@dataclass(frozen=True)
class AnswerResult:
    """`/answer`: the answer (None when the articles hold none, `no_answer` says why) and its passages."""

    question: str
    answer: Answer | None
    no_answer: str | None
    passages: tuple[Passage, ...]
    retrieval: dict
    timings_ms: dict
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict) -> AnswerResult:
        return cls(doc["question"], Answer.from_json(doc["answer"]) if doc.get("answer") else None,
                   (doc.get("no_answer") or {}).get("reason"), tuple(Passage.from_json(p) for p in doc["passages"]),
                   doc.get("retrieval", {}), doc.get("timings_ms", {}), doc)

    def to_json(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class Article:
    """A stored article with its full text: any cited `[start, end)` can be checked against `text`."""

    id: str
    title: str
    date: str | None
    url: str | None
    source: str | None
    text: str
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict) -> Article:
        return cls(doc["id"], doc.get("title", ""), doc.get("date"), doc.get("url"), doc.get("source"), doc["text"],
                   doc)

    def to_json(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class ArticleSummary:
    """A row of `GET /articles`: metadata, the text's length and the article's chunk count."""

    id: str
    title: str
    date: str | None
    url: str | None
    source: str | None
    chars: int
    chunks: int


@dataclass(frozen=True)
class ArticlePage:
    """`GET /articles`: `limit` articles from `offset`, newest first, of `total`."""

    offset: int
    limit: int
    total: int
    articles: tuple[ArticleSummary, ...]


@dataclass(frozen=True)
class Source:
    name: str
    articles: int


@dataclass(frozen=True)
class Sources:
    """`GET /filters`: the sources in the index and the range of its article dates."""

    sources: tuple[Source, ...]
    date_from: str | None
    date_to: str | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict) -> Sources:
        span = doc.get("date_range") or {}
        return cls(tuple(Source(s["name"], s["articles"]) for s in doc["sources"]), span.get("from"), span.get("to"),
                   doc)

    def to_json(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class Failure:
    """An article the server refused, named by where it was in the request (`articles[n]`)."""

    source: str
    reason: str


@dataclass(frozen=True)
class IngestResult:
    """`POST /articles`: the ids added, replaced and unchanged, and what failed."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]
    failed: tuple[Failure, ...]
    chunks: int
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict) -> IngestResult:
        ids = doc.get("ids", {})
        return cls(tuple(ids.get("added", ())), tuple(ids.get("replaced", ())), tuple(ids.get("unchanged", ())),
                   tuple(Failure(f["source"], f["reason"]) for f in doc.get("failed", ())), doc.get("chunks", 0), doc)

    def to_json(self) -> dict:
        return self.raw


@dataclass(frozen=True)
class Health:
    """`GET /health`: whether the server has its index open, and what it holds."""

    status: str
    index_loaded: bool
    index: str | None
    articles: int | None
    chunks: int | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict) -> Health:
        return cls(doc["status"], bool(doc.get("index_loaded")), doc.get("index"), doc.get("articles"),
                   doc.get("chunks"), doc)

    def to_json(self) -> dict:
        return self.raw


def _drop_none(doc: dict) -> dict:
    """A request body without the fields left unset, so the server's defaults apply."""
    return {key: value for key, value in doc.items() if value is not None}


class Client:
    """The routes of `newsrag serve` a program uses (the web page, its static files and the shard rounds
    are for browsers and for `rag.shards`). `key` is sent as `Authorization: Bearer KEY`: the read key
    when the server sets NEWSRAG_READ_KEY, the write key (NEWSRAG_API_KEY) for writes and reads."""

    def __init__(self, url: str = "http://127.0.0.1:8000", key: str | None = None, timeout_s: float = 60.0,
                 index: str | None = None):
        self.url = url.rstrip("/")
        self.index = index  # another index the server holds, else the one it serves
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            unreachable = ServerError(f"{method} {self.url}{path} failed: {exc}")
            unreachable.status = None  # no reply, so no HTTP status
            raise unreachable from exc
        if not response.is_success:
            raise error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs) -> dict:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(f"{method} {self.url}{path} answered {response.status_code} without JSON") from exc

    def _question(self, question: str, k: int | None, mode: str | None, filters: Filters | None,
                  recency: Literal["none", "prefer_recent"] | None, as_of: str | None, dedupe: bool | None) -> dict:
        return _drop_none({"question": question, "k": k, "mode": mode, "filters": filters, "recency": recency,
                           "as_of": as_of, "dedupe": dedupe, "index": self.index})

    def health(self) -> Health:
        """`GET /health` (open even when reads need a key)."""
        return Health.from_json(self._json("GET", "/health"))

    def answer(self, question: str, k: int | None = None, mode: str | None = None, filters: Filters | None = None,
               recency: Literal["none", "prefer_recent"] | None = None, as_of: str | None = None,
               dedupe: bool | None = None) -> AnswerResult:
        """`POST /answer`: the answer sentence and span, its dates, and the cited passages (`dedupe`
        False: every copy of a story, not one passage group per story)."""
        return AnswerResult.from_json(self._json("POST", "/answer",
                                                 json=self._question(question, k, mode, filters, recency, as_of, dedupe)))

    def search(self, question: str, k: int | None = None, mode: str | None = None, filters: Filters | None = None,
               recency: Literal["none", "prefer_recent"] | None = None, as_of: str | None = None,
               dedupe: bool | None = None) -> SearchResult:
        """`POST /search`: the cited passages alone (the same ranking `/answer` reads)."""
        return SearchResult.from_json(self._json("POST", "/search",
                                                 json=self._question(question, k, mode, filters, recency, as_of, dedupe)))

    def article(self, article_id: str) -> Article:
        """`GET /articles/{id}`: the stored article with its full text."""
        return Article.from_json(self._json("GET", f"/articles/{quote(article_id, safe='')}",
                                            params=_drop_none({"index": self.index}),
                                            headers={"Accept": "application/json"}))

    def articles(self, offset: int = 0, limit: int = 50) -> ArticlePage:
        """`GET /articles`: one page of the stored articles, newest first."""
        doc = self._json("GET", "/articles", params=_drop_none({"offset": offset, "limit": limit, "index": self.index}))
        return ArticlePage(doc["offset"], doc["limit"], doc["total"],
                           tuple(ArticleSummary(**{k: row[k] for k in ArticleSummary.__dataclass_fields__})
                                 for row in doc["articles"]))

    def sources(self) -> Sources:
        """`GET /filters`: the sources and the date range of the stored articles."""
        return Sources.from_json(self._json("GET", "/filters", params=_drop_none({"index": self.index})))

    def ingest(self, articles: Iterable[dict[str, Any]]) -> IngestResult:
        """`POST /articles` (a write): articles as `{"id"?, "title"?, "date"?, "url"?, "source"?, "text"}`."""
        return IngestResult.from_json(self._json("POST", "/articles",
                                                 json=_drop_none({"articles": list(articles), "index": self.index})))

    def delete(self, article_id: str) -> None:
        """`DELETE /articles/{id}` (a write); ArticleNotFound when there is no such article."""
        self._json("DELETE", f"/articles/{quote(article_id, safe='')}", params=_drop_none({"index": self.index}))

    def metrics(self) -> str:
        """`GET /metrics`: the Prometheus text."""
        return self._send("GET", "/metrics").text

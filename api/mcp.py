"""The archive as Model Context Protocol tools, for LLM agents: `answer`, `search`, `get_article`,
`list_sources`, and, for a holder of the write key only, `add_articles` and `delete_article`.

Each tool's structured output is the JSON of its HTTP route, and a refusal is the HTTP error envelope
`{"error": {"code", "message"}}` as an error result. `newsrag serve` mounts the tools at /mcp
(streamable HTTP, stateless, so `--workers N` needs no shared sessions) behind the same keys as every
route; `newsrag mcp` serves them over stdio (newsrag/mcp_server.py). Needs the `mcp` extra.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Annotated, Any, Callable, Literal

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.requests import Request

from rag.errors import InvalidInput, NewsragError
from rag.query import Query
from rag.validation import MAX_ARTICLES_PER_REQUEST, MAX_K, validate_question

from . import articles as article_routes
from . import auth, pages
from .errors import error_body, http_error
from .schemas import ArticleIn, FiltersIn
from .state import ServerState

CONTEXT_CHARS = 300  # get_article's default context either side of a cited span

INSTRUCTIONS = ("Question answering over a news archive with checkable citations. `answer` gives the sentence "
                "that answers, the answer span, its dates resolved to the calendar and the cited passages; every "
                "offset is [start, end) into the stored article, which `get_article` returns (or the slice around "
                "a span). When the articles hold no answer, `answer` is null and `no_answer.reason` says why.")

Question = Annotated[str, Field(description="the question, in plain language")]
K = Annotated[int, Field(description=f"passages to return, 1 to {MAX_K}")]
Mode = Annotated[Literal["hybrid", "dense", "bm25"] | None, Field(description="retrieval mode (default hybrid)")]
Filter = Annotated[FiltersIn | None, Field(description="exact filters on date, source and article ids")]
Recency = Annotated[Literal["none", "prefer_recent"],
                    Field(description="prefer_recent: a bounded boost for newer articles")]
AsOf = Annotated[str | None, Field(description="YYYY-MM-DD: 'today' for times the question names (default today)")]
Dedupe = Annotated[bool, Field(description="one passage group per story, its other outlets in also_in; "
                                           "false: every copy as its own passage")]

ArticleId = Annotated[str, Field(description="the article_id a passage or answer cites")]
SpanStart = Annotated[int | None, Field(description="a cited span's start: return only the text around it")]
SpanEnd = Annotated[int | None, Field(description="the cited span's end (exclusive)")]
Context = Annotated[int, Field(ge=0, description="characters either side of the span")]
Articles = Annotated[list[ArticleIn], Field(min_length=1, max_length=MAX_ARTICLES_PER_REQUEST,
                                            description="articles to add; only text is required")]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def _result(call: Callable[[], dict]) -> dict | CallToolResult:
    """The tool's JSON, or the HTTP error envelope as an error result for a refusal."""
    try:
        return call()
    except NewsragError as exc:
        body = error_body(exc.code, exc.message)
        return CallToolResult(content=[TextContent(type="text", text=json.dumps(body))], structured_content=body,
                              is_error=True)


def _query(question: str, k: int, mode: str | None, filters: FiltersIn | None, recency: str, as_of: str | None,
           dedupe: bool) -> Query:
    validate_question(question, k)  # k up to NEWSRAG_MAX_K, as over HTTP (Query checks only k >= 1)
    return Query.from_json({"question": question, "k": k, "mode": mode, "recency": recency, "as_of": as_of,
                            "filters": filters.model_dump() if filters else None, "dedupe": dedupe})


def article_slice(article: dict, start: int, end: int, context: int) -> dict:
    """The article's metadata, the span `[start, end)` and up to `context` characters either side of it,
    so an agent checks a citation without reading the whole article."""
    doc = dict(article)
    text = doc.pop("text")
    if not 0 <= start < end <= len(text):
        raise InvalidInput(f"start and end must satisfy 0 <= start < end <= {len(text)} (the article's length)")
    lo, hi = max(0, start - context), min(len(text), end + context)
    return {**doc, "chars": len(text), "span": {"start": start, "end": end, "text": text[start:end]},
            "context": {"start": lo, "end": hi, "text": text[lo:hi]}}


def build_server(state: ServerState, writes: bool) -> MCPServer:
    """The tools over `state`'s served archive; `add_articles` and `delete_article` only when `writes`."""
    server = MCPServer("newsrag", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(annotations=READ_ONLY)
    def answer(question: Question, k: K = 5, mode: Mode = None, filters: Filter = None, recency: Recency = "none",
               as_of: AsOf = None, dedupe: Dedupe = True) -> dict[str, Any]:
        """Answer a question from the news archive: the answer sentence and its exact span, the dates in it
        resolved to the calendar, and the numbered passages it cites (the `/answer` JSON)."""
        return _result(lambda: state.archive().answer(_query(question, k, mode, filters, recency, as_of, dedupe)))

    @server.tool(annotations=READ_ONLY)
    def search(question: Question, k: K = 5, mode: Mode = None, filters: Filter = None, recency: Recency = "none",
               as_of: AsOf = None, dedupe: Dedupe = True) -> dict[str, Any]:
        """The passages of the news archive that best match a question, ranked, each with its article's title,
        date, source, url and [start, end) offsets, without an answer (the `/search` JSON)."""
        return _result(lambda: state.archive().search(_query(question, k, mode, filters, recency, as_of,
                                                             dedupe)).to_json())

    @server.tool(annotations=READ_ONLY)
    def get_article(article_id: ArticleId, start: SpanStart = None, end: SpanEnd = None,
                    context: Context = CONTEXT_CHARS) -> dict[str, Any]:
        """A stored article with its full text (the `GET /articles/{id}` JSON), or, given a cited span's start
        and end, the span and the text around it."""

        def read() -> dict:
            doc = article_routes.article_json(state.archive().get_article(article_id))
            if start is None and end is None:
                return doc
            if start is None or end is None:
                raise InvalidInput("give both start and end, or neither for the whole article")
            return article_slice(doc, start, end, context)

        return _result(read)

    @server.tool(annotations=READ_ONLY)
    def list_sources() -> dict[str, Any]:
        """The news sources in the archive with their article counts, and the range of article dates
        (the `GET /filters` JSON): what `filters` can take."""
        return _result(lambda: pages.sources_json(state.archive()))

    if not writes:
        return server

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    def add_articles(articles: Articles) -> dict[str, Any]:
        """Add or replace articles in the archive (the `POST /articles` JSON: what was added, replaced,
        unchanged or refused, and why)."""
        return _result(lambda: article_routes.ingest_json(state.archive(create=True), articles))

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                             open_world_hint=False))
    def delete_article(article_id: ArticleId) -> dict[str, Any]:
        """Delete an article and its passages from the archive."""

        def delete() -> dict:
            state.archive().delete(article_id)
            return {"deleted": article_id}

        return _result(delete)

    return server


class McpEndpoint:
    """The ASGI app at /mcp: the read key is checked as for every route, then a caller holding the write
    key reaches the tools with writes, anyone else the read-only ones."""

    def __init__(self, state: ServerState):
        self.managers = {}
        for writes in (False, True):
            server = build_server(state, writes)
            # Made for its session manager (the app is not mounted); `host` keeps the SDK's DNS-rebinding
            # check on for a loopback server, as auth.from_this_machine does for writes.
            server.streamable_http_app(stateless_http=True, host=state.host)
            self.managers[writes] = server.session_manager

    @asynccontextmanager
    async def running(self):
        """The session managers run for the server's lifetime."""
        async with self.managers[False].run(), self.managers[True].run():
            yield

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope)
        try:
            auth.require_read(request)
        except HTTPException as exc:
            await http_error(exc)(scope, receive, send)
            return
        await self.managers[auth.holds_write_key(request)].handle_request(scope, receive, send)


def mount(app: FastAPI, state: ServerState) -> None:
    """Serve the tools at /mcp; they start and stop with the app."""
    endpoint = McpEndpoint(state)
    app.router.add_route("/mcp", endpoint, include_in_schema=False)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI):
        async with endpoint.running(), outer(app_) as value:
            yield value

    app.router.lifespan_context = lifespan

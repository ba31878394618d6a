"""The app factory: opens the index and warms the model before serving, wires routers and errors."""

from __future__ import annotations

import os
from importlib.util import find_spec

from fastapi import Depends, FastAPI

from rag.errors import IndexNotFound
from rag.reader import load_reader

from . import answer, articles, auth, docs, errors, front, health, limits, metrics, pages
from . import logging as request_log
from .state import ServerState


def create_app(index: str = "default", index_dir: str | None = None, host: str = "127.0.0.1") -> FastAPI:
    """A ready app: the model and index are loaded here, so the first request is fast."""
    state = ServerState(default=index, index_dir=index_dir, host=host)
    try:
        archive = state.archive()
        archive.verify_model()
        archive.derived()
        archive.embedder.encode_query("warm up")
        load_reader(archive.settings.answer.reader_dir).read("warm up", ["warm up"])
    except IndexNotFound:
        pass  # served anyway: /health says index_loaded false, POST /articles creates it
    app = FastAPI(title="newsrag", version="0.1.0",
                  description="Question answering over news articles, with checkable citations.",
                  dependencies=[Depends(auth.require_read)], **docs.BUILT_IN_OFF)
    app.state.newsrag = state
    errors.install(app)
    for module in (answer, articles, health, pages, docs):
        app.include_router(module.router)
    app.include_router(front.shard_router)  # the rounds a sharded front asks (rag/shards.py)
    pages.mount_static(app)
    if find_spec("mcp"):  # the `mcp` extra: the MCP tools at /mcp (api/mcp.py)
        from . import mcp

        mcp.mount(app, state)
    metrics.install(app, state)
    request_log.install(app)
    limits.install(app)  # last added is outermost: bodies are counted before anything reads them
    return app


def create_app_from_env() -> FastAPI:
    """`create_app` for each process of `newsrag serve --workers N` (uvicorn imports it by name):
    the index from NEWSRAG_SERVE_INDEX, the folder from NEWSRAG_INDEX_DIR, the host from NEWSRAG_SERVE_HOST."""
    return create_app(os.environ.get("NEWSRAG_SERVE_INDEX", "default"), os.environ.get("NEWSRAG_INDEX_DIR"),
                      os.environ.get("NEWSRAG_SERVE_HOST", "127.0.0.1"))

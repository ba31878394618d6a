"""The app factory: opens the index and warms the model before serving, wires routers and errors."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from rag.errors import IndexNotFound

from . import answer, articles, auth, errors, health, limits, metrics, pages
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
    except IndexNotFound:
        pass  # served anyway: /health says index_loaded false, POST /articles creates it
    app = FastAPI(title="newsrag", version="0.1.0",
                  description="Question answering over news articles, with checkable citations.",
                  dependencies=[Depends(auth.require_read)])
    app.state.newsrag = state
    errors.install(app)
    for module in (answer, articles, health, pages):
        app.include_router(module.router)
    pages.mount_static(app)
    metrics.install(app, state)
    request_log.install(app)
    limits.install(app)  # last added is outermost: bodies are counted before anything reads them
    return app

"""The two ways the harness asks questions: in-process through `rag.Archive`, or over HTTP.

Both return the public JSON shapes (`/search` and `/answer`), so scoring never depends on which
path produced them, and both add a `wall` stage: the time the caller waited for the reply.
"""

from __future__ import annotations

import time

from newsrag.client import Client, ServerError
from rag.archive import Archive
from rag.errors import NewsragError
from rag.query import Filters, Query


def _about_k(message: str) -> bool:
    """Whether a refusal is about `k` (pydantic's `k: ...` or the library's `k must ...`)."""
    return message.startswith("k:") or "k must" in message


class LocalClient:
    """Asks an opened `Archive` directly, exactly as the API handlers do."""

    def __init__(self, archive: Archive):
        self.archive = archive

    def describe(self) -> dict:
        return {"via": "in-process", "index": self.archive.name, "index_dir": str(self.archive.path.parent)}

    def search(self, question: str, k: int, mode: str, filters: dict | None, dedupe: bool = True) -> dict:
        """The `/search` document for a question."""
        started = time.perf_counter()
        result = self.archive.search(Query(question, k, mode, Filters.from_dict(filters or None), dedupe=dedupe)).to_json()
        result["timings_ms"]["wall"] = round((time.perf_counter() - started) * 1e3, 3)
        return result

    def answer(self, question: str, k: int, mode: str, filters: dict | None, as_of: str | None,
               dedupe: bool = True) -> dict:
        """The `/answer` document; `as_of` is passed only when the question sets one."""
        started = time.perf_counter()
        result = self.archive.answer(Query(question, k, mode, Filters.from_dict(filters or None), as_of=as_of,
                                           dedupe=dedupe))
        result["timings_ms"]["wall"] = round((time.perf_counter() - started) * 1e3, 3)
        return result


class HttpClient:
    """Drives a running `newsrag serve` through its public routes, with `newsrag.client`."""

    def __init__(self, url: str, timeout_s: float = 60.0):
        self.url = url.rstrip("/")
        self.client = Client(self.url, timeout_s=timeout_s)

    def health(self) -> dict:
        """`GET /health`, or ServerError saying how to start a server."""
        try:
            return self.client.health().to_json()
        except NewsragError as exc:
            raise ServerError(f"{self.url}/health: {exc.message}; start one with `newsrag serve`") from exc

    def describe(self) -> dict:
        health = self.health()
        return {"via": "http", "url": self.url, "index": health.get("index"), "articles": health.get("articles")}

    def search(self, question: str, k: int, mode: str, filters: dict | None, dedupe: bool = True) -> dict:
        return self._ask("/search", self.client.search, question, k=k, mode=mode, filters=filters, dedupe=dedupe)

    def answer(self, question: str, k: int, mode: str, filters: dict | None, as_of: str | None,
               dedupe: bool = True) -> dict:
        return self._ask("/answer", self.client.answer, question, k=k, mode=mode, filters=filters, as_of=as_of,
                         dedupe=dedupe)

    def _ask(self, path: str, call, question: str, **fields) -> dict:
        """The reply's JSON with a `wall` stage; a refusal becomes ServerError quoting the server's message."""
        started = time.perf_counter()
        try:
            result = call(question, **fields).to_json()
        except NewsragError as exc:
            status = getattr(exc, "status", None)
            hint = " (start the server with NEWSRAG_MAX_K=100, or pass a smaller --k)" if _about_k(exc.message) else ""
            answered = f"answered {status}" if status else "failed"
            raise ServerError(f"POST {self.url}{path} {answered}: {exc.message}{hint}") from exc
        wall = (time.perf_counter() - started) * 1e3
        return {**result, "timings_ms": {**result.get("timings_ms", {}), "wall": round(wall, 3)}}

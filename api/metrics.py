"""`GET /metrics` in Prometheus text format: requests and latencies per route, and what the index holds."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from rag.errors import NewsragError

from .observe import Finished, listen
from .state import ServerState

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

router = APIRouter(tags=["operations"])


def route_label(scope: dict) -> str:
    """The matched route's template (bounded label values), `<mount>/{path}` for mounted apps, else `unmatched`."""
    route = getattr(scope.get("route"), "path", None)
    if route:
        return route
    if scope.get("endpoint") is not None:  # a mount such as /static: FastAPI records its prefix as root_path
        return scope.get("root_path", "").removeprefix(scope.get("app_root_path", "")) + "/{path}"
    return "unmatched"


class IndexCollector:
    """Reads the served index's size when Prometheus scrapes, so the figures are never stale."""

    def __init__(self, state: ServerState):
        self.state = state

    def collect(self):
        loaded = GaugeMetricFamily("newsrag_index_loaded", "1 when the served index is open", labels=["index"])
        articles = GaugeMetricFamily("newsrag_index_articles", "articles in the served index", labels=["index"])
        chunks = GaugeMetricFamily("newsrag_index_chunks", "chunks (passages) in the served index", labels=["index"])
        size = GaugeMetricFamily("newsrag_index_size_bytes", "bytes on disk of the served index", labels=["index"])
        name = self.state.default
        try:
            archive = self.state.archive()
        except NewsragError:
            loaded.add_metric([name], 0)
            yield loaded
            return
        loaded.add_metric([name], 1)
        articles.add_metric([name], archive.count("articles"))
        chunks.add_metric([name], archive.count("chunks"))
        size.add_metric([name], sum(f.stat().st_size for f in archive.path.rglob("*") if f.is_file()))
        yield from (loaded, articles, chunks, size)


class Metrics:
    """One registry per app, so several apps in one process (tests) keep separate counts."""

    def __init__(self, state: ServerState):
        self.registry = CollectorRegistry()
        self.requests = Counter("newsrag_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("newsrag_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(IndexCollector(state))

    def observe(self, done: Finished) -> None:
        """Count and time a finished request under its route template."""
        method, route = done.scope["method"], route_label(done.scope)
        self.requests.labels(method, route, str(done.status)).inc()
        self.latency.labels(method, route).observe(done.seconds)


@router.get("/metrics", summary="Prometheus metrics: requests, latencies, index size", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, state: ServerState) -> None:
    """Add the middleware and the `/metrics` route."""
    app.state.metrics = Metrics(state)
    listen(app, app.state.metrics.observe)
    app.include_router(router)

"""Shards: an index split by article-id hash, searched as one by the pipeline in rag/search.py.

Shard `i` of index `NAME` is the ordinary index `NAME.shard-<i>` (its own SQLite, FAISS and BM25), so
each can be ingested, checked, served and aged out alone. Opened in this process, each shard is a
`LocalSource`; served by `newsrag serve`, it is an `HttpShard` asked over `/shard/*` (api/front.py).
Either way the pipeline sums BM25 statistics, merges the ranked lists and has each shard re-score its
share of the head, so a sharded index gives one index's passages, answer and retrieval block.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from .archive import Archive
from .articles import Article, LoadFailure
from .errors import InvalidInput
from .ingest import IngestReport
from .query import Filters, Query
from .reader import load_reader, reader_identity
from .search import SearchPipeline, SearchResult
from .settings import Settings
from .source import ChunkHit, Source, SourcePlan
from .store import SentenceRow
from .stories import StoryView

EMPTY = "the sharded index holds no articles yet"


def shard_of(article_id: str, shards: int) -> int:
    """The shard an article lives in: a stable hash of its id, the same on every machine."""
    return int.from_bytes(hashlib.sha1(article_id.encode("utf-8")).digest()[:8], "big") % shards


def shard_names(name: str, shards: int) -> list[str]:
    """The index names of the shards of `name`."""
    if shards < 1:
        raise InvalidInput("a sharded index needs at least one shard")
    return [f"{name}.shard-{i}" for i in range(shards)]


def ingest_sharded(items: Iterable[Article | LoadFailure], name: str, shards: int,
                   index_dir: str | None = None) -> IngestReport:
    """Route each article to its shard and ingest each shard with the ordinary local ingest."""
    names = shard_names(name, shards)
    routed: list[list[Article]] = [[] for _ in names]
    failed: list[LoadFailure] = []
    for item in items:
        if isinstance(item, LoadFailure):
            failed.append(item)
        else:
            routed[shard_of(item.id, shards)].append(item)
    total = IngestReport(failed=failed)
    for shard_name, articles in zip(names, routed):
        total.add(Archive.open(shard_name, index_dir, create=True).ingest(articles))
    return total


class HttpShard:
    """A shard served by `newsrag serve`, asked over the `/shard/*` endpoints (api/front.py)."""

    def __init__(self, url: str, client):
        self.url = url.rstrip("/")
        self._client = client

    def _post(self, path: str, body: dict) -> dict:
        response = self._client.post(f"{self.url}/shard/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def snapshot(self) -> "HttpShard":
        """Each round is answered by the shard's current generation."""
        return self

    def encode(self, question: str) -> None:
        """Each shard server encodes the question itself (once: it caches the vector)."""

    def plan(self, question: str, dated: Filters | None, with_stats: bool) -> SourcePlan:
        return SourcePlan.from_json(self._post("plan", {"question": question, "with_stats": with_stats,
                                                        "dated": dated.to_json() if dated else None}))

    def hits(self, question, depth, mode, filters, corpus):
        doc = self._post("hits", {"question": question, "depth": depth, "mode": mode,
                                  "filters": filters.to_json() if filters else None,
                                  "corpus": corpus.to_json() if corpus else None})
        return {kind: [ChunkHit.from_json(r) for r in rows] for kind, rows in doc["hits"].items()}

    def rescore(self, question, candidates, corpus):
        doc = self._post("rescore", {"question": question, "candidates": candidates,
                                     "corpus": corpus.to_json() if corpus else None})
        return {int(cid): (float(score), float(dense)) for cid, score, dense in doc["scores"]}

    def articles(self, ids: list[str]) -> dict[str, Article]:
        doc = self._post("articles", {"ids": ids})
        return {a["id"]: Article(a["id"], a["text"], a.get("title") or "", a.get("date"), a.get("url"), a.get("source"))
                for a in doc["articles"]}

    def sentences(self, article_id: str, start: int, end: int) -> list[SentenceRow]:
        """The passage's stored sentences with their dates (the answer stage needs no vectors)."""
        doc = self._post("sentences", {"article_id": article_id, "start": start, "end": end})
        return [SentenceRow.from_json(r) for r in doc["sentences"]]

    def stories(self, ids: list[str]) -> dict[str, StoryView]:
        """The ranked articles' stories on this shard (with signatures: the front joins shards' copies)."""
        doc = self._post("stories", {"ids": ids})
        return {aid: StoryView.from_json(view) for aid, view in doc["stories"].items()}


class ShardedArchive:
    """The shards of one index, searched and answered as one index would be."""

    def __init__(self, sources: list[Source], settings: Settings):
        if not sources:
            raise InvalidInput("name at least one shard")
        self.pipeline = SearchPipeline(sources, settings.fusion, EMPTY)
        self.reader_dir = settings.answer.reader_dir

    @classmethod
    def open(cls, name: str, shards: int, index_dir: str | None = None) -> "ShardedArchive":
        """Every shard opened in this process."""
        archives = [Archive.open(n, index_dir) for n in shard_names(name, shards)]
        return cls([a.source for a in archives], archives[0].settings)

    def search(self, query: Query) -> SearchResult:
        return self.pipeline.search(query)

    def answer(self, query: Query) -> dict:
        return self.pipeline.answer(query, load_reader(self.reader_dir), reader_identity(self.reader_dir))


class HttpShards(ShardedArchive):
    """Shards served by `newsrag serve` processes, merged here."""

    def __init__(self, urls: list[str], settings: Settings, timeout: float = 30.0, headers: dict | None = None):
        import httpx

        self.urls = [u.rstrip("/") for u in urls]
        self._client = httpx.Client(timeout=timeout, headers=headers or {})
        super().__init__([HttpShard(u, self._client) for u in self.urls], settings)

    def close(self) -> None:
        self._client.close()

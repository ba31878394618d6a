"""Sharded search: an index split into shards by article-id hash, searched with an exact merge.

Shard `i` of index `NAME` is the ordinary index `NAME.shard-<i>` (its own SQLite, FAISS and BM25), so
each can be ingested, checked, served and aged out alone. A query ranks chunks in every shard, the
ranked chunk lists merge by score, and passages are built from the merged list exactly as one index
builds them. Dense scores are cosines, comparable across shards: the merge gives the same top-k as
one big index. BM25 scores use each shard's own idf and length statistics, so a bm25 merge is an
approximation (close when shards are large random samples, which hashing gives); hybrid's
rank fusion and second stage are per index and are not offered across shards.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .answering import Passage, build_passages
from .archive import Archive, IngestReport
from .articles import Article, LoadFailure
from .errors import EmptyIndex, InvalidInput
from .retrieval import Hit, retrieve
from .store import ChunkRow

SHARD_MODES = ("dense", "bm25")
CANDIDATES_PER_PASSAGE = 3  # as Archive.search: k passages are built from the top 3k chunks


def shard_of(article_id: str, shards: int) -> int:
    """The shard an article lives in: a stable hash of its id, the same on every machine."""
    return int.from_bytes(hashlib.sha1(article_id.encode("utf-8")).digest()[:8], "big") % shards


def shard_names(name: str, shards: int) -> list[str]:
    """The index names of the shards of `name`."""
    if shards < 1:
        raise InvalidInput("a sharded index needs at least one shard")
    return [f"{name}.shard-{i}" for i in range(shards)]


def check_shard_mode(mode: str | None) -> str:
    mode = mode or "dense"
    if mode not in SHARD_MODES:
        raise InvalidInput(f"sharded search offers modes {', '.join(SHARD_MODES)}, not {mode!r}")
    return mode


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
        report = Archive.open(shard_name, index_dir, create=True).ingest(articles)
        for part in ("added", "unchanged", "replaced", "failed"):
            getattr(total, part).extend(getattr(report, part))
        total.chunks += report.chunks
        total.truncated_chunks += report.truncated_chunks
        total.seconds += report.seconds
    return total


@dataclass(frozen=True)
class ShardHit:
    """One ranked chunk of one shard, with what a front needs to merge it and build passages."""

    shard: int
    chunk_id: int
    article_id: str
    start: int
    end: int
    score: float

    def to_json(self) -> dict:
        return {"shard": self.shard, "chunk_id": self.chunk_id, "article_id": self.article_id,
                "start": self.start, "end": self.end, "score": self.score}


def chunk_hits(archive: Archive, query_vector: np.ndarray, question: str, depth: int, mode: str,
               shard: int = 0) -> list[ShardHit]:
    """One shard's top `depth` chunks for a question (dense or bm25), best first."""
    derived = archive.derived()
    hits = retrieve(check_shard_mode(mode), depth, query_vector, question, derived.vectors, derived.lexical, None)
    rows = archive.store.chunks_by_id(h.chunk_id for h in hits)
    return [ShardHit(shard, h.chunk_id, rows[h.chunk_id].article_id, rows[h.chunk_id].start, rows[h.chunk_id].end,
                     h.score) for h in hits if h.chunk_id in rows]


def merge_passages(hits: Iterable[ShardHit], articles: dict[str, Article], k: int) -> list[Passage]:
    """Passages from the shards' hits merged by score, built as one index builds them."""
    ranked = sorted(hits, key=lambda h: -h.score)[: k * CANDIDATES_PER_PASSAGE]
    ids = {(h.shard, h.chunk_id): n for n, h in enumerate(ranked)}  # shard-local ids made unique
    chunks = {ids[(h.shard, h.chunk_id)]: ChunkRow(ids[(h.shard, h.chunk_id)], h.article_id, 0, h.start, h.end)
              for h in ranked}
    merged = [Hit(ids[(h.shard, h.chunk_id)], h.score) for h in ranked]
    return build_passages(merged, chunks, articles, k)


class ShardedArchive:
    """The shards of one index opened in this process, searched together."""

    def __init__(self, shards: list[Archive]):
        self.shards = shards

    @classmethod
    def open(cls, name: str, shards: int, index_dir: str | None = None) -> "ShardedArchive":
        return cls([Archive.open(n, index_dir) for n in shard_names(name, shards)])

    def search(self, question: str, k: int = 5, mode: str | None = None) -> list[Passage]:
        """The top-k passages over all shards; the question is encoded once."""
        mode = check_shard_mode(mode)
        if not any(len(a.derived().vectors) for a in self.shards):
            raise EmptyIndex("the sharded index holds no articles yet")
        query_vector = self.shards[0].embedder.encode_query(question)
        depth = k * CANDIDATES_PER_PASSAGE
        with ThreadPoolExecutor(max_workers=len(self.shards)) as pool:
            parts = list(pool.map(lambda i: chunk_hits(self.shards[i], query_vector, question, depth, mode, i),
                                  range(len(self.shards))))
        hits = [h for part in parts for h in part]
        articles: dict[str, Article] = {}
        for i, archive in enumerate(self.shards):
            articles.update(archive.store.get_articles({h.article_id for h in hits if h.shard == i}))
        return merge_passages(hits, articles, k)



def hits_document(archive: Archive, question: str, k: int, mode: str | None, filtered: bool = False) -> dict:
    """A shard's answer to a front (`POST /search` with `"hits": true`): its top 3k chunks, ranked."""
    if filtered:
        raise InvalidInput("filters and recency are not offered with hits (sharded search)")
    mode = check_shard_mode(mode)
    hits = []
    if len(archive.derived().vectors):
        hits = chunk_hits(archive, archive.embedder.encode_query(question), question, k * CANDIDATES_PER_PASSAGE, mode)
    return {"question": question, "hits": [h.to_json() for h in hits], "retrieval": {"mode": mode, "k": k}}


class HttpShards:
    """Shards served by `newsrag serve` processes, merged here: the same passages as one index (dense)."""

    def __init__(self, urls: list[str], timeout: float = 30.0, headers: dict | None = None):
        import httpx

        if not urls:
            raise InvalidInput("name at least one shard URL")
        self.urls = [u.rstrip("/") for u in urls]
        self._client = httpx.Client(timeout=timeout, headers=headers or {})

    def close(self) -> None:
        self._client.close()

    def _post(self, url: str, body: dict) -> dict:
        response = self._client.post(f"{url}/search", json=body)
        response.raise_for_status()
        return response.json()

    def _article(self, url: str, article_id: str) -> Article:
        from urllib.parse import quote

        response = self._client.get(f"{url}/articles/{quote(article_id, safe='')}", headers={"Accept": "application/json"})
        response.raise_for_status()
        doc = response.json()
        return Article(doc["id"], doc["text"], doc.get("title") or "", doc.get("date"), doc.get("url"), doc.get("source"))

    def search(self, question: str, k: int = 5, mode: str | None = None) -> list[Passage]:
        """Every shard's ranked chunks in parallel, merged by score; then the articles the passages need."""
        mode = check_shard_mode(mode)
        body = {"question": question, "k": k, "mode": mode, "hits": True}
        with ThreadPoolExecutor(max_workers=len(self.urls)) as pool:
            docs = list(pool.map(lambda url: self._post(url, body), self.urls))
            hits = [ShardHit(i, h["chunk_id"], h["article_id"], h["start"], h["end"], h["score"])
                    for i, doc in enumerate(docs) for h in doc["hits"]]
            ranked = sorted(hits, key=lambda h: -h.score)[: k * CANDIDATES_PER_PASSAGE]
            wanted = sorted({(h.shard, h.article_id) for h in ranked})
            fetched = pool.map(lambda sa: self._article(self.urls[sa[0]], sa[1]), wanted)
            articles = {a.id: a for a in fetched}
        return merge_passages(ranked, articles, k)

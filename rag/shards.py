"""Sharded search: an index split into shards by article-id hash, searched with an exact merge.

Shard `i` of index `NAME` is the ordinary index `NAME.shard-<i>` (its own SQLite, FAISS and BM25), so
each can be ingested, checked, served and aged out alone. A front asks every shard in parallel, in
rounds, and reproduces what one index of all the articles would rank:
1. plan: each shard reports its BM25 statistics for the question's terms (documents, total length,
   document frequencies) and whether any of its articles falls in a time the question names; the
   front sums the statistics and decides the time filter for all shards at once;
2. hits: each shard ranks its chunks (dense: cosines; bm25: scored with the summed statistics, so
   scores are the one-index scores) within the filters, and the front merges the lists by score;
3. rescore (hybrid only): the front fuses the merged dense and bm25 lists by rank, sends each shard
   its share of the fused head, and each re-scores them with the second stage using the summed
   idf; the front ranks the head by those scores.
Recency and passages are then computed at the front from the merged hits, as one index does.
The merge is exact for the exact (`flat-ip`) vector index; ties in score are broken by shard-local
chunk ids rather than one index's ingest order.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Iterable, Protocol, TypeVar

import numpy as np

from . import lexical as lexical_module
from .answering import Passage, build_passages
from .archive import CANDIDATES_PER_PASSAGE, Archive, IngestReport
from .articles import Article, LoadFailure
from .embedding import Embedder
from .errors import EmptyIndex, InvalidInput
from .lexical import CorpusStats, LexicalIndex
from .rescore import stems
from .retrieval import (Filters, FusionSettings, Hit, _below, check_mode, check_recency, fuse, prefer_recent,
                        second_stage, time_in_question, time_scope)
from .store import ChunkRow
from .timeframe import parse_as_of

T = TypeVar("T")


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
        report = Archive.open(shard_name, index_dir, create=True).ingest(articles)
        for part in ("added", "unchanged", "replaced", "failed"):
            getattr(total, part).extend(getattr(report, part))
        total.chunks += report.chunks
        total.truncated_chunks += report.truncated_chunks
        total.seconds += report.seconds
    return total


def filters_to_json(filters: Filters | None) -> dict | None:
    """Filters as the shard protocol carries them (already normalised)."""
    if filters is None:
        return None
    return {"date_from": filters.date_from, "date_to": filters.date_to, "source": filters.source,
            "article_ids": list(filters.article_ids) if filters.article_ids else None,
            "include_undated": filters.include_undated}


def filters_from_json(doc: dict | None) -> Filters | None:
    return None if doc is None else Filters(**doc)


@dataclass(frozen=True)
class ChunkHit:
    """One ranked chunk of one shard, with what a front needs to merge it and build passages."""

    chunk_id: int
    article_id: str
    start: int
    end: int
    score: float

    def to_json(self) -> list:
        return [self.chunk_id, self.article_id, self.start, self.end, self.score]

    @classmethod
    def from_json(cls, row: list) -> "ChunkHit":
        return cls(int(row[0]), str(row[1]), int(row[2]), int(row[3]), float(row[4]))


@dataclass(frozen=True)
class ShardPlan:
    """A shard's answer to round 1: its chunk count, its BM25 statistics for the question's terms,
    and (when the question names a time) whether any of its articles falls in that time."""

    chunks: int
    stats: CorpusStats
    dated: bool | None

    def to_json(self) -> dict:
        return {"chunks": self.chunks, "stats": self.stats.to_json(), "dated": self.dated}

    @classmethod
    def from_json(cls, doc: dict) -> "ShardPlan":
        return cls(int(doc["chunks"]), CorpusStats.from_json(doc["stats"]), doc["dated"])


# --- the shard side: what one index answers to a front ------------------------------------------
def _lexical(archive: Archive) -> LexicalIndex:
    """The shard's BM25 index, with document lengths (computed from SQLite once for folders saved
    before lengths were stored)."""
    lexical = archive.derived().lexical
    if lexical.lengths is None:
        texts = dict(archive.store.iter_chunk_texts())
        lexical.lengths = LexicalIndex.token_lengths([texts.get(int(c), "") for c in lexical.ids])
    return lexical


@lru_cache(maxsize=1024)
def query_vector(embedder: Embedder, question: str) -> np.ndarray:
    """A question's vector, encoded once per process however many rounds (or in-process shards) ask."""
    vector = embedder.encode_query(question)
    vector.setflags(write=False)
    return vector


def question_terms(lexical: LexicalIndex, question: str) -> list[str]:
    """Every term either BM25 or the second stage weighs for this question."""
    return list(dict.fromkeys([*lexical.query_tokens(question), *lexical_module.question_terms(question, stems)]))


def plan(archive: Archive, question: str, dated: Filters | None) -> ShardPlan:
    """Round 1 on one shard."""
    lexical = _lexical(archive)
    allowed = archive._allowed(dated)
    matched = None if dated is None else allowed is None or bool(len(allowed))
    return ShardPlan(len(archive.derived().vectors), lexical.stats(question_terms(lexical, question)), matched)


def hits(archive: Archive, question: str, depth: int, mode: str, filters: Filters | None,
         corpus: CorpusStats | None) -> dict[str, list[ChunkHit]]:
    """Round 2 on one shard: its top `depth` chunks by dense cosine and/or by BM25 (with `corpus`,
    scored under the whole collection's statistics), within `filters`."""
    derived = archive.derived()
    allowed = archive._allowed(filters)
    found: dict[str, list[tuple[int, float]]] = {}
    if mode != "bm25":
        found["dense"] = derived.vectors.search(query_vector(archive.embedder, question), depth, allowed)
    if mode != "dense":
        found["bm25"] = _lexical(archive).search(question, depth, allowed, corpus)
    rows = archive.store.chunks_by_id({cid for part in found.values() for cid, _ in part})
    return {kind: [ChunkHit(cid, rows[cid].article_id, rows[cid].start, rows[cid].end, score)
                   for cid, score in part if cid in rows] for kind, part in found.items()}


def rescore(archive: Archive, question: str, candidates: list[tuple[int, float | None]],
            corpus: CorpusStats) -> dict[int, tuple[float, float]]:
    """Round 3 on one shard: second-stage scores (and cosines) of its fused candidates, weighing
    terms by the whole collection's idf."""
    derived = archive.derived()
    head = [Hit(cid, 0.0, dense_score=dense) for cid, dense in candidates]
    out = second_stage(head, query_vector(archive.embedder, question), question, derived.vectors, derived.lexical,
                       archive._contexts, archive.fusion.rescore, corpus.term_weights())
    return {h.chunk_id: (h.score, float(h.dense_score)) for h in out}


class Shard(Protocol):
    """One shard as a front sees it: in this process or behind `newsrag serve`."""

    def plan(self, question: str, dated: Filters | None) -> ShardPlan: ...
    def hits(self, question: str, depth: int, mode: str, filters: Filters | None,
             corpus: CorpusStats) -> dict[str, list[ChunkHit]]: ...
    def rescore(self, question: str, candidates: list[tuple[int, float | None]],
                corpus: CorpusStats) -> dict[int, tuple[float, float]]: ...
    def articles(self, ids: list[str]) -> dict[str, Article]: ...


@dataclass
class LocalShard:
    """A shard opened in this process."""

    archive: Archive

    def plan(self, question, dated):
        return plan(self.archive, question, dated)

    def hits(self, question, depth, mode, filters, corpus):
        return hits(self.archive, question, depth, mode, filters, corpus)

    def rescore(self, question, candidates, corpus):
        return rescore(self.archive, question, candidates, corpus)

    def articles(self, ids):
        return self.archive.store.get_articles(ids)


class HttpShard:
    """A shard served by `newsrag serve`, asked over the `/shard/*` endpoints (api/front.py)."""

    def __init__(self, url: str, client):
        self.url = url.rstrip("/")
        self._client = client

    def _post(self, path: str, body: dict) -> dict:
        response = self._client.post(f"{self.url}/shard/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def plan(self, question, dated):
        return ShardPlan.from_json(self._post("plan", {"question": question, "dated": filters_to_json(dated)}))

    def hits(self, question, depth, mode, filters, corpus):
        doc = self._post("hits", {"question": question, "depth": depth, "mode": mode,
                                  "filters": filters_to_json(filters), "corpus": corpus.to_json()})
        return {kind: [ChunkHit.from_json(r) for r in rows] for kind, rows in doc["hits"].items()}

    def rescore(self, question, candidates, corpus):
        doc = self._post("rescore", {"question": question, "candidates": candidates, "corpus": corpus.to_json()})
        return {int(cid): (float(score), float(dense)) for cid, score, dense in doc["scores"]}

    def articles(self, ids):
        doc = self._post("articles", {"ids": ids})
        return {a["id"]: Article(a["id"], a["text"], a.get("title") or "", a.get("date"), a.get("url"), a.get("source"))
                for a in doc["articles"]}


# --- the front: merges shards as one index ranks -------------------------------------------------
class ShardedSearch:
    """Search over shards with one index's results: all three modes, filters, times named in the
    question, recency."""

    def __init__(self, shards: list[Shard], fusion: FusionSettings | None = None):
        if not shards:
            raise InvalidInput("name at least one shard")
        self.shards = shards
        self.fusion = fusion or FusionSettings()

    def _each(self, call: Callable[[int, Shard], T]) -> list[T]:
        """`call(i, shard)` on every shard at once."""
        with ThreadPoolExecutor(max_workers=len(self.shards)) as pool:
            return list(pool.map(lambda i: call(i, self.shards[i]), range(len(self.shards))))

    def search(self, question: str, k: int = 5, mode: str | None = None, filters: Filters | None = None,
               recency: str | None = None, as_of: str | None = None) -> tuple[list[Passage], dict]:
        """The top-k passages over all shards, and the retrieval block (as `Archive.search` gives them)."""
        mode, recency, today = check_mode(mode), check_recency(recency), parse_as_of(as_of)
        found = time_in_question(question, filters, today)
        plans = self._each(lambda i, s: s.plan(question, found[1] if found else None))
        if not sum(p.chunks for p in plans):
            raise EmptyIndex("the sharded index holds no articles yet")
        corpus = sum((p.stats for p in plans), CorpusStats())
        scope, time_filter = filters, None
        if found:
            scope, time_filter = time_scope(*found, filters, applied=any(p.dated for p in plans))
        wanted = k * CANDIDATES_PER_PASSAGE
        depth = max(wanted, self.fusion.depth) if mode == "hybrid" else wanted
        parts = self._each(lambda i, s: s.hits(question, depth, mode, scope, corpus))
        n = len(self.shards)
        where = {h.chunk_id * n + i: (i, h) for i, part in enumerate(parts) for rows in part.values() for h in rows}
        merged = {kind: sorted(((h.chunk_id * n + i, h.score) for i, part in enumerate(parts) for h in part.get(kind, [])),
                               key=lambda x: -x[1])[:depth] for kind in ("dense", "bm25")}
        if mode == "dense":
            ranked = [Hit(g, s, dense_rank=r, dense_score=s) for r, (g, s) in enumerate(merged["dense"], 1)]
        elif mode == "bm25":
            ranked = [Hit(g, s, bm25_rank=r, bm25_score=s) for r, (g, s) in enumerate(merged["bm25"], 1)]
        else:
            ranked = self._hybrid(question, wanted, merged, where, corpus)
        by_shard: dict[int, set[str]] = {}
        for h in ranked:
            by_shard.setdefault(where[h.chunk_id][0], set()).add(where[h.chunk_id][1].article_id)
        articles: dict[str, Article] = {}
        for found in self._each(lambda i, s: s.articles(sorted(by_shard[i])) if i in by_shard else {}):
            articles.update(found)
        chunks = {g: ChunkRow(g, h.article_id, 0, h.start, h.end) for g, (_, h) in where.items()}
        if recency == "prefer_recent":
            dates = {h.chunk_id: articles[chunks[h.chunk_id].article_id].date for h in ranked
                     if chunks[h.chunk_id].article_id in articles}
            ranked = prefer_recent(ranked, dates, today, self.fusion)
        retrieval = {"mode": mode, "k": k, "candidates": len(ranked), "filters": filters.describe() if filters else {},
                     "time_filter": time_filter, "as_of": today.isoformat(), "recency": recency, "shards": n}
        if mode == "hybrid":
            retrieval["fusion"] = self.fusion.describe()
        return build_passages(ranked, chunks, articles, k), retrieval

    def _hybrid(self, question: str, wanted: int, merged: dict[str, list[tuple[int, float]]],
                where: dict[int, tuple[int, ChunkHit]], corpus: CorpusStats) -> list[Hit]:
        """Rank fusion of the merged lists, then the second stage on the shards that hold the head."""
        fused = fuse(merged["dense"], merged["bm25"], self.fusion)
        if not self.fusion.rerank:
            return fused[:wanted]
        head = fused[: self.fusion.rerank]
        asks: dict[int, list[tuple[int, float | None]]] = {}
        for h in head:
            shard, chunk = where[h.chunk_id]
            asks.setdefault(shard, []).append((chunk.chunk_id, h.dense_score))
        scored = self._each(lambda i, s: s.rescore(question, asks[i], corpus) if i in asks else {})
        out = []
        for h in head:
            shard, chunk = where[h.chunk_id]
            if chunk.chunk_id in scored[shard]:
                score, dense = scored[shard][chunk.chunk_id]
                out.append(replace(h, score=score, dense_score=dense))
        out.sort(key=lambda h: (-h.score, h.chunk_id))
        return (out + _below(fused[self.fusion.rerank: wanted], out))[:wanted]


class ShardedArchive(ShardedSearch):
    """The shards of one index opened in this process, searched together."""

    @classmethod
    def open(cls, name: str, shards: int, index_dir: str | None = None) -> "ShardedArchive":
        archives = [Archive.open(n, index_dir) for n in shard_names(name, shards)]
        return cls([LocalShard(a) for a in archives], archives[0].fusion)

    def search(self, question: str, *args, **kwargs) -> tuple[list[Passage], dict]:
        """As `ShardedSearch.search`; the question is encoded once, before the shards' threads ask."""
        query_vector(self.shards[0].archive.embedder, question)
        return super().search(question, *args, **kwargs)


class HttpShards(ShardedSearch):
    """Shards served by `newsrag serve` processes, merged here."""

    def __init__(self, urls: list[str], timeout: float = 30.0, headers: dict | None = None):
        import httpx

        if not urls:
            raise InvalidInput("name at least one shard URL")
        self.urls = [u.rstrip("/") for u in urls]
        self._client = httpx.Client(timeout=timeout, headers=headers or {})
        super().__init__([HttpShard(u, self._client) for u in self.urls])

    def close(self) -> None:
        self._client.close()

"""The one search pipeline: a `Query` in, a `SearchResult` (cited passages, the retrieval block,
per-stage timings) out, over one index or over many shards alike (rag/source.py's rounds).

Several sources rank as one index of all their articles would: BM25 statistics are summed first,
each source ranks its chunks under them, the lists merge by score (exact for the `flat-ip` vector
index; ties broken by source-local chunk ids), hybrid fuses the merged lists and has each source
re-score its share of the head. Recency and passages are computed here from the merged hits, and
the answer stage reads the passages with the reader, asking each passage's own source for its
stored sentences and dates.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

from .answering import Passage, SpanReader, build_passages, choose_answer
from .articles import Article
from .errors import EmptyIndex
from .lexical import CorpusStats
from .query import Query
from .retrieval import FusionSettings, Hit, below, fuse, prefer_recent, time_in_question, time_scope
from .source import ChunkHit, Source
from .store import ChunkRow
from .stories import MinHasher, StoryView, also_in, first_of_each_story, group_keys

CANDIDATES_PER_PASSAGE = 3  # k passages are built from the top 3k chunks
STORY_WIDENING = 4  # one passage group per story takes 4x the candidates (hybrid fuses no deeper for it),
MAX_CANDIDATES = 1000  # and 4x more again, deeper, up to this, while copies of a few stories crowd out k passages
T = TypeVar("T")


@dataclass(frozen=True)
class SearchResult:
    """Passages in rank order, the retrieval block (what was asked and how it ranked), timings in
    ms, and which source holds each cited article (the answer stage asks it for sentences)."""

    query: Query
    passages: list[Passage]
    retrieval: dict
    timings: dict[str, float]
    owners: dict[str, int]

    def to_json(self) -> dict:
        """The `/search` JSON."""
        return {"question": self.query.question, "passages": [p.to_json() for p in self.passages],
                "retrieval": self.retrieval, "timings_ms": {k: round(v, 3) for k, v in self.timings.items()}}


class SearchPipeline:
    """Ranks a query over its sources; `empty_message` is what an empty collection says."""

    def __init__(self, sources: list[Source], fusion: FusionSettings, empty_message: str):
        self.sources = sources
        self.fusion = fusion
        self.empty_message = empty_message

    @staticmethod
    def _each(sources: list[Source], call: Callable[[int, Source], T]) -> list[T]:
        """`call(i, source)` on every source, at once when there are several."""
        if len(sources) == 1:
            return [call(0, sources[0])]
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            return list(pool.map(lambda i: call(i, sources[i]), range(len(sources))))

    def search(self, query: Query) -> SearchResult:
        return self._search(query, [s.snapshot() for s in self.sources])

    def _search(self, query: Query, sources: list[Source]) -> SearchResult:
        question, mode, k = query.question, query.mode, query.k
        several = len(sources) > 1
        t0 = time.perf_counter()
        found = time_in_question(question, query.filters, query.as_of)
        plans = self._each(sources, lambda i, s: s.plan(question, found[1] if found else None, several))
        if not sum(p.chunks for p in plans):
            raise EmptyIndex(self.empty_message)
        stats = [p.stats for p in plans if p.stats is not None]  # every shard's, or one index's segments'
        corpus = sum(stats, CorpusStats()) if stats else None
        scope, time_filter = query.filters, None
        if found:
            scope, time_filter = time_scope(*found, query.filters, applied=any(p.dated for p in plans))
        t1 = time.perf_counter()
        self._each(sources, lambda i, s: s.encode(question))
        t2 = time.perf_counter()
        base = k * CANDIDATES_PER_PASSAGE
        wanted, fused_depth = base * (STORY_WIDENING if query.dedupe else 1), max(base, self.fusion.depth)
        while True:
            depth = fused_depth if mode == "hybrid" else wanted
            ranked, where = self._rank(sources, question, mode, wanted, depth, scope, corpus)
            t3 = time.perf_counter()
            owners, articles = self._articles(sources, ranked, where)
            chunks = {g: ChunkRow(g, h.article_id, 0, h.start, h.end) for g, (_, h) in where.items()}
            if query.recency == "prefer_recent":
                dates = {h.chunk_id: articles[chunks[h.chunk_id].article_id].date for h in ranked
                         if chunks[h.chunk_id].article_id in articles}
                ranked = prefer_recent(ranked, dates, query.as_of, self.fusion)
            views = self._stories(sources, owners)
            keys = group_keys(views, owners, MinHasher() if len(sources) > 1 else None)
            kept = ranked
            if query.dedupe:  # one passage group per story: its best-ranked copy; the others go in also_in
                speakers = first_of_each_story([chunks[h.chunk_id].article_id for h in ranked], keys)
                kept = [h for h in ranked if chunks[h.chunk_id].article_id in speakers]
            passages = build_passages(kept, chunks, articles, k)
            if len(passages) >= k or len(kept) == len(ranked) or len(ranked) < wanted or wanted >= MAX_CANDIDATES:
                break
            wanted = min(wanted * STORY_WIDENING, MAX_CANDIDATES)
            fused_depth = max(fused_depth, wanted)
        passages = [replace(p, also_in=tuple(also_in(p.article.id, views, keys))) for p in passages]
        t4 = time.perf_counter()
        timings = {"filter": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "retrieve": (t3 - t2) * 1e3,
                   "passages": (t4 - t3) * 1e3}
        retrieval = self._retrieval_block(query, len(ranked), time_filter)
        retrieval["stories"] = {"dedupe": query.dedupe,
                                "copies_grouped": len({chunks[h.chunk_id].article_id for h in ranked})
                                - len({chunks[h.chunk_id].article_id for h in kept})}
        return SearchResult(query, passages, retrieval, timings, owners)

    def _rank(self, sources: list[Source], question: str, mode: str, wanted: int, depth: int, scope,
              corpus: CorpusStats | None) -> tuple[list[Hit], dict[int, tuple[int, ChunkHit]]]:
        """The top `wanted` chunks of all sources (each retriever asked for `depth`), and the source and
        chunk behind each global id."""
        parts = self._each(sources, lambda i, s: s.hits(question, depth, mode, scope, corpus))
        n = len(sources)
        where = {h.chunk_id * n + i: (i, h) for i, part in enumerate(parts) for rows in part.values() for h in rows}
        merged = {kind: sorted(((h.chunk_id * n + i, h.score) for i, part in enumerate(parts) for h in part.get(kind, [])),
                               key=lambda x: -x[1])[:depth] for kind in ("dense", "bm25")}
        if mode == "dense":
            ranked = [Hit(g, s, dense_rank=r, dense_score=s) for r, (g, s) in enumerate(merged["dense"], 1)]
        elif mode == "bm25":
            ranked = [Hit(g, s, bm25_rank=r, bm25_score=s) for r, (g, s) in enumerate(merged["bm25"], 1)]
        else:
            ranked = self._hybrid(sources, question, wanted, merged, where, corpus)
        return ranked, where

    def _retrieval_block(self, query: Query, candidates: int, time_filter: dict | None) -> dict:
        """What was asked and how it was ranked."""
        retrieval = {"mode": query.mode, "k": query.k, "candidates": candidates,
                     "filters": query.filters.describe() if query.filters else {}, "time_filter": time_filter,
                     "as_of": query.as_of.isoformat(), "recency": query.recency}
        if query.mode == "hybrid":
            retrieval["fusion"] = self.fusion.describe()
        if query.recency == "prefer_recent":
            retrieval["recency_boost"] = {"max_share_of_score_range": self.fusion.recency_weight,
                                          "half_life_days": self.fusion.recency_half_life_days}
        return retrieval

    def _articles(self, sources: list[Source], ranked: list[Hit], where: dict[int, tuple[int, ChunkHit]]
                  ) -> tuple[dict[str, int], dict[str, Article]]:
        """The ranked chunks' articles, each asked of the source that holds it."""
        owners = {where[h.chunk_id][1].article_id: where[h.chunk_id][0] for h in ranked}
        return owners, self._ask_owners(sources, owners, lambda s, ids: s.articles(ids))

    def _stories(self, sources: list[Source], owners: dict[str, int]) -> dict[str, StoryView]:
        """Each ranked article's story, asked of the source that holds it."""
        return self._ask_owners(sources, owners, lambda s, ids: s.stories(ids))

    def _ask_owners(self, sources: list[Source], owners: dict[str, int],
                    ask: Callable[[Source, list[str]], dict[str, T]]) -> dict[str, T]:
        """`ask(source, its article ids)` of every source that holds some of `owners`, merged."""
        wanted: dict[int, list[str]] = {}
        for article_id, i in owners.items():
            wanted.setdefault(i, []).append(article_id)
        out: dict[str, T] = {}
        for found in self._each(sources, lambda i, s: ask(s, sorted(wanted[i])) if i in wanted else {}):
            out.update(found)
        return out

    def _hybrid(self, sources: list[Source], question: str, wanted: int, merged: dict[str, list[tuple[int, float]]],
                where: dict[int, tuple[int, ChunkHit]], corpus: CorpusStats | None) -> list[Hit]:
        """Rank fusion of the merged lists, then the second stage on the sources that hold the head."""
        fused = fuse(merged["dense"], merged["bm25"], self.fusion)
        if not self.fusion.rerank:
            return fused[:wanted]
        head = fused[: self.fusion.rerank]
        asks: dict[int, list[tuple[int, float | None]]] = {}
        for h in head:
            source, chunk = where[h.chunk_id]
            asks.setdefault(source, []).append((chunk.chunk_id, h.dense_score))
        scored = self._each(sources, lambda i, s: s.rescore(question, asks[i], corpus) if i in asks else {})
        out = []
        for h in head:
            source, chunk = where[h.chunk_id]
            if chunk.chunk_id in scored[source]:
                score, dense = scored[source][chunk.chunk_id]
                out.append(replace(h, score=score, dense_score=dense))
        out.sort(key=lambda h: (-h.score, h.chunk_id))
        return (out + below(fused[self.fusion.rerank: wanted], out))[:wanted]

    def answer(self, query: Query, reader: SpanReader, reader_identity: dict) -> dict:
        """The full answer document (the JSON `/answer` and `ask --json` return)."""
        started = time.perf_counter()
        sources = [s.snapshot() for s in self.sources]
        result = self._search(query, sources)
        t0 = time.perf_counter()
        answer, reason = choose_answer(
            query.question, result.passages,
            lambda p: sources[result.owners[p.article.id]].sentences(p.article.id, p.start, p.end), reader)
        timings = {**result.timings, "answer": (time.perf_counter() - t0) * 1e3,
                   "total": (time.perf_counter() - started) * 1e3}
        return {
            "question": query.question,
            "answer": answer.to_json() if answer else None,
            "no_answer": None if answer else {"reason": reason},
            "passages": [p.to_json() for p in result.passages],
            "retrieval": result.retrieval,
            "reader": reader_identity,
            "timings_ms": {k: round(v, 3) for k, v in timings.items()},
        }

"""What the search pipeline asks of an index: the `Source` protocol, and `LocalSource`, an index
opened in this process. A shard served elsewhere implements the same protocol over HTTP
(rag/shards.py), so one pipeline (rag/search.py) ranks one index or many shards alike.

The pipeline asks in rounds:
1. `plan`: the source's chunk count, its BM25 statistics for the question's terms (asked only when
   there are several sources), and whether any of its articles falls in a time the question names;
2. `hits`: its top chunks by dense cosine and/or BM25 within the filters (BM25 scored with the
   summed statistics when given, so scores equal one big index's);
3. `rescore` (hybrid): second-stage scores of its share of the fused head;
then `articles` and `sentences` for the passages and the answer. A query asks all rounds of one
`snapshot`, so a local index answers it from one generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np

from .articles import Article
from .embedding import Embedder
from .lexical import CorpusStats, LexicalIndex
from .query import Filters
from .rescore import ChunkContext, RescoreWeights
from .retrieval import Hit, second_stage
from .segments import Derived, SegmentedLexical
from .store import SentenceRow, Store
from .stories import StoryView
from .terms import question_terms, stems


@dataclass(frozen=True)
class ChunkHit:
    """One ranked chunk of one source, with what the pipeline needs to merge it and build passages."""

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
class SourcePlan:
    """A source's answer to round 1: its chunk count, its BM25 statistics for the question's terms
    (None when not asked and its own are one index's, i.e. one segment), and (when the question names a time)
    whether any article falls in it."""

    chunks: int
    stats: CorpusStats | None
    dated: bool | None

    def to_json(self) -> dict:
        return {"chunks": self.chunks, "stats": self.stats.to_json() if self.stats else None, "dated": self.dated}

    @classmethod
    def from_json(cls, doc: dict) -> "SourcePlan":
        stats = CorpusStats.from_json(doc["stats"]) if doc.get("stats") else None
        return cls(int(doc["chunks"]), stats, doc["dated"])


class Source(Protocol):
    """One index as the pipeline sees it: in this process or behind `newsrag serve`.
    `corpus` None: score with the source's own statistics (it is the whole collection)."""

    def snapshot(self) -> "Source": ...
    def encode(self, question: str) -> None: ...
    def plan(self, question: str, dated: Filters | None, with_stats: bool) -> SourcePlan: ...
    def hits(self, question: str, depth: int, mode: str, filters: Filters | None,
             corpus: CorpusStats | None) -> dict[str, list[ChunkHit]]: ...
    def rescore(self, question: str, candidates: list[tuple[int, float | None]],
                corpus: CorpusStats | None) -> dict[int, tuple[float, float]]: ...
    def articles(self, ids: list[str]) -> dict[str, Article]: ...
    def sentences(self, article_id: str, start: int, end: int) -> list[SentenceRow]: ...
    def stories(self, ids: list[str]) -> dict[str, StoryView]: ...


@lru_cache(maxsize=1024)
def query_vector(embedder: Embedder, question: str) -> np.ndarray:
    """A question's vector, encoded once per process however many rounds (or in-process shards) ask."""
    vector = embedder.encode_query(question)
    vector.setflags(write=False)
    return vector


def weighed_terms(lexical: LexicalIndex | SegmentedLexical, question: str) -> list[str]:
    """Every term either BM25 or the second stage weighs for this question."""
    return list(dict.fromkeys([*lexical.query_tokens(question), *question_terms(question, stems)]))


class LocalSource:
    """An index opened in this process: its SQLite store and its current derived state."""

    def __init__(self, store: Store, derived: Callable[[], Derived], embedder: Embedder, weights: RescoreWeights):
        self.store = store
        self.derived = derived
        self.embedder = embedder
        self.weights = weights

    def snapshot(self) -> "LocalSource":
        """This source pinned to its current derived state: every round of one query reads the same
        FAISS and BM25 files, even when a writer swaps in a new generation meanwhile."""
        pinned = self.derived()
        return LocalSource(self.store, lambda: pinned, self.embedder, self.weights)

    def encode(self, question: str) -> None:
        query_vector(self.embedder, question)

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """The chunk ids the filters admit; None when nothing is filtered."""
        if filters is None or filters.is_empty():
            return None
        return self.store.chunk_ids_matching(filters)

    def lexical(self) -> SegmentedLexical:
        """The BM25 segments, scored as one collection."""
        return self.derived().lexical

    def plan(self, question: str, dated: Filters | None, with_stats: bool) -> SourcePlan:
        lexical = self.lexical()  # several segments score under their summed statistics, as shards do
        stats = lexical.stats(weighed_terms(lexical, question)) if with_stats or not lexical.whole else None
        allowed = None if dated is None else self.allowed(dated)
        matched = None if dated is None else allowed is None or bool(len(allowed))
        return SourcePlan(len(self.derived().vectors), stats, matched)

    def hits(self, question: str, depth: int, mode: str, filters: Filters | None,
             corpus: CorpusStats | None) -> dict[str, list[ChunkHit]]:
        derived = self.derived()
        allowed = self.allowed(filters)
        found: dict[str, list[tuple[int, float]]] = {}
        if mode != "bm25":
            found["dense"] = derived.vectors.search(query_vector(self.embedder, question), depth, allowed)
        if mode != "dense":
            found["bm25"] = derived.lexical.search(question, depth, allowed, corpus)
        rows = self.store.chunks_by_id({cid for part in found.values() for cid, _ in part})
        return {kind: [ChunkHit(cid, rows[cid].article_id, rows[cid].start, rows[cid].end, score)
                       for cid, score in part if cid in rows] for kind, part in found.items()}

    def rescore(self, question: str, candidates: list[tuple[int, float | None]],
                corpus: CorpusStats | None) -> dict[int, tuple[float, float]]:
        derived = self.derived()
        head = [Hit(cid, 0.0, dense_score=dense) for cid, dense in candidates]
        out = second_stage(head, query_vector(self.embedder, question), question, derived.vectors, derived.lexical,
                           self.contexts, self.weights, corpus.term_weights() if corpus else None)
        return {h.chunk_id: (h.score, float(h.dense_score)) for h in out}

    def articles(self, ids: list[str]) -> dict[str, Article]:
        return self.store.get_articles(ids)

    def sentences(self, article_id: str, start: int, end: int) -> list[SentenceRow]:
        return self.store.sentences_in(article_id, start, end)

    def stories(self, ids: list[str]) -> dict[str, StoryView]:
        return self.store.story_views(ids)

    def contexts(self, chunk_ids: list[int]) -> dict[int, ChunkContext]:
        """Chunk text and vector, stored sentences and their vectors, for the second stage."""
        chunks = self.store.chunks_by_id(chunk_ids)
        chunk_vectors = self.store.chunk_vectors(chunk_ids)
        articles = self.store.get_articles(c.article_id for c in chunks.values())
        spans: dict[str, list] = {}
        for c in chunks.values():
            spans.setdefault(c.article_id, []).append(c)
        out = {}
        for article_id, parts in spans.items():  # one read per article, however many of its chunks
            stored = self.store.sentences_in(article_id, min(c.start for c in parts), max(c.end for c in parts),
                                             details=False)
            text = articles[article_id].text
            for c in parts:
                rows = [r for r in stored if r.start >= c.start and r.end <= c.end]
                vectors = (np.vstack([r.vector for r in rows]) if rows
                           else np.zeros((0, self.embedder.dimension), np.float32))
                out[c.id] = ChunkContext(articles[article_id].title, text[c.start:c.end],
                                         [text[r.start:r.end] for r in rows], vectors, chunk_vectors.get(c.id))
        return out

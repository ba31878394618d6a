"""Retrieval modes over one index: dense (FAISS), bm25, and hybrid (weighted reciprocal rank fusion).

Filters become a set of allowed chunk ids before ranking, so both retrievers rank only what the
filter admits and a filtered query still returns k hits when k exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidInput

MODES = ("dense", "bm25", "hybrid")
DEFAULT_MODE = "hybrid"


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its fused score and the ranks each retriever gave it (1-based)."""

    chunk_id: int
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None
    dense_score: float | None = None
    bm25_score: float | None = None


@dataclass(frozen=True)
class FusionSettings:
    """Reciprocal rank fusion: score = sum of weight / (k + rank) over the retrievers."""

    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    depth: int = 100  # candidates taken from each retriever before fusing

    def describe(self) -> dict:
        return {"rrf_k": self.rrf_k, "dense_weight": self.dense_weight,
                "bm25_weight": self.bm25_weight, "depth": self.depth}


@dataclass(frozen=True)
class Filters:
    """Exact filters on article metadata; dates compare as ISO dates, bounds inclusive."""

    date_from: str | None = None
    date_to: str | None = None
    source: str | None = None
    article_ids: tuple[str, ...] | None = None
    include_undated: bool = False

    def is_empty(self) -> bool:
        return not (self.date_from or self.date_to or self.source or self.article_ids)

    def to_sql(self) -> tuple[str, list]:
        """A WHERE clause on the articles table `a`; undated articles fail a date bound unless included."""
        clauses, params = [], []
        if self.date_from:
            clauses.append("(a.date >= ?" + (" OR a.date IS NULL)" if self.include_undated else ")"))
            params.append(self.date_from)
        if self.date_to:
            clauses.append("(a.date <= ?" + (" OR a.date IS NULL)" if self.include_undated else ")"))
            params.append(self.date_to)
        if self.source:
            clauses.append("a.source = ?")
            params.append(self.source)
        if self.article_ids:
            clauses.append(f"a.id IN ({','.join('?' * len(self.article_ids))})")
            params.extend(self.article_ids)
        return " AND ".join(clauses) or "1", params

    def describe(self) -> dict:
        return {k: v for k, v in (("date_from", self.date_from), ("date_to", self.date_to),
                                  ("source", self.source),
                                  ("article_ids", list(self.article_ids) if self.article_ids else None)) if v}


def check_mode(mode: str | None) -> str:
    """The mode to use, or an InvalidInput naming the valid ones."""
    mode = mode or DEFAULT_MODE
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def fuse(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    settings: FusionSettings,
) -> list[Hit]:
    """Weighted reciprocal rank fusion of two ranked lists."""
    table: dict[int, dict] = {}
    for rank, (cid, score) in enumerate(dense, 1):
        table.setdefault(cid, {})["dense"] = (rank, score)
    for rank, (cid, score) in enumerate(lexical, 1):
        table.setdefault(cid, {})["bm25"] = (rank, score)
    hits = []
    for cid, found in table.items():
        score = 0.0
        d, b = found.get("dense"), found.get("bm25")
        if d:
            score += settings.dense_weight / (settings.rrf_k + d[0])
        if b:
            score += settings.bm25_weight / (settings.rrf_k + b[0])
        hits.append(Hit(cid, score, d[0] if d else None, b[0] if b else None,
                        d[1] if d else None, b[1] if b else None))
    hits.sort(key=lambda h: (-h.score, h.chunk_id))
    return hits


def retrieve(
    mode: str,
    k: int,
    query_vector: np.ndarray | None,
    question: str,
    vectors,
    lexical,
    allowed: np.ndarray | None,
    settings: FusionSettings = FusionSettings(),
) -> list[Hit]:
    """The top-k chunks for a question under one mode."""
    if mode == "dense":
        return [Hit(cid, s, dense_rank=r, dense_score=s)
                for r, (cid, s) in enumerate(vectors.search(query_vector, k, allowed), 1)]
    if mode == "bm25":
        return [Hit(cid, s, bm25_rank=r, bm25_score=s)
                for r, (cid, s) in enumerate(lexical.search(question, k, allowed), 1)]
    depth = max(k, settings.depth)
    fused = fuse(vectors.search(query_vector, depth, allowed), lexical.search(question, depth, allowed), settings)
    return fused[:k]

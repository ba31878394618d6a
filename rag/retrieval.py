"""Ranking rules the search pipeline (rag/search.py) applies: rank fusion, the second stage,
times named in a question, and the recency boost.

`hybrid` takes each retriever's top `depth` chunks, fuses them with weighted reciprocal rank
fusion, and re-scores the fused top `rerank` with the second stage in `rescore.py` (best-sentence
similarity and term coverage, all from stored data). Filters become a set of allowed chunk ids
before ranking, so every retriever ranks only what the filter admits and a filtered query still
returns k hits when k exist. `prefer_recent` then boosts newer articles by a bounded amount.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Callable

import numpy as np

from .query import Filters
from .rescore import ChunkContext, RescoreWeights, rescore
from .settings import FusionSettings
from .terms import TermWeights
from .timeframe import TimeFrame, find_timeframe

@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its final score and the ranks each retriever gave it (1-based)."""

    chunk_id: int
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None
    dense_score: float | None = None
    bm25_score: float | None = None


def time_in_question(question: str, filters: Filters | None, as_of: date) -> tuple[TimeFrame, Filters] | None:
    """The time a question names (none when the caller set dates) and the filters narrowed to it."""
    frame = None if filters is not None and filters.has_dates() else find_timeframe(question, as_of)
    if frame is None:
        return None
    return frame, replace(filters or Filters(), date_from=frame.date_from, date_to=frame.date_to)


def time_scope(frame: TimeFrame, dated: Filters, filters: Filters | None, applied: bool) -> tuple[Filters | None, dict]:
    """The filters to rank within and the `time_filter` block: the named time keeps undated articles
    (their time is unknown) and is dropped (`applied` false) when no dated article falls in it."""
    block = {**frame.to_json(), "include_undated": True, "applied": applied}
    return (replace(dated, include_undated=True) if applied else filters), block


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


Contexts = Callable[[list[int]], dict[int, ChunkContext]]


def below(tail: list[Hit], head: list[Hit]) -> list[Hit]:
    """Fused hits past the re-scored head, kept in fused order with scores just under the head's."""
    if not tail or not head:
        return tail
    floor = min(h.score for h in head) - 1e-6
    top = tail[0].score
    return [replace(h, score=floor - (top - h.score)) for h in tail]


def second_stage(
    hits: list[Hit], query_vector: np.ndarray, question: str, vectors, lexical, contexts: Contexts,
    weights: RescoreWeights, term_weights: TermWeights | None = None,
) -> list[Hit]:
    """Re-score fused hits with sentence-level features; a hit with no stored context is dropped.
    `term_weights` defaults to this index's idf (a shard passes the whole collection's)."""
    found = contexts([h.chunk_id for h in hits])
    hits = [h for h in hits if h.chunk_id in found]
    missing = [h.chunk_id for h in hits if h.dense_score is None]  # BM25-only hits: their cosine
    cosine = {c: float(found[c].vector @ query_vector) for c in missing if found[c].vector is not None}
    rest = np.array([c for c in missing if c not in cosine], dtype=np.int64)
    if len(rest):
        cosine.update(vectors.search(query_vector, len(rest), rest))
    dense = [h.dense_score if h.dense_score is not None else cosine.get(h.chunk_id, 0.0) for h in hits]
    scores = rescore(question, term_weights or lexical.term_weights(), query_vector, dense,
                     [found[h.chunk_id] for h in hits], weights)
    out = [replace(h, score=float(s), dense_score=d) for h, s, d in zip(hits, scores, dense)]
    out.sort(key=lambda h: (-h.score, h.chunk_id))
    return out


def prefer_recent(hits: list[Hit], dates: dict[int, str | None], as_of: date, settings: FusionSettings) -> list[Hit]:
    """Boost newer articles: score + weight x range x 0.5^(age / half-life); undated get no boost.

    The boost is at most `recency_weight` of the candidates' score range (of the top score when
    all are tied), so a hit can only be passed by one whose relevance was within that margin of
    its own: recency breaks near-ties, it never buries a clearly best article under newer ones.
    """
    if len(hits) < 2:
        return hits
    scores = np.array([h.score for h in hits])
    spread = float(scores.max() - scores.min()) or abs(float(scores.max())) or 1.0  # all tied: any boost breaks it
    out = []
    for h in hits:
        published = dates.get(h.chunk_id)
        boost = 0.0
        if published:
            age = max(0, (as_of - date.fromisoformat(published[:10])).days)
            boost = settings.recency_weight * spread * 0.5 ** (age / settings.recency_half_life_days)
        out.append(replace(h, score=h.score + boost))
    out.sort(key=lambda h: (-h.score, h.chunk_id))
    return out

"""Retrieval modes over one index: dense (FAISS), bm25, and hybrid (fusion, then sentence-level re-scoring).

`hybrid` takes each retriever's top `depth` chunks, fuses them with weighted reciprocal rank
fusion, and re-scores the fused top `rerank` with the second stage in `rescore.py` (best-sentence
similarity and term coverage, all from stored data). Filters become a set of allowed chunk ids
before ranking, so every retriever ranks only what the filter admits and a filtered query still
returns k hits when k exist. `prefer_recent` then boosts newer articles by a bounded amount.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Callable

import numpy as np

from .errors import InvalidInput
from .rescore import ChunkContext, RescoreWeights, rescore
from .terms import TermWeights
from .timeframe import TimeFrame, find_timeframe

MODES = ("dense", "bm25", "hybrid")
DEFAULT_MODE = "hybrid"
RECENCY = ("none", "prefer_recent")


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its final score and the ranks each retriever gave it (1-based)."""

    chunk_id: int
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None
    dense_score: float | None = None
    bm25_score: float | None = None


@dataclass(frozen=True)
class FusionSettings:
    """How `hybrid` ranks: RRF (score = sum of weight / (k + rank)) then the second stage.

    The fused top `rerank` are re-scored and ranked first; any further hits follow in fused order.
    `rerank` 0 turns the second stage off. `recency_weight` bounds the recency boost as a share of the candidates' score range.
    """

    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    depth: int = 100  # candidates taken from each retriever before fusing
    rerank: int = 50
    rescore: RescoreWeights = field(default_factory=RescoreWeights)
    recency_weight: float = 0.1
    recency_half_life_days: float = 30.0

    def describe(self) -> dict:
        return {"rrf_k": self.rrf_k, "dense_weight": self.dense_weight, "bm25_weight": self.bm25_weight,
                "depth": self.depth, "rerank": self.rerank,
                "rescore_weights": self.rescore.describe() if self.rerank else None}


def _bound(value: str | None, name: str, last: bool) -> str | None:
    """An ISO date bound from YYYY-MM-DD, YYYY-MM or YYYY: a month or year starts (or ends) it."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 4 and text.isdigit():
            return date(int(text), 12 if last else 1, 31 if last else 1).isoformat()
        if len(text) == 7 and text[4] == "-":
            year, month = int(text[:4]), int(text[5:])
            return date(year, month, calendar.monthrange(year, month)[1] if last else 1).isoformat()
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _fail(text, name)
    except ValueError:
        return _fail(text, name)


def _fail(text: str, name: str):
    raise InvalidInput(f"{name} {text!r} is not a date: use YYYY-MM-DD (or YYYY-MM, YYYY)")


@dataclass(frozen=True)
class Filters:
    """Exact filters on article metadata; dates compare as dates, bounds inclusive.

    An article without a date fails any date bound unless `include_undated`. Bounds are
    normalised on construction (a month or year bound covers the whole period) and checked.
    """

    date_from: str | None = None
    date_to: str | None = None
    source: str | None = None
    article_ids: tuple[str, ...] | None = None
    include_undated: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "date_from", _bound(self.date_from, "date_from", last=False))
        object.__setattr__(self, "date_to", _bound(self.date_to, "date_to", last=True))
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput(f"date_from {self.date_from} is after date_to {self.date_to}")
        object.__setattr__(self, "source", self.source or None)
        object.__setattr__(self, "article_ids", tuple(self.article_ids) if self.article_ids else None)

    def is_empty(self) -> bool:
        return not (self.date_from or self.date_to or self.source or self.article_ids)

    def has_dates(self) -> bool:
        return bool(self.date_from or self.date_to)

    def to_sql(self) -> tuple[str, list]:
        """A WHERE clause on the articles table `a` (dates are stored as ISO YYYY-MM-DD)."""
        clauses, params = [], []
        undated = " OR a.date IS NULL" if self.include_undated else ""
        if self.date_from:
            clauses.append(f"(a.date >= ?{undated})")
            params.append(self.date_from)
        if self.date_to:
            clauses.append(f"(a.date <= ?{undated})")
            params.append(self.date_to)
        if self.source:
            clauses.append("a.source = ?")
            params.append(self.source)
        if self.article_ids:
            clauses.append(f"a.id IN ({','.join('?' * len(self.article_ids))})")
            params.extend(self.article_ids)
        return " AND ".join(clauses) or "1", params

    def describe(self) -> dict:
        out = {k: v for k, v in (("date_from", self.date_from), ("date_to", self.date_to), ("source", self.source),
                                 ("article_ids", list(self.article_ids) if self.article_ids else None)) if v}
        if self.has_dates():
            out["include_undated"] = self.include_undated
        return out


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


def check_mode(mode: str | None) -> str:
    """The mode to use, or an InvalidInput naming the valid ones."""
    mode = mode or DEFAULT_MODE
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def check_recency(recency: str | None) -> str:
    """The recency preference, or an InvalidInput naming the valid ones."""
    recency = recency or "none"
    if recency not in RECENCY:
        raise InvalidInput(f"unknown recency {recency!r}; use one of {', '.join(RECENCY)}")
    return recency


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


def retrieve(
    mode: str,
    k: int,
    query_vector: np.ndarray | None,
    question: str,
    vectors,
    lexical,
    allowed: np.ndarray | None,
    settings: FusionSettings = FusionSettings(),
    contexts: Contexts | None = None,
) -> list[Hit]:
    """The top-k chunks for a question under one mode; `contexts` feeds hybrid's second stage."""
    if mode == "dense":
        return [Hit(cid, s, dense_rank=r, dense_score=s)
                for r, (cid, s) in enumerate(vectors.search(query_vector, k, allowed), 1)]
    if mode == "bm25":
        return [Hit(cid, s, bm25_rank=r, bm25_score=s)
                for r, (cid, s) in enumerate(lexical.search(question, k, allowed), 1)]
    depth = max(k, settings.depth)
    fused = fuse(vectors.search(query_vector, depth, allowed), lexical.search(question, depth, allowed), settings)
    if not settings.rerank or contexts is None:
        return fused[:k]
    head = second_stage(fused[: settings.rerank], query_vector, question, vectors, lexical, contexts, settings.rescore)
    return (head + _below(fused[settings.rerank: k], head))[:k]


def _below(tail: list[Hit], head: list[Hit]) -> list[Hit]:
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
    scores = rescore(question, term_weights or TermWeights.from_bm25(lexical.retriever), query_vector, dense,
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

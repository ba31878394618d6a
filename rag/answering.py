"""From retrieved chunks to an answer: merged passages with citations, and the best answer sentence.

Everything per sentence (offsets, vectors, dates) was computed at ingest; here we only compare the
question's vector and terms against stored sentences, so a query costs one model call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .articles import Article
from .retrieval import Hit
from .store import ChunkRow, SentenceRow

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Passage:
    """One contiguous span of an article shown to the reader; merged from overlapping chunks."""

    citation: int
    article: Article
    start: int
    end: int
    score: float
    chunk_ids: tuple[int, ...]

    @property
    def text(self) -> str:
        return self.article.text[self.start:self.end]

    def to_json(self) -> dict:
        a = self.article
        return {"citation": self.citation, "article_id": a.id, "title": a.title, "date": a.date,
                "url": a.url, "source": a.source, "start": self.start, "end": self.end,
                "text": self.text, "score": round(self.score, 6)}


@dataclass(frozen=True)
class Span:
    """The exact words that answer, `[start, end)` into the article text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Answer:
    """The chosen answer sentence (whole), its optional exact span and resolved dates."""

    text: str
    article_id: str
    start: int
    end: int
    citation: int
    score: float
    span: Span | None = None
    dates: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"text": self.text, "article_id": self.article_id, "start": self.start, "end": self.end,
                "citation": self.citation,
                "span": None if self.span is None else {"text": self.span.text, "start": self.span.start, "end": self.span.end},
                "dates": self.dates}


def build_passages(
    hits: list[Hit], chunks: dict[int, ChunkRow], articles: dict[str, Article], k: int
) -> list[Passage]:
    """Up to k passages from hits in rank order: overlapping or adjacent chunks of one article merge
    into one passage; all passages of an article share its citation number (1.. by first rank)."""
    groups: dict[str, list[list]] = {}  # article id -> [[start, end, score, chunk ids], ...]
    count = 0
    for hit in hits:
        row = chunks.get(hit.chunk_id)
        if row is None or row.article_id not in articles:
            continue
        merged = _merge(groups.get(row.article_id, []) + [[row.start, row.end, hit.score, [hit.chunk_id]]],
                        articles[row.article_id].text)
        new_count = count - len(groups.get(row.article_id, [])) + len(merged)
        if new_count > k:
            break
        groups[row.article_id], count = merged, new_count
    passages = [
        Passage(citation, articles[article_id], s, e, score, tuple(ids))
        for citation, (article_id, spans) in enumerate(groups.items(), 1)
        for s, e, score, ids in spans
    ]
    passages.sort(key=lambda p: (-p.score, p.citation, p.start))
    return passages


def _merge(spans: list[list], text: str) -> list[list]:
    """Merge spans that overlap or are separated by whitespace only."""
    out: list[list] = []
    for s, e, score, ids in sorted(spans):
        if out and (s <= out[-1][1] or not text[out[-1][1]:s].strip()):
            last = out[-1]
            last[1], last[2], last[3] = max(last[1], e), max(last[2], score), last[3] + ids
        else:
            out.append([s, e, score, list(ids)])
    return out


def terms(text: str) -> set[str]:
    """Lower-case word set, for lexical overlap between a question and a sentence."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 or w.isdigit()}


def score_sentences(
    question: str, query_vector: np.ndarray, candidates: list[tuple[Passage, SentenceRow]]
) -> np.ndarray:
    """An even mix of min-max normalised cosine and question-term overlap, per candidate."""
    if not candidates:
        return np.zeros(0)
    cos = np.array([float(row.vector @ query_vector) for _, row in candidates])
    q_terms = terms(question)
    overlap = np.array([
        len(q_terms & terms(p.article.text[row.start:row.end])) / max(1, len(q_terms)) for p, row in candidates
    ])
    return 0.5 * _minmax(cos) + 0.5 * _minmax(overlap)


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return np.zeros_like(values) if high - low < 1e-12 else (values - low) / (high - low)


def choose_answer(
    question: str,
    query_vector: np.ndarray,
    passages: list[Passage],
    sentences_for,
    top_passages: int = 3,
) -> Answer | None:
    """The best sentence among the top passages' stored sentences (None when there are none)."""
    candidates = [(p, row) for p in passages[:top_passages] for row in sentences_for(p)]
    if not candidates:
        return None
    scores = score_sentences(question, query_vector, candidates)
    best = int(np.argmax(scores))
    passage, row = candidates[best]
    text = passage.article.text
    return Answer(text=text[row.start:row.end], article_id=passage.article.id, start=row.start, end=row.end,
                  citation=passage.citation, score=float(scores[best]), dates=row.dates)

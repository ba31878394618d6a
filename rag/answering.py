"""From retrieved chunks to an answer: merged passages with citations, the answer sentence, its span,
its dates, or a reason to abstain.

The trained reader (rag/reader.py) reads the question with each of the top passages in one batched
forward pass and scores every span against "no answer"; the best span wins, and the answer is the
whole stored sentence (or sentences) holding it, with the dates found there at ingest. It abstains
when no span beats "no answer" by the margin fitted on SQuAD tune titles (rag/models/reader/).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

from .articles import Article
from .reader import WindowReading
from .retrieval import Hit
from .store import ChunkRow, SentenceRow
from .stories import Member


@dataclass(frozen=True)
class Passage:
    """One contiguous span of an article shown to the reader; merged from overlapping chunks."""

    citation: int
    article: Article
    start: int
    end: int
    score: float
    chunk_ids: tuple[int, ...]
    also_in: tuple[Member, ...] = ()  # the other articles of its story (rag/stories.py)

    @property
    def text(self) -> str:
        return self.article.text[self.start:self.end]

    def to_json(self) -> dict:
        a = self.article
        return {"citation": self.citation, "article_id": a.id, "title": a.title, "date": a.date,
                "url": a.url, "source": a.source, "start": self.start, "end": self.end,
                "text": self.text, "score": round(self.score, 6), "also_in": [m.to_json() for m in self.also_in]}


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


class SpanReader(Protocol):
    """What the answer stage needs of a reader: the best span per window, the no-answer margin, and
    how many passages to read (both fitted on tune, in rag/models/reader/reader.json)."""

    null_margin: float
    top_passages: int
    rank_penalty: float

    def read(self, question: str, windows: list[str]) -> list[WindowReading]: ...


def read_passages(question: str, passages: list[Passage], reader: SpanReader,
                  top_passages: int | None = None) -> tuple[Passage, WindowReading] | None:
    """The reader's best span over the top passages (one batched forward), with its passage; a lower
    passage's span pays `rank_penalty` per rank, since retrieval's order is evidence too."""
    read = passages[:top_passages or reader.top_passages]
    readings = reader.read(question, [p.text for p in read])
    if not readings:
        return None
    best = max(readings, key=lambda r: r.score - reader.rank_penalty * r.window)
    return read[best.window], best


def choose_answer(
    question: str,
    passages: list[Passage],
    sentences_for: Callable[[Passage], list[SentenceRow]],
    reader: SpanReader,
) -> tuple[Answer | None, str | None]:
    """The answer (sentence, span, dates), or None with the reason for abstaining."""
    if not passages:
        return None, "no passage matches the question"
    found = read_passages(question, passages, reader)
    if found is None:
        return None, "the retrieved passages hold no text to read"
    passage, best = found
    if best.margin <= reader.null_margin:
        return None, (f"no passage supports an answer: the reader's best span beats 'no answer' by "
                      f"{best.margin:.2f}, under the margin {reader.null_margin:.2f}")
    text = passage.article.text
    start, end = span_in_article(passage, best)
    rows = [r for r in sentences_for(passage) if r.start < end and start < r.end]
    s_start = min([r.start for r in rows] + [start])
    s_end = max([r.end for r in rows] + [end])
    dates = [d for r in rows for d in r.dates]
    span = Span(text[start:end], start, end)
    return Answer(text=text[s_start:s_end], article_id=passage.article.id, start=s_start, end=s_end,
                  citation=passage.citation, score=_sigmoid(best.margin - reader.null_margin), span=span,
                  dates=_dates_for(dates, span)), None


def span_in_article(passage: Passage, reading: WindowReading) -> tuple[int, int]:
    """The reading's span as `[start, end)` into the article, trimmed of edge whitespace and commas."""
    return _trim(passage.article.text, passage.start + reading.start, passage.start + reading.end)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding whitespace or the punctuation a tokenizer keeps at its edges."""
    while start < end and (text[start].isspace() or text[start] in ",;:"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:"):
        end -= 1
    return start, end


def _dates_for(dates: list[dict], span: Span | None) -> list[dict]:
    """The sentence's dates, those inside or around the span first, then in reading order."""
    if span is None:
        return list(dates)

    def away(d: dict) -> int:
        return 0 if d["start"] < span.end and span.start < d["end"] else 1

    return sorted(dates, key=lambda d: (away(d), d["start"]))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))

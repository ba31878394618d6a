"""From retrieved chunks to an answer: merged passages with citations, the answer sentence, its span,
its dates, or a reason to abstain.

Everything per sentence (offsets, vectors, dates, answer candidates) was computed at ingest; here
we only compare the question's vector, words and type against stored sentences, so a query costs
one model call. Three small linear models fitted on SQuAD (eval/answer_study.py) weigh the
evidence: a logistic span ranker, a per-question softmax (conditional logit) over candidate
sentences, and a logistic abstention model; their weights and thresholds ship in
rag/models/answer_model.json.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .articles import Article
from .question_types import DATE, FITTING_LABELS, classify
from .retrieval import Hit
from .spans import LinearModel, QuestionView, ScoredSpan, rank_spans
from .store import ChunkRow, SentenceRow
from .terms import TermWeights, content_stems, words

MODEL_PATH = Path(__file__).with_name("models") / "answer_model.json"


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


@dataclass(frozen=True)
class AnswerModel:
    """The fitted weights: span ranker, sentence ranker, abstention, and the thresholds chosen on tune."""

    span: LinearModel
    sentence: LinearModel
    abstain: LinearModel
    top_passages: int
    answer_threshold: float  # abstain when the abstention model's answerable-logit is below this
    span_threshold: float  # give no span when the best span's logit is below this

    @classmethod
    def from_json(cls, doc: dict) -> "AnswerModel":
        return cls(LinearModel.from_json(doc["span"]), LinearModel.from_json(doc["sentence"]),
                   LinearModel.from_json(doc["abstain"]), int(doc["top_passages"]),
                   float(doc["answer_threshold"]), float(doc["span_threshold"]))


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> AnswerModel:
    """The shipped answer model (read once per process)."""
    return AnswerModel.from_json(json.loads(Path(path).read_text()))


@dataclass
class SentenceChoice:
    """A candidate answer sentence with its features, its best span and its model score."""

    passage: Passage
    row: SentenceRow
    features: dict[str, float]
    span: ScoredSpan | None
    score: float = 0.0


def minmax(values: np.ndarray) -> np.ndarray:
    """Values scaled to [0, 1] (all 0 when they are equal)."""
    low, high = float(values.min()), float(values.max())
    return np.zeros_like(values) if high - low < 1e-12 else (values - low) / (high - low)


def sentence_choices(
    question: str,
    query_vector: np.ndarray,
    passages: list[Passage],
    sentences_for: Callable[[Passage], list[SentenceRow]],
    term_weights: TermWeights,
    model: AnswerModel,
    future_rule: bool = True,
) -> list[SentenceChoice]:
    """Every sentence of the top passages, with features and score, best first."""
    view = QuestionView.of(question, classify(question))
    q_idf = {s: term_weights.idf(s) for s in content_stems(question)}
    q_total = sum(q_idf.values()) or 1.0
    fitting = FITTING_LABELS.get(view.qtype.kind, frozenset())
    top_score = passages[0].score if passages else 0.0
    choices: list[SentenceChoice] = []
    for rank, passage in enumerate(passages[: model.top_passages], 1):
        text = passage.article.text
        title = {w.stem for w in words(passage.article.title) if not w.stop}
        title_idf = sum(weight for stem, weight in q_idf.items() if stem in title) / q_total
        rows = sentences_for(passage)
        tokens = [words(text[r.start:r.end]) for r in rows]
        stems = [{w.stem for w in ws if not w.stop} for ws in tokens]
        matched = [sum(weight for stem, weight in q_idf.items() if stem in found) / q_total for found in stems]
        for i, row in enumerate(rows):
            spans = rank_spans(model.span, view, text, (row.start, row.end), tokens[i], row.candidates, row.dates)
            best = spans[0] if spans else None
            features = {"cos": float(row.vector @ query_vector), "idf": matched[i],
                        "prev_idf": matched[i - 1] if i else 0.0,
                        "next_idf": matched[i + 1] if i + 1 < len(rows) else 0.0,
                        "rr": 1.0 / rank, "pgap": top_score - passage.score, "title_idf": title_idf,
                        "first": float(row.start == 0), "pos": math.log1p(i),
                        "log_len": math.log1p(len(stems[i])),
                        "novel": len(stems[i] - q_idf.keys()) / max(1, len(stems[i])),
                        "span": best.score if best else -10.0, "no_span": float(best is None)}
            if _fits(row, fitting, view.qtype.kind):
                features["fit|" + view.qtype.kind] = 1.0
            choices.append(SentenceChoice(passage, row, features, best))
    ranked = rank_choices(choices, model.sentence)
    return _future_first(ranked) if future_rule and asks_future_date(question) else ranked


def asks_future_date(question: str) -> bool:
    """A "when ... will / expected" question: it asks for a date after the article's publication."""
    return classify(question).kind == DATE and bool(_FUTURE.search(question))


def _fits(row: SentenceRow, labels: frozenset[str], kind: str) -> bool:
    """Whether the sentence holds a span of a label that can answer this kind of question."""
    if kind == DATE and row.dates:
        return True
    return any(c[3] in labels for c in row.candidates)


_FUTURE = re.compile(r"\b(will|expected|expects?|upcoming|next|plans?|planned|scheduled|due|going to)\b", re.I)


def _future_first(choices: list[SentenceChoice]) -> list[SentenceChoice]:
    """A "when ... will / expected" question asks for a date after the article's publication: a
    sentence whose every date lies before it cannot answer, so it goes behind those that can."""
    return sorted(choices, key=past_only)  # stable: the model's order holds within each group


def past_only(c: SentenceChoice) -> bool:
    """Whether every date of the sentence lies before its article's publication date."""
    published = c.passage.article.date
    return bool(published and c.row.dates) and all(
        d["resolved"] < published[: len(d["resolved"])] for d in c.row.dates)


SCALED = ("cos", "idf", "span")


def rank_choices(choices: list[SentenceChoice], sentence_model: LinearModel) -> list[SentenceChoice]:
    """Add each signal scaled to [0, 1] among the candidates (what counts is how a sentence compares
    with its rivals), score with the sentence model, best first."""
    if not choices:
        return []
    for name in SCALED:
        scaled = minmax(np.array([c.features[name] for c in choices]))
        for c, value in zip(choices, scaled):
            c.features[name + "_mm"] = float(value)
    for c in choices:
        c.score = sentence_model.score(c.features)
    return sorted(choices, key=lambda c: -c.score)


def passage_evidence(question: str, passage: Passage, term_weights: TermWeights) -> dict[str, float]:
    """How much of the question the passage (with its title) leaves unsaid: a question about something
    the passage never names is rarely answered by it."""
    present = {w.stem for w in words(passage.article.title + "\n" + passage.text) if not w.stop}
    q_idf = {s: term_weights.idf(s) for s in content_stems(question)}
    missing = [weight for stem, weight in q_idf.items() if stem not in present]
    top = max(q_idf.values(), default=0.0) or 1.0
    return {"missing_idf": sum(missing) / (sum(q_idf.values()) or 1.0),
            "missing_max_share": max(missing, default=0.0) / top,
            "missing_any": float(bool(missing))}


def abstain_features(choices: list[SentenceChoice], evidence: dict[str, float]) -> dict[str, float]:
    """Question-level evidence that some passage answers: the best sentence's signals, its margin over
    the next, and what the best sentence's passage leaves unsaid (`passage_evidence`)."""
    best = choices[0]
    margin = best.score - choices[1].score if len(choices) > 1 else 5.0
    return {"sentence": best.score, "cos": best.features["cos"], "idf": best.features["idf"],
            "span": best.features["span"], "margin": min(margin, 5.0), "title_idf": best.features["title_idf"],
            **evidence}


def choose_answer(
    question: str,
    query_vector: np.ndarray,
    passages: list[Passage],
    sentences_for: Callable[[Passage], list[SentenceRow]],
    term_weights: TermWeights,
    model: AnswerModel | None = None,
) -> tuple[Answer | None, str | None]:
    """The answer (sentence, span, dates), or None with the reason for abstaining."""
    model = model or load_model()
    if not passages:
        return None, "no passage matches the question"
    choices = sentence_choices(question, query_vector, passages, sentences_for, term_weights, model)
    if not choices:
        return None, "the retrieved passages hold no sentence"
    evidence = passage_evidence(question, choices[0].passage, term_weights)
    confidence = model.abstain.score(abstain_features(choices, evidence))
    if confidence < model.answer_threshold:
        return None, (f"no passage supports an answer: answer confidence {_sigmoid(confidence):.2f} is under "
                      f"the threshold {_sigmoid(model.answer_threshold):.2f}")
    best = choices[0]
    passage, row = best.passage, best.row
    text = passage.article.text
    span = None
    if best.span is not None and best.span.score >= model.span_threshold:
        span = Span(text[best.span.start:best.span.end], best.span.start, best.span.end)
    return Answer(text=text[row.start:row.end], article_id=passage.article.id, start=row.start, end=row.end,
                  citation=passage.citation, score=_sigmoid(confidence), span=span,
                  dates=_dates_for(row.dates, span)), None


def _dates_for(dates: list[dict], span: Span | None) -> list[dict]:
    """The sentence's dates, those inside or around the span first, then in reading order."""
    if span is None:
        return list(dates)

    def away(d: dict) -> int:
        return 0 if d["start"] < span.end and span.start < d["end"] else 1

    return sorted(dates, key=lambda d: (away(d), d["start"]))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))

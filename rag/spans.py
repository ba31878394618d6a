"""The answer span inside a sentence: rank the sentence's stored candidates against the question.

Each candidate (rag/entities.py) is described by sparse features: how its entity label or phrase
kind fits the question's type (rag/question_types.py), whether it repeats the question (answers
rarely do), how close it sits to the question's words in the sentence, whether the word that
governs it is a question word, the punctuation that opens or closes it, and its length. A logistic model fitted on SQuAD's tune split
(eval/answer_study.py) weighs them; its weights ship in rag/models/answer_model.json.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from .entities import DATE_MENTION, NP, SUB, Candidate
from .question_types import QuestionType
from .terms import Word, words


@dataclass(frozen=True)
class ScoredSpan:
    """A candidate with its model score (a logit), `[start, end)` into the article text."""

    start: int
    end: int
    score: float


@dataclass(frozen=True)
class LinearModel:
    """A logistic model over named sparse features: score = bias + sum(weight * value)."""

    weights: dict[str, float]
    bias: float = 0.0

    def score(self, features: dict[str, float]) -> float:
        get = self.weights.get
        return self.bias + sum(get(name, 0.0) * value for name, value in features.items())

    @classmethod
    def from_json(cls, doc: dict) -> "LinearModel":
        return cls({k: float(v) for k, v in doc["weights"].items()}, float(doc.get("bias", 0.0)))


@dataclass
class QuestionView:
    """What span features need from the question, computed once per query."""

    qtype: QuestionType
    stems: frozenset[str]
    focus_stem: str

    @classmethod
    def of(cls, question: str, qtype: QuestionType) -> "QuestionView":
        qwords = words(question)
        focus = next((w.stem for w in words(qtype.focus)), "") if qtype.focus else ""
        return cls(qtype, frozenset(w.stem for w in qwords if not w.stop), focus)


def _class(c: Candidate) -> str:
    """A candidate's class for type fit: its entity label, else its phrase kind and head POS."""
    if c.label:
        return c.label
    if c.kinds & NP:
        return "NP"
    if c.kinds & SUB:
        return "SUB:" + c.pos
    return "TOK:" + c.pos


def _length_bucket(n: int) -> str:
    return str(n) if n <= 3 else "4-5" if n <= 5 else "6-8" if n <= 8 else "9+"


def candidate_features(
    view: QuestionView, text: str, sentence: tuple[int, int], sentence_words: list[Word],
    candidate: Candidate, dates: list[dict],
) -> dict[str, float]:
    """Sparse features of one candidate; `sentence_words` offsets are relative to the sentence start."""
    s0 = sentence[0]
    kind, wh = view.qtype.kind, view.qtype.wh or "none"
    cls = _class(candidate)
    rel_start, rel_end = candidate.start - s0, candidate.end - s0
    starts = [w.start for w in sentence_words]
    inside = list(range(bisect_left(starts, rel_start), bisect_left(starts, rel_end)))
    while inside and sentence_words[inside[-1]].end > rel_end:
        inside.pop()
    content = [sentence_words[i] for i in inside if not sentence_words[i].stop]
    in_q = sum(w.stem in view.stems for w in content)
    q_positions = [i for i, w in enumerate(sentence_words)
                   if not w.stop and w.stem in view.stems and not rel_start <= w.start < rel_end]
    f: dict[str, float] = {
        f"t={kind}|c={cls}": 1.0,
        f"w={wh}|c={cls}": 1.0,
        f"t={kind}|pos={candidate.pos}": 1.0,
        f"t={kind}|dep={candidate.dep}": 1.0,
        f"t={kind}|len={_length_bucket(len(inside))}": 1.0,
        f"k={candidate.kinds}": 1.0,
    }
    if content:
        f["in_q_frac"] = in_q / len(content)
        if in_q == len(content):
            f["all_in_q"] = 1.0
    if inside and q_positions:
        first, last = inside[0], inside[-1]
        dist = min(min(abs(p - first), abs(p - last)) for p in q_positions)
        f["log_dist"] = math.log1p(dist)
        near = {sentence_words[p].stem for p in q_positions if first - 6 <= p <= last + 6}
        f["near_frac"] = len(near) / max(1, len(view.stems))
        f[f"t={kind}|side={'left' if last < min(q_positions) else 'right' if first > max(q_positions) else 'mid'}"] = 1.0
        before = [p for p in q_positions if p < first]
        after = [p for p in q_positions if p > last]
        if before and first - before[-1] <= 2:
            f[f"t={kind}|q_just_before"] = 1.0
        if after and after[0] - last <= 2:
            f[f"t={kind}|q_just_after"] = 1.0
        if before and after:
            f["between_q"] = 1.0
    elif not q_positions:
        f["no_q_in_sentence"] = 1.0
    if candidate.gov_start is not None:
        i = bisect_left(starts, candidate.gov_start - s0)
        gov = sentence_words[i] if i < len(starts) and starts[i] == candidate.gov_start - s0 else None
        if gov is not None and not gov.stop and gov.stem in view.stems:
            f[f"t={kind}|gov_in_q"] = 1.0
    if view.focus_stem:
        if any(w.stem == view.focus_stem for w in content):
            f["focus_in_span"] = 1.0
        if inside and inside[-1] + 1 < len(sentence_words) and sentence_words[inside[-1] + 1].stem == view.focus_stem:
            f["focus_after"] = 1.0
    for d in dates:
        if d["start"] <= candidate.start and candidate.end <= d["end"]:
            f[f"t={kind}|in_date"] = 1.0
        elif candidate.start <= d["start"] and d["end"] <= candidate.end:
            f[f"t={kind}|holds_date"] = 1.0
    before, after = text[s0:candidate.start].rstrip()[-1:], text[candidate.end:sentence[1]].lstrip()[:1]
    if before in ",(\u2014-:" or not before:
        f[f"t={kind}|open={before or '^'}"] = 1.0
    if after in ",)\u2014-;:." or not after:
        f[f"t={kind}|close={after or '$'}"] = 1.0
    if content and in_q:
        f[f"t={kind}|some_in_q"] = 1.0
    f[f"w={wh}|len={_length_bucket(len(inside))}"] = 1.0
    span_text = text[candidate.start:candidate.end]
    if any(ch.isdigit() for ch in span_text):
        f[f"t={kind}|digit"] = 1.0
    if span_text[:1].isupper():
        f[f"t={kind}|cap"] = 1.0
    return f


def rank_spans(
    model: LinearModel, view: QuestionView, text: str, sentence: tuple[int, int], sentence_words: list[Word],
    rows: list[list], dates: list[dict],
) -> list[ScoredSpan]:
    """The sentence's candidates (stored rows, plus its date expressions), best first; `sentence_words`
    are `words(text[sentence])`, which the caller has already computed."""
    s0 = sentence[0]
    scored = []
    for c in with_dates([Candidate.from_row(row, s0) for row in rows], dates):
        scored.append(ScoredSpan(c.start, c.end,
                                 model.score(candidate_features(view, text, sentence, sentence_words, c, dates))))
    scored.sort(key=lambda s: -s.score)
    return scored


def with_dates(candidates: list[Candidate], dates: list[dict]) -> list[Candidate]:
    """The parser's candidates plus each date expression found by rag/dates.py ("around December 5"),
    which carries its qualifier; a date that is already a candidate only gains the DATE_MENTION flag."""
    by_span = {(c.start, c.end): c for c in candidates}
    for d in dates:
        key = (d["start"], d["end"])
        known = by_span.get(key)
        by_span[key] = (Candidate(key[0], key[1], known.kinds | DATE_MENTION, known.label, known.pos, known.dep,
                                  known.gov_start, known.gov_end) if known
                        else Candidate(key[0], key[1], DATE_MENTION, "DATE", "", "", None, None))
    return list(by_span.values())

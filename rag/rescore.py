"""Second stage: re-score the fused top candidates at sentence level, from what ingest stored.

A question is usually answered by one sentence, so a chunk is judged by its best sentence as
well as by itself. Features, each per chunk:
- dense: the chunk's cosine (title + chunk, as embedded at ingest);
- sentence: the cosine of its best stored sentence vector;
- coverage: the idf-weighted share of the question's terms held by its best sentence;
- bigram: the idf-weighted share of the question's adjacent term pairs found adjacent in one
  sentence (term proximity);
- chunk_coverage: the idf-weighted share of the question's terms in the title and chunk.
No model runs here: vectors come from SQLite, terms from the stored text (stems cached).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .terms import TermWeights, question_terms, stems

FEATURES = ("dense", "sentence", "coverage", "bigram", "chunk_coverage")


@dataclass(frozen=True)
class RescoreWeights:
    """One weight per feature in FEATURES, fitted on the tune halves of SQuAD and SciFact together
    (eval/RESULTS.md: `python -m research.retrieval_study fit`); only their ratios matter."""

    dense: float = 2.8
    sentence: float = 2.8
    coverage: float = 1.0
    bigram: float = 0.7
    chunk_coverage: float = 1.0

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in FEATURES])

    def describe(self) -> dict:
        return {name: getattr(self, name) for name in FEATURES}


@dataclass(frozen=True)
class ChunkContext:
    """What the second stage reads for one chunk: its article's title, its text, its sentences and
    their stored vectors."""

    title: str
    text: str
    sentences: list[str]
    sentence_vectors: np.ndarray  # (len(sentences), dim), unit length
    vector: np.ndarray | None = None  # the chunk's own stored vector, when the reader has it


def features(
    question_terms: list[str],
    idf: dict[str, float],
    query_vector: np.ndarray,
    dense: float,
    context: ChunkContext,
) -> np.ndarray:
    """The FEATURES of one chunk for one question (shares in [0, 1], cosines as they are).

    `idf` holds the question's terms that the index knows; the others cannot match anything."""
    terms = [t for t in dict.fromkeys(question_terms) if t in idf]
    total = sum(idf[t] for t in terms) or 1.0
    pairs = [(a, b) for a, b in zip(question_terms, question_terms[1:]) if a in idf and b in idf]
    pair_total = sum(idf[a] + idf[b] for a, b in pairs) or 1.0
    analysed = [stems(s) for s in context.sentences]

    def held(found: set[str]) -> float:
        return sum(idf[t] for t in terms if t in found) / total

    coverage = max((held(set(t)) for t in analysed), default=0.0)
    bigram = max((sum(idf[a] + idf[b] for a, b in pairs if (a, b) in found) / pair_total
                  for found in (set(zip(t, t[1:])) for t in analysed)), default=0.0)
    chunk_coverage = held(set(stems(context.title)) | set(stems(context.text)))
    sentence = float(np.max(context.sentence_vectors @ query_vector)) if len(context.sentences) else dense
    return np.array([dense, sentence, coverage, bigram, chunk_coverage])


def rescore(
    question: str,
    term_weights: TermWeights,
    query_vector: np.ndarray,
    dense: list[float],
    contexts: list[ChunkContext],
    weights: RescoreWeights,
) -> np.ndarray:
    """Second-stage scores (weighted sums of FEATURES), one per candidate."""
    if not contexts:
        return np.zeros(0)
    terms = question_terms(question, stems)
    idf = {t: term_weights.idf(t) for t in terms if t in term_weights.vocabulary}
    table = np.vstack([features(terms, idf, query_vector, d, c) for d, c in zip(dense, contexts)])
    return table @ weights.vector()

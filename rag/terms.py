"""Text analysis, in one place: words with offsets and stems, stopwords, question words, idf.

bm25s lower-cases, keeps words of two or more characters, drops English stopwords and applies
the Snowball stemmer; BM25 (lexical.py) and the second stage (rescore.py) analyse text with the
same stemmer and stopwords from here, so a question's words weigh by the index's own frequencies.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_WORD = re.compile(r"(?u)\b\w\w+\b|\b\d\b")


@dataclass(frozen=True)
class Word:
    """One word `[start, end)` of a text (offsets relative to that text), its stem, and whether it is
    a stopword (kept for distances, never matched)."""

    start: int
    end: int
    stem: str
    stop: bool


# A question's own scaffolding: it names no topic, yet matches every passage that uses it.
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how did does do was were is are has have had many much".split())


_local = threading.local()


def stemmer():
    """The English Snowball stemmer (PyStemmer), as bm25s applies it; one per thread, since a
    stemmer keeps state between calls (a writer builds BM25 while readers analyse questions)."""
    if not hasattr(_local, "stemmer"):
        import Stemmer

        _local.stemmer = Stemmer.Stemmer("english")
    return _local.stemmer


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def question_terms(text: str, analyze) -> list[str]:
    """The question's terms (`analyze`d) without its question words; all its terms when nothing else is left."""
    kept = [w for w in text.split() if w.strip("?!.,;:'\"()").lower() not in QUESTION_WORDS]
    return analyze(" ".join(kept)) or analyze(text)


def words(text: str) -> list[Word]:
    """Every word of `text` with its stem (stopwords flagged, not dropped)."""
    found = [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(text)]
    stems = stemmer().stemWords([w for _, _, w in found])
    stop = stopwords()
    return [Word(s, e, stem, w in stop) for (s, e, w), stem in zip(found, stems)]


@lru_cache(maxsize=65536)
def stems(text: str) -> tuple[str, ...]:
    """The text's non-stopword stems in order (cached: the same candidate sentences come back query
    after query)."""
    return tuple(w.stem for w in words(text) if not w.stop)


def content_stems(text: str) -> list[str]:
    """The distinct non-stopword stems of `text`, in order of first use."""
    return list(dict.fromkeys(w.stem for w in words(text) if not w.stop))


class TermWeights:
    """Inverse document frequency of stems over the indexed chunks (BM25's Lucene idf)."""

    def __init__(self, vocabulary: dict[str, int], indptr: np.ndarray, n_docs: int):
        self.vocabulary = vocabulary
        self.indptr = indptr  # column pointers of a term-by-column sparse matrix: df = indptr[i+1] - indptr[i]
        self.n_docs = max(1, n_docs)

    def idf(self, stem: str) -> float:
        """Rare stems weigh more; a stem the index never saw weighs as a stem seen once."""
        i = self.vocabulary.get(stem)
        df = int(self.indptr[i + 1] - self.indptr[i]) if i is not None and i + 1 < len(self.indptr) else 1
        return math.log(1.0 + (self.n_docs - df + 0.5) / (max(df, 1) + 0.5))

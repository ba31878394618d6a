"""Words with offsets and stems, analysed the way the BM25 index analyses text.

bm25s lower-cases, keeps words of two or more characters, drops English stopwords and applies
the Snowball stemmer; doing the same here lets answer selection weigh a question's words by the
index's own document frequencies.
"""

from __future__ import annotations

import math
import re
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


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def words(text: str) -> list[Word]:
    """Every word of `text` with its stem (stopwords flagged, not dropped)."""
    found = [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(text)]
    stems = _stemmer().stemWords([w for _, _, w in found])
    stop = _stopwords()
    return [Word(s, e, stem, w in stop) for (s, e, w), stem in zip(found, stems)]


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

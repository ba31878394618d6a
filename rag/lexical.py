"""BM25 with bm25s over each chunk's title and text: English stopwords, the Snowball stemmer, k1 0.9 (`Settings.bm25`).

The title names what a chunk is about even when the chunk does not repeat it. A question's own
scaffolding ("what", "did", "how many") is dropped from the query before scoring: it names no
topic, yet matches every passage that happens to use it. k1 = 0.9 (term frequency saturates
sooner than bm25s's 1.5). Each choice measured better on the tune halves (eval/RESULTS.md).

bm25s builds a static sparse matrix, so one `LexicalIndex` is one immutable segment (rag/segments.py):
a write indexes only the chunks it adds, and the segments are scored as one collection.

Shards and segments score with the statistics of the whole collection (`CorpusStats`): bm25s stores, per (term,
document), score = idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)) (its "lucene" variant) in float32;
with the shard's own idf, avgdl and each document's length (`lengths.npy`) the integer tf comes back
exactly, and is scored again with the global idf and avgdl by the same float operations bm25s uses,
so a shard's (or segment's) scores equal one big index's bit for bit.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .terms import TermWeights, question_terms, stemmer

logging.getLogger("bm25s").setLevel(logging.ERROR)

ANALYSIS = 2  # bumped when what BM25 indexes changes (2: title + chunk text, k1 0.9): older files are rebuilt
def _idf(df: int, documents: int) -> np.float32:
    """bm25s's lucene idf, rounded to float32 as bm25s stores it."""
    return np.float32(math.log(1 + (documents - df + 0.5) / (df + 0.5)))


@dataclass(frozen=True)
class CorpusStats:
    """What BM25 needs of a collection for some terms: documents, their total length in terms, and
    the terms' document frequencies. Shards' stats add up to the collection's."""

    documents: int = 0
    length: int = 0
    df: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: "CorpusStats") -> "CorpusStats":
        df = dict(self.df)
        for term, n in other.df.items():
            df[term] = df.get(term, 0) + n
        return CorpusStats(self.documents + other.documents, self.length + other.length, df)

    @property
    def avgdl(self) -> np.float64:
        """The mean document length, as numpy's mean of the lengths gives it."""
        return np.float64(self.length) / self.documents

    def term_weights(self) -> TermWeights:
        """The collection's idf for these terms, as the second stage reads it from one index."""
        terms = [t for t, n in self.df.items() if n]
        indptr = np.concatenate([[0], np.cumsum([self.df[t] for t in terms])]).astype(np.int64)
        return TermWeights({t: i for i, t in enumerate(terms)}, indptr, self.documents)

    def to_json(self) -> dict:
        return {"documents": self.documents, "length": self.length, "df": self.df}

    @classmethod
    def from_json(cls, doc: dict) -> "CorpusStats":
        return cls(int(doc["documents"]), int(doc["length"]), {str(t): int(n) for t, n in doc["df"].items()})


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the k highest scores, by score then row: ties are cut and ordered by row (chunk
    id order), so segments merged by (score, id) rank exactly as one index does."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    above = np.flatnonzero(scores > kth)
    top = np.concatenate([above, np.flatnonzero(scores == kth)[: k - len(above)]])
    return top[np.lexsort((top, -scores[top]))]


class LexicalIndex:
    """BM25 scores for chunk ids; `ids[i]` is the chunk id of the i-th indexed document."""

    def __init__(self, retriever, ids: np.ndarray, lengths: np.ndarray | None = None):
        self.retriever = retriever
        self.ids = ids
        self.lengths = lengths  # terms per document (bm25s's dl); None in folders saved before it was stored
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (ids ascending, their rows): filters only

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: list[int], texts: list[str], k1: float, b: float) -> "LexicalIndex":
        """Index `texts` (one per chunk id) with BM25 parameters k1 and b (`Settings.bm25`)."""
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=b)
        lengths = np.zeros(0, dtype=np.int64)
        if texts:
            tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer(), show_progress=False)
            retriever.index(tokens, show_progress=False)
            lengths = np.array([len(doc) for doc in tokens.ids], dtype=np.int64)
        return cls(retriever, np.asarray(ids, dtype=np.int64), lengths)

    @staticmethod
    def token_lengths(texts: list[str]) -> np.ndarray:
        """Terms per document as `build` counts them (for folders saved without `lengths.npy`)."""
        import bm25s

        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer(), show_progress=False)
        return np.array([len(doc) for doc in tokens.ids], dtype=np.int64)

    def save(self, folder: Path) -> None:
        """Write the index files, the id map and the document lengths into `folder` (which must not exist yet)."""
        folder.mkdir(parents=True)
        np.save(folder / "ids.npy", self.ids)
        if self.lengths is not None:
            np.save(folder / "lengths.npy", self.lengths)
        if len(self.ids):
            self.retriever.save(str(folder), show_progress=False)
        (folder / "count.json").write_text(json.dumps({"documents": int(len(self.ids)), "analysis": ANALYSIS}))

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> "LexicalIndex":
        """Open an index written by `save`; with `mmap` the score matrix is mapped read-only, so
        processes serving one folder share its pages (the files are never edited in place)."""
        import bm25s

        if json.loads((folder / "count.json").read_text()).get("analysis") != ANALYSIS:
            raise ValueError(f"{folder} was built with another BM25 analysis; rebuild it from SQLite")
        mode = "r" if mmap else None
        ids = np.load(folder / "ids.npy", mmap_mode=mode)
        lengths = np.load(folder / "lengths.npy", mmap_mode=mode) if (folder / "lengths.npy").exists() else None
        retriever = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False) if len(ids) else bm25s.BM25()
        return cls(retriever, ids, lengths)

    @staticmethod
    def query_tokens(text: str) -> list[str]:
        """The question's stemmed, stopword-free terms (the documents' analysis), question words dropped."""
        import bm25s

        def analyze(part: str) -> list[str]:
            return bm25s.tokenize([part], stopwords="en", stemmer=stemmer(), return_ids=False, show_progress=False)[0]

        return question_terms(text, analyze)

    def _rows(self, allowed: np.ndarray) -> np.ndarray:
        """The rows of the allowed chunk ids this index holds: a binary search in two int64 arrays
        (16 B per chunk, built on the first filtered query) rather than a dict per process."""
        if self._sorted is None:
            order = np.argsort(self.ids, kind="stable")
            self._sorted = (np.asarray(self.ids)[order], order)
        ids, order = self._sorted
        allowed = np.asarray(allowed, dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, allowed), len(ids) - 1)
        return order[at[ids[at] == allowed]]

    def term_weights(self) -> TermWeights:
        """This index's idf per stem, read lazily from the score matrix's columns (one per term), so
        it costs nothing per query."""
        scores = getattr(self.retriever, "scores", None) or {}
        if "indptr" not in scores:
            return TermWeights({}, np.zeros(0, dtype=np.int64), 1)
        return TermWeights(getattr(self.retriever, "vocab_dict", None) or {}, scores["indptr"],
                           int(scores.get("num_docs", 1)))

    def _column(self, term: str) -> slice | None:
        """Where a term's (document, score) entries lie in the score matrix, or None if never seen."""
        i = (getattr(self.retriever, "vocab_dict", None) or {}).get(term)
        indptr = self.retriever.scores["indptr"] if len(self.ids) else ()
        return slice(int(indptr[i]), int(indptr[i + 1])) if i is not None and i + 1 < len(indptr) else None

    def stats(self, terms: list[str], live: np.ndarray | None = None) -> CorpusStats:
        """This index's share of the collection statistics for `terms` (a shard reports these);
        `live` (one bool per row) counts only those rows (a segment's chunks not deleted since)."""
        if self.lengths is None:
            raise ValueError("document lengths are missing: set `lengths` (token_lengths) first")
        df = {}
        for term in dict.fromkeys(terms):
            column = self._column(term)
            if column is None:
                df[term] = 0
            elif live is None:
                df[term] = column.stop - column.start
            else:
                df[term] = int(np.count_nonzero(live[np.asarray(self.retriever.scores["indices"][column])]))
        if live is None:
            return CorpusStats(len(self.ids), int(self.lengths.sum()), df)
        return CorpusStats(int(np.count_nonzero(live)), int(np.asarray(self.lengths)[live].sum()), df)

    def _global_scores(self, terms: list[str], corpus: CorpusStats) -> np.ndarray:
        """Every document's score under the collection's statistics: tf recovered from this index's
        stored scores, then scored as bm25s scores (same float32/float64 steps, same term order)."""
        k1, b = float(self.retriever.k1), float(self.retriever.b)
        stored = self.retriever.scores
        own_avgdl, documents = self.lengths.mean(), len(self.ids)
        scores = np.zeros(documents, dtype=np.float32)
        for term in terms:
            column = self._column(term)
            if column is None:
                continue
            docs = np.asarray(stored["indices"][column])
            s = np.asarray(stored["data"][column], dtype=np.float64)
            dl = np.asarray(self.lengths[docs])
            own = k1 * ((1 - b) + b * dl / own_avgdl)
            tf = np.rint(s * own / (np.float64(_idf(column.stop - column.start, documents)) - s))
            tfc = tf / (k1 * ((1 - b) + b * dl / corpus.avgdl) + tf)
            np.add.at(scores, docs, (np.float64(_idf(corpus.df[term], corpus.documents)) * tfc).astype(np.float32))
        return scores

    def search(self, text: str, k: int, allowed: np.ndarray | None = None,
               corpus: CorpusStats | None = None, live: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) with score > 0; `allowed` (chunk ids) filters before ranking.
        With `corpus` (the whole collection's stats for the question's terms, as summed over shards
        or segments) documents score as they would in one index of the whole collection; `live` (one
        bool per row) leaves out a segment's deleted chunks."""
        if not len(self.ids):
            return []
        if corpus is None:
            vocab = getattr(self.retriever, "vocab_dict", None) or {}
            terms = [t for t in self.query_tokens(text) if t in vocab]
            scores = self.retriever.get_scores(terms) if terms else None
        else:
            terms = [t for t in self.query_tokens(text) if corpus.df.get(t)]
            scores = self._global_scores(terms, corpus) if terms else None
        if scores is None:
            return []
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            mask[self._rows(allowed)] = True
            scores = np.where(mask, scores, 0.0)
        if live is not None:
            scores = np.where(live, scores, 0.0)
        return [(int(self.ids[i]), float(scores[i])) for i in top_rows(scores, k) if scores[i] > 0]

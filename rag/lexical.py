"""BM25 with bm25s over each chunk's title and text: English stopwords, the Snowball stemmer, k1 = 0.9.

The title names what a chunk is about even when the chunk does not repeat it. A question's own
scaffolding ("what", "did", "how many") is dropped from the query before scoring: it names no
topic, yet matches every passage that happens to use it. k1 = 0.9 (term frequency saturates
sooner than bm25s's 1.5). Each choice measured better on the tune halves (eval/RESULTS.md).

bm25s builds a static sparse matrix, so the index is rebuilt from the chunk texts on every write
(milliseconds for thousands of chunks) and saved beside the FAISS file under the same generation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

logging.getLogger("bm25s").setLevel(logging.ERROR)

K1, B = 0.9, 0.75
ANALYSIS = 2  # bumped when what BM25 indexes changes (2: title + chunk text, k1 0.9): older files are rebuilt
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how did does do was were is are has have had many much".split())


def question_terms(text: str, analyze) -> list[str]:
    """The question's terms without its question words; all its terms when nothing else is left."""
    words = [w for w in text.split() if w.strip("?!.,;:'\"()").lower() not in QUESTION_WORDS]
    return analyze(" ".join(words)) or analyze(text)


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


class LexicalIndex:
    """BM25 scores for chunk ids; `ids[i]` is the chunk id of the i-th indexed document."""

    def __init__(self, retriever, ids: np.ndarray):
        self.retriever = retriever
        self.ids = ids
        self._stem = _stemmer()
        self._position = {int(cid): i for i, cid in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: list[int], texts: list[str], k1: float = K1) -> "LexicalIndex":
        """Index `texts` (one per chunk id)."""
        import bm25s

        retriever = bm25s.BM25(k1=k1, b=B)
        if texts:
            tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
            retriever.index(tokens, show_progress=False)
        return cls(retriever, np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        """Write the index files and the id map into `folder` (which must not exist yet)."""
        folder.mkdir(parents=True)
        np.save(folder / "ids.npy", self.ids)
        if len(self.ids):
            self.retriever.save(str(folder), show_progress=False)
        (folder / "count.json").write_text(json.dumps({"documents": int(len(self.ids)), "analysis": ANALYSIS}))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """Open an index written by `save`."""
        import bm25s

        if json.loads((folder / "count.json").read_text()).get("analysis") != ANALYSIS:
            raise ValueError(f"{folder} was built with another BM25 analysis; rebuild it from SQLite")
        ids = np.load(folder / "ids.npy")
        retriever = bm25s.BM25.load(str(folder), show_progress=False) if len(ids) else bm25s.BM25()
        return cls(retriever, ids)

    def query_tokens(self, text: str) -> list[str]:
        """The question's stemmed, stopword-free terms (the documents' analysis), question words dropped."""
        import bm25s

        def analyze(part: str) -> list[str]:
            return bm25s.tokenize([part], stopwords="en", stemmer=self._stem, return_ids=False, show_progress=False)[0]

        return question_terms(text, analyze)

    def search(self, text: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, score) with score > 0; `allowed` (chunk ids) filters before ranking."""
        if not len(self.ids):
            return []
        vocab = getattr(self.retriever, "vocab_dict", None) or {}
        terms = [t for t in self.query_tokens(text) if t in vocab]
        if not terms:
            return []
        scores = self.retriever.get_scores(terms)
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            positions = [self._position[c] for c in allowed.tolist() if c in self._position]
            mask[positions] = True
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]

"""The FAISS vector index: stable int64 chunk ids; exact while small, approximate (IVF, fp16 codes) when large.

Vectors are unit length, so inner product is cosine. Filters are applied inside the search with an
ID selector, so a filtered query ranks only the allowed chunks and still returns k when k exist.

Two kinds share one interface: `flat-ip` (an `IndexIDMap2` over `IndexFlatIP`, exact, 1.5 kB per
384-d chunk) and `ivf-fp16` (an `IndexIVFScalarQuantizer` with float16 codes, 0.8 kB per chunk, which
scans `nprobe` of `nlist` clusters). 8-bit codes (0.4 kB) were measured too: their rounding capped
recall@10 at 0.95 at 1M chunks whatever nprobe, so float16 it is. `for_size` picks the kind from
a segment's chunk count; the threshold and IVF parameters were measured with `newsrag bench vectors`
(eval/RESULTS.md, "Performance"). Loaded indexes are memory-mapped, so processes serving one index
folder share the vectors (docs/scaling.md, read scaling).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

TRAIN_PER_LIST = 64  # training points per IVF cluster (FAISS wants at least 39)


def ivf_params(count: int) -> dict:
    """IVF parameters for about `count` chunks: nlist ~ sqrt(count) as a power of two (never more clusters
    than the data can train); nprobe = nlist / 8, at least 64 (recall@10 >= 0.98 at 100k and 1M, measured)."""
    nlist = int(2 ** round(np.log2(max(count, 1) ** 0.5)))
    nlist = max(1, min(max(nlist, 64), 8192, count // 39))
    return {"nlist": nlist, "nprobe": min(nlist, max(64, nlist // 8)), "code": "fp16"}


def sample_size(count: int) -> int:
    """How many vectors to train an IVF index for `count` chunks on."""
    return min(count, ivf_params(count)["nlist"] * TRAIN_PER_LIST)


def one_openmp_thread() -> None:
    """Run this thread's OpenMP work on one core (FAISS and torch share libgomp, and the setting is per
    thread). One query is too small to split: on 2 busy cores a 2-thread team spin-waits, which made
    an exact search at 100k chunks 4x slower and a question's encoding 5-25x slower (measured)."""
    faiss.omp_set_num_threads(1)


class VectorIndex:
    """Add, search (within allowed ids, or without excluded ones), save, load; one of two kinds.
    One is one segment's (rag/segments.py): deleted chunks are excluded at search, never removed."""

    def __init__(self, index: "faiss.Index", mapped: bool = False):
        self.index = index
        self.mapped = mapped  # read from a memory-mapped file: never edit it (a segment is immutable)

    @classmethod
    def empty(cls, dimension: int) -> "VectorIndex":
        """An exact index."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def approximate(cls, dimension: int, sample: np.ndarray, count: int, nprobe: int | None = None) -> "VectorIndex":
        """An IVF index with float16 codes sized for `count` chunks, trained on `sample` (vectors drawn from the data)."""
        params = ivf_params(count)
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dimension, params["nlist"], faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = nprobe or params["nprobe"]
        return cls(index)

    @classmethod
    def for_size(cls, dimension: int, count: int, sample: np.ndarray | None, approximate_from: int) -> "VectorIndex":
        """Exact below `approximate_from` chunks, else approximate (then `sample` is required)."""
        if count < approximate_from or sample is None:
            return cls.empty(dimension)
        return cls.approximate(dimension, sample, count)

    @property
    def kind(self) -> str:
        return "ivf-fp16" if isinstance(self.index, faiss.IndexIVF) else "flat-ip"

    @property
    def params(self) -> dict:
        """What the manifest records next to `index_type`."""
        if isinstance(self.index, faiss.IndexIVF):
            return {"nlist": int(self.index.nlist), "nprobe": int(self.index.nprobe), "code": "fp16",
                    "metric": "inner_product"}
        return {"metric": "inner_product"}

    @property
    def dimension(self) -> int:
        return self.index.d

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def ids(self) -> np.ndarray:
        """Every stored id (for consistency checks)."""
        if not isinstance(self.index, faiss.IndexIVF):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(self.index.nlist) if lists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None,
               excluded: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine); `allowed` restricts the search to those ids before ranking;
        `excluded` (a segment's deleted ids, used when nothing is `allowed`) leaves those out.

        With the approximate index a narrow filter may leave the probed clusters with fewer than k
        allowed chunks; the search then probes every cluster, so k are still returned when k exist."""
        if not len(self) or k <= 0:
            return []
        one_openmp_thread()
        selector = None
        if allowed is not None:
            if not len(allowed):
                return []
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        elif excluded is not None and len(excluded):
            inner = faiss.IDSelectorBatch(np.asarray(excluded, dtype=np.int64))
            selector = faiss.IDSelectorNot(inner)
            selector.referenced = inner  # the NOT selector only points at it: keep it alive
        k = min(k, len(self) if allowed is None else min(len(self), len(allowed)))
        query = query.reshape(1, -1).astype(np.float32)
        if not isinstance(self.index, faiss.IndexIVF):
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
            return self._hits(*self.index.search(query, k, params=params))
        hits = self._hits(*self.index.search(query, k, params=faiss.SearchParametersIVF(
            sel=selector, nprobe=self.index.nprobe)))
        if len(hits) < k and self.index.nprobe < self.index.nlist:
            hits = self._hits(*self.index.search(query, k, params=faiss.SearchParametersIVF(
                sel=selector, nprobe=self.index.nlist)))
        return hits

    @staticmethod
    def _hits(scores: np.ndarray, ids: np.ndarray) -> list[tuple[int, float]]:
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, mmap: bool = True) -> "VectorIndex":
        """Read an index file; with `mmap` (IO_FLAG_MMAP_IFC) the flat vectors or the IVF lists stay
        in the file, mapped read-only, so every process serving one index folder shares their pages
        (published files are never edited in place: a new version is a new folder)."""
        return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0), mapped=mmap)

"""Both vector index kinds behind one interface: recall against exact search, filters, removal, save and load,
and the archive switching to the approximate kind past the threshold (recorded in the manifest)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.archive import Archive
from rag.articles import Article
from rag.vectors import VectorIndex, ivf_params
from rag.query import Query


def _clustered(n: int, dim: int = 64, centres: int = 200, draw: int = 0) -> np.ndarray:
    """Unit vectors around fixed random centres (draw `draw` of them): data with structure, as embeddings have."""
    base = np.random.default_rng(0).standard_normal((centres, dim)).astype(np.float32)
    rng = np.random.default_rng(draw + 1)
    x = base[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    x = _clustered(20_000)
    ids = np.arange(1_000, 1_000 + len(x), dtype=np.int64)
    exact = VectorIndex.empty(x.shape[1])
    exact.add(ids, x)
    approx = VectorIndex.approximate(x.shape[1], x[::4], len(x))
    approx.add(ids, x)
    return ids, x, exact, approx


def test_kinds_and_params(data):
    _, _, exact, approx = data
    assert exact.kind == "flat-ip" and approx.kind == "ivf-fp16"
    assert approx.params["nlist"] == ivf_params(20_000)["nlist"] and approx.params["nprobe"] >= 8


def test_approximate_recall_against_exact(data):
    ids, x, exact, approx = data
    queries = _clustered(100, draw=1)
    found = [len({i for i, _ in approx.search(q, 10)} & {i for i, _ in exact.search(q, 10)}) for q in queries]
    assert np.mean(found) / 10 >= 0.95


def test_approximate_scores_are_cosines(data):
    ids, x, _, approx = data
    (top, score), *_ = approx.search(x[123], 3)
    assert top == ids[123] and score == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("kind", ["exact", "approx"])
def test_filter_returns_k_allowed_in_exact_order(data, kind):
    ids, x, exact, approx = data
    index = exact if kind == "exact" else approx
    rng = np.random.default_rng(2)
    allowed = rng.choice(ids, 7, replace=False)  # scattered over clusters the query never probes
    q = x[0]
    hits = index.search(q, 5, allowed)
    assert len(hits) == 5 and {i for i, _ in hits} <= set(allowed.tolist())
    truth = sorted(allowed.tolist(), key=lambda i: -float(x[i - 1_000] @ q))[:5]
    assert [i for i, _ in hits] == truth
    assert index.search(q, 10, np.array([], dtype=np.int64)) == []
    assert len(index.search(q, 10, allowed[:3])) == 3


def test_excluded_ids_save_load(tmp_path, data):
    """A segment's deleted ids are left out of a search (never removed: its files are immutable)."""
    ids, x, _, approx = data
    index = VectorIndex.approximate(x.shape[1], x[::4], len(x))
    index.add(ids[:5_000], x[:5_000])
    gone = ids[:10]
    assert ids[3] in {i for i, _ in index.search(x[3], 10)}
    assert ids[3] not in {i for i, _ in index.search(x[3], 10, excluded=gone)}
    assert len(index.search(x[3], 10, excluded=gone)) == 10
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert loaded.kind == "ivf-fp16" and loaded.params == index.params
    assert loaded.search(x[4_000], 5) == index.search(x[4_000], 5)
    assert loaded.search(x[3], 5, excluded=gone) == index.search(x[3], 5, excluded=gone)


@pytest.mark.parametrize("kind", ["flat-ip", "ivf-fp16"])
def test_mapped_load_searches_alike(tmp_path, data, kind):
    """Loaded memory-mapped (shared between processes), an index answers as in memory, deleted ids
    excluded alike."""
    ids, x, _, _ = data
    index = VectorIndex.empty(x.shape[1]) if kind == "flat-ip" else VectorIndex.approximate(x.shape[1], x[::4], len(x))
    index.add(ids[:5_000], x[:5_000])
    index.save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss")
    assert mapped.mapped and any(str(tmp_path / "v.faiss") in line for line in open("/proc/self/maps"))
    assert not VectorIndex.load(tmp_path / "v.faiss", mmap=False).mapped
    for q in (x[7], x[4_321]):
        assert mapped.search(q, 5) == index.search(q, 5)
        assert mapped.search(q, 3, ids[100:200]) == index.search(q, 3, ids[100:200])
    assert mapped.search(x[3], 2, excluded=ids[3:4])[0][0] != ids[3]
    assert len(mapped) == 5_000 and mapped.search(x[3], 1)[0][0] == ids[3]


def test_archive_switches_kind_and_keeps_filters(monkeypatch, tmp_path):
    """Past the threshold the archive publishes an IVF index, records it, and filters, check and reopen work."""
    monkeypatch.setenv("NEWSRAG_APPROXIMATE_FROM", "20")
    topics = ["rain fell on the harbour", "the council voted on taxes", "a striker scored twice",
              "the bank raised interest rates", "engineers opened a bridge"]
    articles = [Article(id=f"a{i}", title=f"Report {i}", text=f"Report {i}. " + " ".join(
        f"Sentence {j} says {topics[(i + j) % 5]} in town {i}." for j in range(6)),
        date=f"2024-0{1 + i % 9}-10", source="wire" if i % 2 else "daily") for i in range(40)]
    archive = Archive.open("big", tmp_path, create=True)
    archive.ingest(articles)
    manifest = json.loads((tmp_path / "big" / "manifest.json").read_text())
    assert manifest["index_type"] == "ivf-fp16" and manifest["index_params"]["nlist"] >= 1
    assert archive.check() == []
    from rag.query import Filters

    passages = archive.search(Query("who scored twice?", k=3, mode="dense", filters=Filters(source="wire"))).passages
    assert passages and all(p.article.source == "wire" for p in passages)
    reopened = Archive.open("big", tmp_path)
    assert reopened.derived().vectors.kind == "ivf-fp16"
    archive.delete("a1")
    assert archive.check() == [] and "a1" not in {p.article.id for p in archive.search(Query("town 1", k=40, mode="dense")).passages}

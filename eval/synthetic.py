"""Synthetic indexes above what we can embed, for `newsrag bench synthetic`: a built index copied many times.

Copy 0 is the base index as built (its articles, chunks, sentences, vectors and dates unchanged, so questions about the base still have their gold passages). Copy c >= 1 of
an article gets the id `<id>~copy<c>`, the title `<title> (copy <c>)` (BM25 indexes the title with
each chunk, so no two BM25 documents are equal), and every stored chunk and sentence vector plus
Gaussian noise of norm `noise`, re-normalised (as `newsrag bench vectors` does, per the contract:
real embeddings with small noise). Everything is written through `Store.write`, batch by batch,
and its one segment (FAISS and BM25) is then built as when an index of format 2 is first opened.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.archive import Archive
from rag.articles import Article
from rag.chunking import Chunk
from rag.ingest import embed_hash
from rag.store import PreparedArticle

MARKER = "synthetic.json"  # in the index folder: what was built, and that it may be rebuilt
WRITE_BATCH = 1000  # articles per transaction


def read_base(path: Path) -> list[PreparedArticle]:
    """Every article of a built index, as the `PreparedArticle` that wrote it (SQLite opened read-only)."""
    dimension = json.loads((path / "manifest.json").read_text())["dimension"]
    vectors = lambda blobs: (np.vstack([np.frombuffer(b, dtype=np.float32) for b in blobs]) if blobs
                             else np.zeros((0, dimension), dtype=np.float32))
    conn = sqlite3.connect(f"file:{path / 'meta.sqlite'}?mode=ro", uri=True)
    try:
        chunks: dict[str, list] = {}
        for aid, ordinal, start, end, n_tokens, h, blob in conn.execute(
                'SELECT article_id, ordinal, start, "end", n_tokens, embed_hash, vector FROM chunks ORDER BY id'):
            chunks.setdefault(aid, []).append((Chunk(aid, ordinal, start, end, "", n_tokens), h, blob))
        sentences: dict[str, list] = {}
        for aid, start, end, h, blob, dates in conn.execute(
                'SELECT article_id, start, "end", embed_hash, vector, dates FROM sentences ORDER BY id'):
            sentences.setdefault(aid, []).append(((start, end), h, blob, json.loads(dates)))
        out = []
        for aid, text, title, date, url, source, extra in conn.execute(
                "SELECT id, text, title, date, url, source, extra FROM articles ORDER BY id"):
            c, s = chunks.get(aid, []), sentences.get(aid, [])
            out.append(PreparedArticle(
                Article(aid, text, title, date, url, source, json.loads(extra or "{}")),
                [r[0] for r in c], [r[1] for r in c], vectors([r[2] for r in c]),
                [r[0] for r in s], [r[1] for r in s], vectors([r[2] for r in s]),
                [r[3] for r in s]))
        return out
    finally:
        conn.close()


def noisy(vectors: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Each row plus Gaussian noise of norm ~`noise`, re-normalised to unit length."""
    if not len(vectors):
        return vectors
    x = vectors + rng.standard_normal(vectors.shape).astype(np.float32) * (noise / np.sqrt(vectors.shape[1]))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def copy_of(base: PreparedArticle, copy: int, rng: np.random.Generator, noise: float) -> PreparedArticle:
    """Copy `copy` of a base article (copy 0 is the article itself)."""
    if copy == 0:
        return base
    a = base.article
    tag = f"~copy{copy}"
    return PreparedArticle(
        replace(a, id=a.id + tag, title=f"{a.title} (copy {copy})"),
        base.chunks, [embed_hash(h + tag) for h in base.chunk_hashes], noisy(base.chunk_vectors, rng, noise),
        base.sentences, [embed_hash(h + tag) for h in base.sentence_hashes], noisy(base.sentence_vectors, rng, noise),
        base.sentence_dates)


def build(base_path: Path, name: str, index_dir: Path, chunks: int, noise: float, seed: int = 0) -> dict:
    """Write about `chunks` chunks (whole articles, copies of the base in turn) into a fresh index
    `index_dir/name`, then derive its FAISS and BM25 files as an open after a write does."""
    folder = index_dir / name
    if folder.exists():
        if not (folder / MARKER).exists():
            raise SystemExit(f"{folder} exists and is not a synthetic index: choose another --name")
        shutil.rmtree(folder)
    base = read_base(base_path)
    base_chunks = sum(len(p.chunks) for p in base)
    if not base_chunks:
        raise SystemExit(f"{base_path} holds no chunks")
    archive = Archive.open(name, index_dir, create=True)
    archive.store.turn_off_stories()  # copies of one article are not syndication: no stories at this scale
    rng = np.random.default_rng(seed)
    written = {"articles": 0, "chunks": 0, "sentences": 0}
    batch: list[PreparedArticle] = []
    started = time.perf_counter()
    copy = 0
    while written["chunks"] < chunks:
        for article in base:
            if written["chunks"] >= chunks:
                break
            batch.append(copy_of(article, copy, rng, noise))
            written["articles"] += 1
            written["chunks"] += len(article.chunks)
            written["sentences"] += len(article.sentences)
            if len(batch) >= WRITE_BATCH:
                archive.store.write(batch, [])
                batch = []
        copy += 1
    if batch:
        archive.store.write(batch, [])
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    derived = archive.derived()  # no derived files for this generation yet: rebuilt from SQLite and published
    derive_s = time.perf_counter() - started
    report = {
        "base": str(base_path), "base_articles": len(base), "base_chunks": base_chunks, "copies": copy,
        "noise_norm": noise, "seed": seed, "index": name, "index_dir": str(index_dir), **written,
        "index_type": derived.vectors.kind, "index_params": derived.vectors.params,
        "write_s": round(write_s, 1), "derive_s": round(derive_s, 1),
        "disk_bytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
    }
    (folder / MARKER).write_text(json.dumps(report, indent=2))
    return report

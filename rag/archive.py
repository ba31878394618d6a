"""`Archive`: the one object the CLI, the API and the evaluation harness use for an index.

An index is a folder `indexes/<name>/`: `meta.sqlite` (the truth), `manifest.json`, and a
`derived-<generation>/` folder with the FAISS and BM25 files built from that SQLite generation.
Writes take an OS file lock, commit in SQLite, then publish new derived files; opening an index
whose derived files lag behind SQLite (a crash in between) rebuilds them, so nothing is lost.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .articles import Article, LoadFailure
from .chunking import ChunkSettings, chunk_text, split_sentences
from .dates import find_dates
from .embedding import Embedder, shared_embedder
from .errors import (ArticleNotFound, EmptyIndex, IndexLocked, IndexMismatch, IndexNotFound,
                     InvalidInput)
from .lexical import LexicalIndex
from .retrieval import DEFAULT_MODE, Filters, FusionSettings, Hit, check_mode, retrieve
from .store import PreparedArticle, Store
from .vectors import VectorIndex
from . import answering

FORMAT_VERSION = 1
DEFAULT_INDEX = "default"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INGEST_BATCH = 64  # articles per SQLite transaction: bounded memory, progress that survives a crash


def index_root(index_dir: str | os.PathLike | None = None) -> Path:
    """Where indexes live: the argument, else NEWSRAG_INDEX_DIR, else ./indexes."""
    return Path(index_dir or os.environ.get("NEWSRAG_INDEX_DIR") or "indexes")


def check_index_name(name: str) -> str:
    """Index names are plain folder names: no path separators, no traversal."""
    if not _NAME_OK.match(name or ""):
        raise InvalidInput(f"invalid index name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


def embed_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_input(title: str, chunk: str) -> str:
    """What the model reads for a chunk: the title first, since it helps the small model."""
    return f"{title}\n{chunk}" if title and not chunk.startswith(title) else chunk


@dataclass
class IngestReport:
    """What happened to each article: added, unchanged, replaced, failed (with reasons)."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    chunks: int = 0
    truncated_chunks: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"added": len(self.added), "unchanged": len(self.unchanged), "replaced": len(self.replaced),
                "failed": [{"source": f.source, "reason": f.reason} for f in self.failed],
                "chunks": self.chunks, "truncated_chunks": self.truncated_chunks,
                "seconds": round(self.seconds, 3)}


@dataclass
class _Derived:
    generation: int
    vectors: VectorIndex
    lexical: LexicalIndex


class Archive:
    """An opened index: ingest, delete, search, answer, and read articles."""

    def __init__(self, path: Path, embedder: Embedder, chunking: ChunkSettings, fusion: FusionSettings):
        self.path = path
        self.name = path.name
        self.embedder = embedder
        self.chunking = chunking
        self.fusion = fusion
        self.store = Store(path / "meta.sqlite")
        self._derived: _Derived | None = None
        self._reload_lock = threading.Lock()

    # --- opening -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        name: str = DEFAULT_INDEX,
        index_dir: str | os.PathLike | None = None,
        create: bool = False,
        model: str | None = None,
        chunking: ChunkSettings | None = None,
        fusion: FusionSettings | None = None,
    ) -> "Archive":
        """Open `index_dir/name`; with `create`, make it. Checks model and format against the manifest."""
        path = index_root(index_dir) / check_index_name(name)
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            if not create:
                raise IndexNotFound(f"no index named {name!r} in {path.parent}; build one with `newsrag ingest PATH --index {name}`")
            path.mkdir(parents=True, exist_ok=True)
            embedder = shared_embedder(model)
            archive = cls(path, embedder, chunking or ChunkSettings(), fusion or FusionSettings())
            archive._write_manifest()
            return archive
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"index {name!r} has format {manifest.get('format_version')}, this newsrag reads {FORMAT_VERSION}; "
                f"re-ingest the articles into a new index")
        wanted = model or os.environ.get("NEWSRAG_MODEL") or manifest["model"]
        if wanted != manifest["model"]:
            raise IndexMismatch(
                f"index {name!r} was built with model {manifest['model']!r}, not {wanted!r}; "
                f"unset NEWSRAG_MODEL or ingest into another index (--index NAME)")
        embedder = shared_embedder(manifest["model"])
        chunker = manifest["chunker"]
        settings = ChunkSettings(chunker["target_tokens"], chunker["overlap_tokens"])
        if chunking and chunking != settings:
            raise IndexMismatch(f"index {name!r} was chunked with {settings}, not {chunking}; use another index")
        return cls(path, embedder, settings, fusion or FusionSettings())

    def verify_model(self) -> None:
        """Fail clearly if the model's weights changed since the index was built."""
        manifest = self.manifest()
        if manifest.get("model_fingerprint") and manifest["model_fingerprint"] != self.embedder.fingerprint:
            raise IndexMismatch(
                f"the weights of model {self.embedder.name!r} differ from those index {self.name!r} was built with; "
                f"re-ingest into a new index")

    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    def _write_manifest(self, derived_generation: int | None = None, index_type: str = VectorIndex.kind) -> None:
        store = self.store
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": self.embedder.name,
            "model_fingerprint": self.embedder.fingerprint,
            "dimension": self.embedder.dimension,
            "chunker": {"target_tokens": self.chunking.target_tokens, "overlap_tokens": self.chunking.overlap_tokens,
                        "tokenizer": "cl100k_base"},
            "index_type": index_type,
            "generation": store.generation,
            "derived_generation": derived_generation,
            "counts": {"articles": store.count("articles"), "chunks": store.count("chunks"),
                       "sentences": store.count("sentences")},
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        tmp = self.path / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, self.path / "manifest.json")

    # --- derived files (FAISS, BM25) ---------------------------------------------------------
    def _derived_dir(self, generation: int) -> Path:
        return self.path / f"derived-{generation}"

    def derived(self) -> _Derived:
        """The FAISS and BM25 state for SQLite's current generation, reloaded when another writer moved it."""
        generation = self.store.generation
        current = self._derived
        if current is not None and current.generation == generation:
            return current
        with self._reload_lock:
            if self._derived is None or self._derived.generation != generation:
                self._derived = self._load_or_rebuild(generation)
            return self._derived

    def _load_or_rebuild(self, generation: int) -> _Derived:
        folder = self._derived_dir(generation)
        if (folder / "complete").exists():
            return _Derived(generation, VectorIndex.load(folder / "vectors.faiss"), LexicalIndex.load(folder / "bm25"))
        derived = self._rebuild(generation)
        try:
            with self._write_lock(wait=False):
                if self.store.generation == generation:
                    self._publish(derived)
        except IndexLocked:
            pass  # a writer is busy; it will publish its own generation
        return derived

    def _rebuild(self, generation: int) -> _Derived:
        vectors = VectorIndex.empty(self.embedder.dimension)
        for ids, vecs in self.store.iter_chunk_vectors():
            vectors.add(ids, vecs)
        rows = list(self.store.iter_chunk_texts())
        lexical = LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows])
        return _Derived(generation, vectors, lexical)

    def _publish(self, derived: _Derived) -> None:
        """Write derived files for a generation beside the old ones, then drop the old ones."""
        folder = self._derived_dir(derived.generation)
        tmp = self.path / f".tmp-derived-{derived.generation}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        derived.vectors.save(tmp / "vectors.faiss")
        derived.lexical.save(tmp / "bm25")
        (tmp / "complete").write_text(str(derived.generation))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        for old in self.path.glob("derived-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        self._write_manifest(derived.generation, derived.vectors.kind)

    @contextmanager
    def _write_lock(self, wait: bool = True) -> Iterator[None]:
        """One writer at a time across processes; the kernel releases the lock if we die."""
        with open(self.path / ".write.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:
                raise IndexLocked(f"index {self.name!r} is being written by another process") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- writes ------------------------------------------------------------------------------
    def ingest(
        self,
        items: Iterable[Article | LoadFailure],
        progress: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Add, replace or skip each article; commit in batches; publish derived files once."""
        report = IngestReport()
        started = time.perf_counter()
        with self._write_lock():
            derived = self.derived()
            batch: list[Article] = []
            seen: set[str] = set()
            for item in items:
                if isinstance(item, LoadFailure):
                    report.failed.append(item)
                    if progress:
                        progress(1)
                    continue
                if item.id in seen:  # two sources with one id: the later wins, within one ingest
                    batch = [a for a in batch if a.id != item.id]
                seen.add(item.id)
                batch.append(item)
                if len(batch) >= INGEST_BATCH:
                    self._ingest_batch(batch, derived, report, progress)
                    batch = []
            if batch:
                self._ingest_batch(batch, derived, report, progress)
            if report.added or report.replaced:
                self._finish_write(derived)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_batch(self, batch: list[Article], derived: _Derived, report: IngestReport,
                      progress: Callable[[int], None] | None) -> None:
        existing = self.store.content_hashes(a.id for a in batch)
        todo = [a for a in batch if existing.get(a.id) != a.content_hash]
        report.unchanged.extend(a.id for a in batch if existing.get(a.id) == a.content_hash)
        prepared = self._prepare(todo, report)
        if not prepared:
            if progress:
                progress(len(batch))
            return
        new_ids, removed = self.store.write(prepared, [])
        derived.vectors.remove(removed)
        for p in prepared:
            derived.vectors.add(np.asarray(new_ids[p.article.id], dtype=np.int64), p.chunk_vectors)
            (report.replaced if p.article.id in existing else report.added).append(p.article.id)
        derived.generation = self.store.generation
        if progress:
            progress(len(batch))

    def _prepare(self, articles: list[Article], report: IngestReport) -> list[PreparedArticle]:
        """Chunk, split sentences, find dates and embed (reusing any vector already computed)."""
        limit = self.embedder.max_tokens
        plans = []
        for a in articles:
            fits = lambda t, title=a.title: self.embedder.count_model_tokens(embed_input(title, t)) <= limit
            chunks = chunk_text(a.id, a.text, self.chunking, fits)
            chunk_inputs = [embed_input(a.title, c.text) for c in chunks]
            sentences = split_sentences(a.text)
            sentence_inputs = [a.text[s:e] for s, e in sentences]
            dates = [
                [{"text": m.text, "start": s + m.start, "end": s + m.end, "resolved": m.resolved,
                  "approximate": m.approximate} for m in find_dates(a.text[s:e], a.date)]
                for s, e in sentences
            ]
            report.truncated_chunks += sum(self.embedder.count_model_tokens(t) > limit for t in chunk_inputs)
            plans.append((a, chunks, chunk_inputs, sentences, sentence_inputs, dates))
        chunk_vecs = self._embed("chunks", [t for p in plans for t in p[2]])
        sent_vecs = self._embed("sentences", [t for p in plans for t in p[4]])
        out, ci, si = [], 0, 0
        for a, chunks, chunk_inputs, sentences, sentence_inputs, dates in plans:
            out.append(PreparedArticle(
                a, chunks, [embed_hash(t) for t in chunk_inputs], chunk_vecs[ci: ci + len(chunks)],
                sentences, [embed_hash(t) for t in sentence_inputs], sent_vecs[si: si + len(sentences)], dates))
            ci += len(chunks)
            si += len(sentences)
            report.chunks += len(chunks)
        return out

    def _embed(self, table: str, texts: list[str]) -> np.ndarray:
        hashes = [embed_hash(t) for t in texts]
        cached = self.store.cached_vectors(table, hashes)
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))
        if missing:
            by_hash = dict(zip(hashes, texts))
            fresh = self.embedder.encode([by_hash[h] for h in missing])
            cached.update(zip(missing, fresh))
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.vstack([cached[h] for h in hashes])

    def _finish_write(self, derived: _Derived) -> None:
        rows = list(self.store.iter_chunk_texts())
        derived.lexical = LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows])
        derived.generation = self.store.generation
        self._publish(derived)
        self._derived = derived

    def delete(self, article_id: str) -> None:
        """Remove an article with its chunks from SQLite, FAISS and BM25."""
        with self._write_lock():
            derived = self.derived()
            if self.store.get_article(article_id) is None:
                raise ArticleNotFound(f"no article {article_id!r} in index {self.name!r}")
            _, removed = self.store.write([], [article_id])
            derived.vectors.remove(removed)
            self._finish_write(derived)

    # --- reads -------------------------------------------------------------------------------
    def get_article(self, article_id: str) -> Article:
        article = self.store.get_article(article_id)
        if article is None:
            raise ArticleNotFound(f"no article {article_id!r} in index {self.name!r}")
        return article

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or filters.is_empty():
            return None
        where, params = filters.to_sql()
        return self.store.chunk_ids_where(where, params)

    def search(
        self, question: str, k: int = 5, mode: str | None = None, filters: Filters | None = None
    ) -> tuple[list[answering.Passage], dict, dict, np.ndarray]:
        """Passages for a question, with the retrieval block, per-stage timings and the query vector."""
        mode = check_mode(mode)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        derived = self.derived()
        if not len(derived.vectors):
            raise EmptyIndex(f"index {self.name!r} holds no articles yet; ingest some with `newsrag ingest PATH`")
        allowed = self._allowed(filters)
        t1 = time.perf_counter()
        query_vector = self.embedder.encode_query(question)
        t2 = time.perf_counter()
        hits = retrieve(mode, k * 3, query_vector, question, derived.vectors, derived.lexical, allowed, self.fusion)
        t3 = time.perf_counter()
        chunks = self.store.chunks_by_id(h.chunk_id for h in hits)
        articles = self.store.get_articles(c.article_id for c in chunks.values())
        passages = answering.build_passages(hits, chunks, articles, k)
        t4 = time.perf_counter()
        timings.update(filter=(t1 - t0) * 1e3, embed=(t2 - t1) * 1e3, retrieve=(t3 - t2) * 1e3, passages=(t4 - t3) * 1e3)
        retrieval = {"mode": mode, "k": k, "candidates": len(hits), "filters": (filters.describe() if filters else {})}
        if mode == "hybrid":
            retrieval["fusion"] = self.fusion.describe()
        return passages, retrieval, timings, query_vector

    def answer(self, question: str, k: int = 5, mode: str | None = None, filters: Filters | None = None) -> dict:
        """The full answer document (the JSON the endpoint and `ask --json` return)."""
        started = time.perf_counter()
        passages, retrieval, timings, query_vector = self.search(question, k, mode, filters)
        t0 = time.perf_counter()
        answer = answering.choose_answer(
            question, query_vector, passages,
            lambda p: self.store.sentences_in(p.article.id, p.start, p.end))
        timings["answer"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - started) * 1e3
        no_answer = None if answer else {"reason": "no passage holds a candidate sentence"}
        return {
            "question": question,
            "answer": answer.to_json() if answer else None,
            "no_answer": no_answer,
            "passages": [p.to_json() for p in passages],
            "retrieval": retrieval,
            "timings_ms": {k_: round(v, 3) for k_, v in timings.items()},
        }

    def stats(self) -> dict:
        store = self.store
        derived = self.derived()
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        first, last = store.date_range()
        return {"index": self.name, "path": str(self.path), "model": self.embedder.name,
                "articles": store.count("articles"), "chunks": store.count("chunks"),
                "sentences": store.count("sentences"), "date_range": [first, last], "sources": store.sources(),
                "index_type": derived.vectors.kind, "generation": derived.generation, "size_bytes": size,
                "chunker": {"target_tokens": self.chunking.target_tokens, "overlap_tokens": self.chunking.overlap_tokens}}

    def check(self) -> list[str]:
        """Problems found when FAISS, BM25 and SQLite are compared (empty when they agree)."""
        derived = self.derived()
        sql_ids = {cid for ids, _ in self.store.iter_chunk_vectors() for cid in ids.tolist()}
        faiss_ids = set(derived.vectors.ids().tolist())
        bm25_ids = set(derived.lexical.ids.tolist())
        problems = []
        if faiss_ids != sql_ids:
            problems.append(f"FAISS and SQLite differ: {len(faiss_ids - sql_ids)} ids only in FAISS, {len(sql_ids - faiss_ids)} only in SQLite")
        if bm25_ids != sql_ids:
            problems.append(f"BM25 and SQLite differ: {len(bm25_ids - sql_ids)} ids only in BM25, {len(sql_ids - bm25_ids)} only in SQLite")
        orphans = self.store.connect().execute(
            "SELECT count(*) FROM chunks c LEFT JOIN articles a ON a.id = c.article_id WHERE a.id IS NULL").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} chunks have no article")
        return problems

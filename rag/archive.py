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
from datetime import date
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
from .rescore import ChunkContext
from .retrieval import (DEFAULT_MODE, Filters, FusionSettings, Hit, check_mode, check_recency, prefer_recent,
                        retrieve, time_in_question, time_scope)
from .store import PreparedArticle, Store
from .timeframe import parse_as_of
from .reader import load_reader, reader_identity
from .vectors import APPROXIMATE_FROM, VectorIndex, sample_size
from . import answering

FORMAT_VERSION = 2
DEFAULT_INDEX = "default"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
INGEST_BATCH = 64  # articles per SQLite transaction: bounded memory, progress that survives a crash
CANDIDATES_PER_PASSAGE = 3  # k passages are built from the top 3k chunks (a sharded search too)
BatchPreparer = Callable[[Iterator[list[Article]], "IngestReport"], Iterator[list[PreparedArticle]]]


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


@contextmanager
def exclusive_lock(folder: Path, name: str, wait: bool = True) -> Iterator[None]:
    """The index's `.write.lock` (fcntl.flock): one holder across threads and processes; the kernel
    releases it when a holder dies. Not waiting, a busy lock raises IndexLocked."""
    with open(folder / ".write.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise IndexLocked(f"index {name!r} is being written by another process") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


@dataclass(frozen=True)
class _Derived:
    """One complete FAISS + BM25 state built from SQLite generation `generation`; never edited once shared."""

    generation: int
    vectors: VectorIndex
    lexical: LexicalIndex


class _Pending:
    """A writer's private FAISS copy: readers keep the last complete state until the writer swaps it in."""

    def __init__(self, base: _Derived):
        self.base = base
        self.vectors: VectorIndex | None = None  # copied at the first change, so a no-op ingest copies nothing

    def apply(self, removed: list[int], added: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Remove and add chunk vectors in the copy, never in the state readers hold."""
        if self.vectors is None:
            self.vectors = self.base.vectors.copy()
        self.vectors.remove(removed)
        for ids, vectors in added:
            self.vectors.add(ids, vectors)


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
            with exclusive_lock(path, name):  # two creators at once: one creates, the other opens it
                if not manifest_path.exists():
                    archive = cls(path, shared_embedder(model), chunking or ChunkSettings(), fusion or FusionSettings())
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

    def _write_manifest(self, derived_generation: int | None = None, vectors: VectorIndex | None = None) -> None:
        store = self.store
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": self.embedder.name,
            "model_fingerprint": self.embedder.fingerprint,
            "dimension": self.embedder.dimension,
            "chunker": {"target_tokens": self.chunking.target_tokens, "overlap_tokens": self.chunking.overlap_tokens,
                        "tokenizer": "cl100k_base"},
            "index_type": vectors.kind if vectors is not None else "flat-ip",
            "index_params": vectors.params if vectors is not None else {"metric": "inner_product"},
            "generation": store.generation,
            "derived_generation": derived_generation,
            "reader": reader_identity(),
            "counts": {"articles": store.count("articles"), "chunks": store.count("chunks"),
                       "sentences": store.count("sentences")},
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        tmp = self.path / f".manifest.json.{os.getpid()}-{threading.get_ident()}.tmp"  # writers never share it
        with open(tmp, "w") as fh:
            fh.write(json.dumps(manifest, indent=2))
            fh.flush()
            os.fsync(fh.fileno())  # the manifest is needed to open the index: never a torn one
        os.replace(tmp, self.path / "manifest.json")

    # --- derived files (FAISS, BM25) ---------------------------------------------------------
    def _derived_dir(self, generation: int) -> Path:
        return self.path / f"derived-{generation}"

    def derived(self) -> _Derived:
        """The last complete FAISS and BM25 state, never a half-written one.

        When SQLite has moved on it is reloaded, unless a writer (in this process or another) holds
        the lock: readers then keep answering from the state they have until the writer is done.
        """
        current = self._derived
        if current is not None and (current.generation == self.store.generation or self._writer_busy()):
            return current
        return self._refresh()

    def _refresh(self, locked: bool = False) -> _Derived:
        """Bring the state up to SQLite's generation; `locked`: the caller holds the write lock."""
        with self._reload_lock:
            current = self._derived
            if current is None or current.generation != self.store.generation:
                self._derived = self._load_or_rebuild(locked)
            return self._derived

    def _load_or_rebuild(self, locked: bool) -> _Derived:
        """The published files for SQLite's generation, else (a crash between commit and publish, or
        files removed under us by a newer writer) a rebuild from SQLite, published when no writer is busy."""
        generation = self.store.generation
        folder = self._derived_dir(generation)
        if (folder / "complete").exists():
            try:
                return _Derived(generation, VectorIndex.load(folder / "vectors.faiss"), LexicalIndex.load(folder / "bm25"))
            except (OSError, RuntimeError, ValueError, EOFError):
                pass  # replaced by a newer writer while we looked, or damaged on disk: rebuild
        derived = self._rebuild()
        if locked:
            self._publish(derived)
            return derived
        try:
            with self._write_lock(wait=False):
                if self.store.generation == derived.generation:
                    self._publish(derived)
        except IndexLocked:
            pass  # a writer is busy; it publishes its own generation
        return derived

    def _rebuild(self) -> _Derived:
        """FAISS and BM25 from one SQLite read snapshot, stamped with that snapshot's generation."""
        conn = self.store.connect()
        conn.execute("BEGIN")  # one snapshot: a writer committing meanwhile cannot split vectors from texts
        try:
            generation = self.store.generation
            vectors = VectorIndex.for_size(self.embedder.dimension, *self._training_sample())
            for ids, vecs in self.store.iter_chunk_vectors():
                vectors.add(ids, vecs)
            rows = list(self.store.iter_chunk_texts())
        finally:
            conn.execute("COMMIT")
        lexical = LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows])
        return _Derived(generation, vectors, lexical)

    def _training_sample(self) -> tuple[int, np.ndarray | None]:
        """The chunk count and, when it calls for an approximate index, an even sample of stored vectors
        (one pass, bounded memory) to train it on."""
        count = self.store.count("chunks")
        if count < APPROXIMATE_FROM:
            return count, None
        step = max(count // sample_size(count), 1)
        picked = [vecs[::step] for _, vecs in self.store.iter_chunk_vectors(batch=step * 1000)]
        return count, np.vstack(picked)

    def _publish(self, derived: _Derived) -> None:
        """Write derived files beside the old ones, switch by rename, then drop the old ones.

        Runs only under the write lock, so any other temporary folder is a dead writer's leftover.
        """
        for stale in self.path.glob(".tmp-derived-*"):
            shutil.rmtree(stale, ignore_errors=True)
        folder = self._derived_dir(derived.generation)
        tmp = self.path / f".tmp-derived-{derived.generation}-{os.getpid()}"
        tmp.mkdir()
        derived.vectors.save(tmp / "vectors.faiss")
        derived.lexical.save(tmp / "bm25")
        (tmp / "complete").write_text(str(derived.generation))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        for old in self.path.glob("derived-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        self._write_manifest(derived.generation, derived.vectors)

    def _write_lock(self, wait: bool = True):
        """One writer at a time, across threads and processes."""
        return exclusive_lock(self.path, self.name, wait)

    def _writer_busy(self) -> bool:
        """Whether a writer holds the lock now: a shared, non-blocking probe that never waits."""
        with open(self.path / ".write.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing the file drops the shared lock

    # --- writes ------------------------------------------------------------------------------
    def ingest(
        self,
        items: Iterable[Article | LoadFailure],
        progress: Callable[[int], None] | None = None,
        prepare_batches: "BatchPreparer | None" = None,
    ) -> IngestReport:
        """Add, replace or skip each article; commit in batches; publish derived files once.

        Readers keep the last complete state until the end, when the new one is swapped in whole.
        Each batch is durable once committed; after a crash the index opens with those batches.
        `prepare_batches` turns the stream of to-do batches into prepared batches, in order: by
        default `_prepare` in this process; rag.distributed passes one that runs it on Ray workers.
        """
        report = IngestReport()
        started = time.perf_counter()
        with self._write_lock():
            pending = _Pending(self._refresh(locked=True))
            prepare = prepare_batches or (lambda batches, rep: (self._prepare(b, rep) for b in batches))
            for prepared in prepare(self._todo_batches(items, report, progress), report):
                self._commit_batch(prepared, pending, report, progress)
            if pending.vectors is not None:
                self._finish_write(pending)
        report.seconds = time.perf_counter() - started
        return report

    def _todo_batches(self, items: Iterable[Article | LoadFailure], report: IngestReport,
                      progress: Callable[[int], None] | None) -> Iterator[list[Article]]:
        """Batches of articles that are new or changed; failures and unchanged ones go to the report."""
        batch: list[Article] = []
        given: dict[str, str] = {}  # stored id -> the id the source gave: the stored owner, else the first here
        for item in items:
            if not isinstance(item, LoadFailure) and item.id not in given:
                given.update(self.store.given_ids([item.id]))
            if not isinstance(item, LoadFailure) and given.get(item.id, item.given_id) != item.given_id:
                # "a b" and "a?b" both clean to "a-b": an article never lands on another given id's place
                item = LoadFailure(item.where, f"id {item.given_id!r} would be stored as {item.id!r}, which "
                                   f"{given[item.id]!r} already took; give distinct ids (or delete {item.id!r} first)")
            if isinstance(item, LoadFailure):
                report.failed.append(item)
                if progress:
                    progress(1)
                continue
            if item.id in given:  # two sources with one id: the later wins, within one ingest
                batch = [a for a in batch if a.id != item.id]
            given[item.id] = item.given_id
            batch.append(item)
            if len(batch) >= INGEST_BATCH:
                yield self._changed(batch, report, progress)
                batch = []
        if batch:
            yield self._changed(batch, report, progress)

    def _changed(self, batch: list[Article], report: IngestReport,
                 progress: Callable[[int], None] | None) -> list[Article]:
        """The articles of a batch whose content differs from what is stored."""
        existing = self.store.content_hashes(a.id for a in batch)
        unchanged = [a.id for a in batch if existing.get(a.id) == a.content_hash]
        report.unchanged.extend(unchanged)
        if progress and unchanged:
            progress(len(unchanged))
        return [a for a in batch if existing.get(a.id) != a.content_hash]

    def _commit_batch(self, prepared: list[PreparedArticle], pending: _Pending, report: IngestReport,
                      progress: Callable[[int], None] | None) -> None:
        """Commit one prepared batch in one SQLite transaction; `progress` hears of it once committed."""
        if not prepared:
            return
        existing = self.store.content_hashes(p.article.id for p in prepared)
        new_ids, removed = self.store.write(prepared, [])
        pending.apply(removed, [(np.asarray(new_ids[p.article.id], dtype=np.int64), p.chunk_vectors) for p in prepared])
        for p in prepared:
            (report.replaced if p.article.id in existing else report.added).append(p.article.id)
        if progress:
            progress(len(prepared))

    def _prepare(self, articles: list[Article], report: IngestReport) -> list[PreparedArticle]:
        """Chunk, split sentences, find dates, and embed (reusing any vector already computed)."""
        limit = self.embedder.max_tokens
        counted: dict[str, int] = {}

        def model_tokens(text: str) -> int:  # each input is tokenized once, however often it is asked about
            if text not in counted:
                counted[text] = self.embedder.count_model_tokens(text)
            return counted[text]

        plans = []
        for a in articles:
            fits = lambda t, title=a.title: model_tokens(embed_input(title, t)) <= limit
            chunks = chunk_text(a.id, a.text, self.chunking, fits)
            chunk_inputs = [embed_input(a.title, c.text) for c in chunks]
            sentences = split_sentences(a.text)
            sentence_inputs = [a.text[s:e] for s, e in sentences]
            dates = [
                [{"text": m.text, "start": s + m.start, "end": s + m.end, "resolved": m.resolved,
                  "approximate": m.approximate} for m in find_dates(a.text[s:e], a.date)]
                for s, e in sentences
            ]
            report.truncated_chunks += sum(model_tokens(t) > limit for t in chunk_inputs)
            plans.append((a, chunks, chunk_inputs, sentences, sentence_inputs, dates))
        chunk_vecs, sent_vecs = self._embed([t for p in plans for t in p[2]], [t for p in plans for t in p[4]])
        out, ci, si = [], 0, 0
        for a, chunks, chunk_inputs, sentences, sentence_inputs, dates in plans:
            out.append(PreparedArticle(
                a, chunks, [embed_hash(t) for t in chunk_inputs], chunk_vecs[ci: ci + len(chunks)],
                sentences, [embed_hash(t) for t in sentence_inputs], sent_vecs[si: si + len(sentences)], dates))
            ci += len(chunks)
            si += len(sentences)
            report.chunks += len(chunks)
        return out

    def _embed(self, chunk_texts: list[str], sentence_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of chunk and sentence inputs, reusing any stored vector of the same input; what is
        new is encoded once, in one call over both kinds (the model sorts it by length: less padding)."""
        chunk_hashes, sentence_hashes = [embed_hash(t) for t in chunk_texts], [embed_hash(t) for t in sentence_texts]
        known = {**self.store.cached_vectors("chunks", chunk_hashes),
                 **self.store.cached_vectors("sentences", sentence_hashes)}
        by_hash = dict(zip(chunk_hashes + sentence_hashes, chunk_texts + sentence_texts))
        missing = [h for h in by_hash if h not in known]
        if missing:
            known.update(zip(missing, self.embedder.encode([by_hash[h] for h in missing])))
        stack = lambda hashes: (np.vstack([known[h] for h in hashes]) if hashes
                                else np.zeros((0, self.embedder.dimension), dtype=np.float32))
        return stack(chunk_hashes), stack(sentence_hashes)

    def _finish_write(self, pending: _Pending) -> None:
        """BM25 for the committed state plus the writer's FAISS copy: swapped in for readers, then published."""
        rows = list(self.store.iter_chunk_texts())
        lexical = LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows])
        derived = _Derived(self.store.generation, pending.vectors.fitted(), lexical)
        self._derived = derived  # one assignment: readers see the old state or the new one, never a mix
        self._publish(derived)

    def delete(self, article_id: str) -> None:
        """Remove an article with its chunks from SQLite, FAISS and BM25, in one transaction."""
        with self._write_lock():
            pending = _Pending(self._refresh(locked=True))
            if self.store.get_article(article_id) is None:
                raise ArticleNotFound(f"no article {article_id!r} in index {self.name!r}")
            _, removed = self.store.write([], [article_id])
            pending.apply(removed, [])
            self._finish_write(pending)

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

    def _scope(self, question: str, filters: Filters | None, as_of: date) -> tuple[np.ndarray | None, dict | None]:
        """The allowed chunk ids, narrowed by a time the question names unless the caller set dates
        (`time_scope`: undated articles kept, the range dropped when no dated article falls in it)."""
        found = time_in_question(question, filters, as_of)
        if found is None:
            return self._allowed(filters), None
        scope, block = time_scope(*found, filters, applied=bool(len(self._allowed(found[1]))))
        return self._allowed(scope), block

    def _contexts(self, chunk_ids: list[int]) -> dict[int, ChunkContext]:
        """Chunk text and vector, stored sentences and their vectors, for the second stage."""
        chunks = self.store.chunks_by_id(chunk_ids)
        chunk_vectors = self.store.chunk_vectors(chunk_ids)
        articles = self.store.get_articles(c.article_id for c in chunks.values())
        spans: dict[str, list] = {}
        for c in chunks.values():
            spans.setdefault(c.article_id, []).append(c)
        out = {}
        for article_id, parts in spans.items():  # one read per article, however many of its chunks
            stored = self.store.sentences_in(article_id, min(c.start for c in parts), max(c.end for c in parts),
                                             details=False)
            text = articles[article_id].text
            for c in parts:
                rows = [r for r in stored if r.start >= c.start and r.end <= c.end]
                vectors = np.vstack([r.vector for r in rows]) if rows else np.zeros((0, self.embedder.dimension), np.float32)
                out[c.id] = ChunkContext(articles[article_id].title, text[c.start:c.end],
                                         [text[r.start:r.end] for r in rows], vectors, chunk_vectors.get(c.id))
        return out

    def search(
        self, question: str, k: int = 5, mode: str | None = None, filters: Filters | None = None,
        recency: str | None = None, as_of: str | None = None,
    ) -> tuple[list[answering.Passage], dict, dict, np.ndarray]:
        """Passages for a question, with the retrieval block, per-stage timings and the query vector.

        `as_of` (ISO date, default today) anchors times named in the question and the recency boost."""
        mode, recency, today = check_mode(mode), check_recency(recency), parse_as_of(as_of)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        derived = self.derived()
        if not len(derived.vectors):
            raise EmptyIndex(f"index {self.name!r} holds no articles yet; ingest some with `newsrag ingest PATH`")
        allowed, time_filter = self._scope(question, filters, today)
        t1 = time.perf_counter()
        query_vector = self.embedder.encode_query(question)
        t2 = time.perf_counter()
        hits = retrieve(mode, k * CANDIDATES_PER_PASSAGE, query_vector, question, derived.vectors, derived.lexical,
                        allowed, self.fusion, self._contexts)
        t3 = time.perf_counter()
        chunks = self.store.chunks_by_id(h.chunk_id for h in hits)
        articles = self.store.get_articles(c.article_id for c in chunks.values())
        if recency == "prefer_recent":
            dates = {cid: articles[c.article_id].date for cid, c in chunks.items() if c.article_id in articles}
            hits = prefer_recent(hits, dates, today, self.fusion)
        passages = answering.build_passages(hits, chunks, articles, k)
        t4 = time.perf_counter()
        timings.update(filter=(t1 - t0) * 1e3, embed=(t2 - t1) * 1e3, retrieve=(t3 - t2) * 1e3, passages=(t4 - t3) * 1e3)
        retrieval = {"mode": mode, "k": k, "candidates": len(hits), "filters": (filters.describe() if filters else {}),
                     "time_filter": time_filter, "as_of": today.isoformat(), "recency": recency}
        if mode == "hybrid":
            retrieval["fusion"] = self.fusion.describe()
        if recency == "prefer_recent":
            retrieval["recency_boost"] = {"max_share_of_score_range": self.fusion.recency_weight,
                                          "half_life_days": self.fusion.recency_half_life_days}
        return passages, retrieval, timings, query_vector

    def answer(self, question: str, k: int = 5, mode: str | None = None, filters: Filters | None = None,
               recency: str | None = None, as_of: str | None = None) -> dict:
        """The full answer document (the JSON the endpoint and `ask --json` return)."""
        started = time.perf_counter()
        passages, retrieval, timings, query_vector = self.search(question, k, mode, filters, recency, as_of)
        t0 = time.perf_counter()
        reader = load_reader()
        answer, reason = answering.choose_answer(
            question, passages, lambda p: self.store.sentences_in(p.article.id, p.start, p.end), reader)
        timings["answer"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - started) * 1e3
        no_answer = None if answer else {"reason": reason}
        return {
            "question": question,
            "answer": answer.to_json() if answer else None,
            "no_answer": no_answer,
            "passages": [p.to_json() for p in passages],
            "retrieval": retrieval,
            "reader": reader.identity,
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
        """Problems found when FAISS, BM25 and SQLite are compared (empty when they agree).

        Waits for a running writer, so it compares settled states.
        """
        with self._write_lock():
            derived = self._refresh(locked=True)
            sql_ids = {cid for ids, _ in self.store.iter_chunk_vectors() for cid in ids.tolist()}
            conn = self.store.connect()
            orphans = conn.execute(
                "SELECT count(*) FROM chunks c LEFT JOIN articles a ON a.id = c.article_id WHERE a.id IS NULL").fetchone()[0]
            chunkless = conn.execute(
                "SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.article_id = a.id)"
            ).fetchone()[0]
        faiss_all = derived.vectors.ids().tolist()
        faiss_ids = set(faiss_all)
        bm25_ids = set(derived.lexical.ids.tolist())
        problems = []
        if faiss_ids != sql_ids:
            problems.append(f"FAISS and SQLite differ: {len(faiss_ids - sql_ids)} ids only in FAISS, {len(sql_ids - faiss_ids)} only in SQLite")
        if bm25_ids != sql_ids:
            problems.append(f"BM25 and SQLite differ: {len(bm25_ids - sql_ids)} ids only in BM25, {len(sql_ids - bm25_ids)} only in SQLite")
        if len(faiss_all) != len(faiss_ids):
            problems.append(f"FAISS holds {len(faiss_all) - len(faiss_ids)} duplicate ids")
        if orphans:
            problems.append(f"{orphans} chunks have no article")
        if chunkless:
            problems.append(f"{chunkless} articles have no chunks (a half-written article)")
        return problems

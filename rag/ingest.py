"""Ingest: which articles are new or changed (`todo_batches`), and turning articles into what the
store keeps (`Preparer`: chunks, sentences, dates, vectors). The Ray workers run the same `Preparer`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from .articles import Article, LoadFailure
from .chunking import ChunkSettings, chunk_text, split_sentences
from .dates import find_dates
from .embedding import Embedder
from .generations import PendingWrite
from .store import PreparedArticle, Store

INGEST_BATCH = 64  # articles per SQLite transaction: bounded memory, progress that survives a crash
Progress = Callable[[int], None] | None


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

    def add(self, other: "IngestReport") -> None:
        """Count another report's articles and chunks in this one (shards, workers)."""
        for part in ("added", "unchanged", "replaced", "failed"):
            getattr(self, part).extend(getattr(other, part))
        self.chunks += other.chunks
        self.truncated_chunks += other.truncated_chunks
        self.seconds += other.seconds


BatchPreparer = Callable[[Iterator[list[Article]], IngestReport], Iterator[list[PreparedArticle]]]


def embed_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_input(title: str, chunk: str) -> str:
    """What the model reads for a chunk: the title first, since it helps the small model."""
    return f"{title}\n{chunk}" if title and not chunk.startswith(title) else chunk


def todo_batches(store: Store, items: Iterable[Article | LoadFailure], report: IngestReport,
                 progress: Progress) -> Iterator[list[Article]]:
    """Batches of articles that are new or changed; failures and unchanged ones go to the report."""
    batch: list[Article] = []
    given: dict[str, str] = {}  # stored id -> the id the source gave: the stored owner, else the first here
    for item in items:
        if not isinstance(item, LoadFailure) and item.id not in given:
            given.update(store.given_ids([item.id]))
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
            yield _changed(store, batch, report, progress)
            batch = []
    if batch:
        yield _changed(store, batch, report, progress)


def _changed(store: Store, batch: list[Article], report: IngestReport, progress: Progress) -> list[Article]:
    """The articles of a batch whose content differs from what is stored."""
    existing = store.content_hashes(a.id for a in batch)
    unchanged = [a.id for a in batch if existing.get(a.id) == a.content_hash]
    report.unchanged.extend(unchanged)
    if progress and unchanged:
        progress(len(unchanged))
    return [a for a in batch if existing.get(a.id) != a.content_hash]


def commit(store: Store, prepared: list[PreparedArticle], pending: PendingWrite, report: IngestReport,
           progress: Progress) -> None:
    """Commit one prepared batch in one SQLite transaction and note what it changed for the segments
    the write publishes at its end; `progress` hears of it once committed."""
    if not prepared:
        return
    existing = store.content_hashes(p.article.id for p in prepared)
    new_ids, removed = store.write(prepared, [])
    pending.apply(removed, [cid for p in prepared for cid in new_ids[p.article.id]])
    for p in prepared:
        (report.replaced if p.article.id in existing else report.added).append(p.article.id)
    if progress:
        progress(len(prepared))


class Preparer:
    """Chunk, split sentences, find dates, and embed; `store` (when given) lends the vectors it
    already holds for identical inputs, so re-ingesting an edited article encodes only what changed."""

    def __init__(self, embedder: Embedder, chunking: ChunkSettings, store: Store | None = None):
        self.embedder = embedder
        self.chunking = chunking
        self.store = store

    def prepare(self, articles: list[Article], report: IngestReport) -> list[PreparedArticle]:
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
        known = {}
        if self.store is not None:
            known = {**self.store.cached_vectors("chunks", chunk_hashes),
                     **self.store.cached_vectors("sentences", sentence_hashes)}
        by_hash = dict(zip(chunk_hashes + sentence_hashes, chunk_texts + sentence_texts))
        missing = [h for h in by_hash if h not in known]
        if missing:
            known.update(zip(missing, self.embedder.encode([by_hash[h] for h in missing])))
        stack = lambda hashes: (np.vstack([known[h] for h in hashes]) if hashes
                                else np.zeros((0, self.embedder.dimension), dtype=np.float32))
        return stack(chunk_hashes), stack(sentence_hashes)

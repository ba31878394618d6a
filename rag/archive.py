"""`Archive`: the one object the CLI, the API and the evaluation harness use for an index. It only
composes: the store (rag/store.py), the folder's generations (rag/generations.py), the ingest
preparer (rag/ingest.py), and the search pipeline and answer stage (rag/search.py)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from .articles import Article, LoadFailure
from .embedding import shared_embedder
from .errors import ArticleNotFound, IndexLocked, IndexMismatch, IndexNotFound
from .generations import DEFAULT_INDEX, READS, Generations, check_index_name, exclusive_lock, index_root
from .ingest import BatchPreparer, IngestReport, Preparer, Progress, commit, todo_batches
from .query import Query
from .reader import load_reader, reader_identity
from .search import SearchPipeline, SearchResult
from .settings import Settings
from .segments import Derived
from .source import LocalSource
from .store import COUNTED, Store

class Archive:
    """An opened index: ingest, delete, search, answer, and read articles."""

    def __init__(self, path: Path, model: str | None, settings: Settings):
        self.path, self.name, self.settings = path, path.name, settings
        self.embedder = shared_embedder(model)
        self.store = Store(path / "meta.sqlite")
        self.generations = Generations(path, self.store, self.embedder, settings)
        self.source = LocalSource(self.store, self.generations.derived, self.embedder, settings.fusion.rescore)
        self.pipeline = SearchPipeline([self.source], settings.fusion, f"index {self.name!r} holds no articles yet; "
                                       f"ingest some with `newsrag ingest PATH`")
        self.preparer = Preparer(self.embedder, settings.chunking, self.store)

    @classmethod
    def open(cls, name: str = DEFAULT_INDEX, index_dir: str | os.PathLike | None = None, create: bool = False,
             model: str | None = None, settings: Settings | None = None) -> "Archive":
        """Open `index_dir/name`; with `create`, make it. Checks the format, the model and the settings
        that shape the stored index against the manifest (`settings` default: the environment's)."""
        path = index_root(index_dir) / check_index_name(name)
        if not (path / "manifest.json").exists():
            if not create:
                raise IndexNotFound(f"no index named {name!r} in {path.parent}; build one with `newsrag ingest PATH --index {name}`")
            path.mkdir(parents=True, exist_ok=True)
            with exclusive_lock(path, name):  # two creators at once: one creates, the other opens it
                if not (path / "manifest.json").exists():
                    archive = cls(path, model, settings or Settings.from_env())
                    archive.generations.write_manifest()
                    return archive
        return cls._reopen(path, model, settings)

    @classmethod
    def _reopen(cls, path: Path, model: str | None, settings: Settings | None) -> "Archive":
        name, manifest = path.name, Generations.read_manifest(path)
        if manifest.get("format_version") not in READS:
            raise IndexMismatch(
                f"index {name!r} has format {manifest.get('format_version')}, this newsrag reads formats {READS}; "
                f"re-ingest the articles into a new index")
        wanted = model or os.environ.get("NEWSRAG_MODEL") or manifest["model"]
        if wanted != manifest["model"]:
            raise IndexMismatch(
                f"index {name!r} was built with model {manifest['model']!r}, not {wanted!r}; "
                f"unset NEWSRAG_MODEL or ingest into another index (--index NAME)")
        built = Settings.from_json(manifest.get("settings") or {"chunking": manifest.get("chunker")})
        settings = settings or Settings.from_env(base=replace(Settings(), chunking=built.chunking, bm25=built.bm25))
        differ = built.shaping_differences(settings)
        if differ:
            raise IndexMismatch(f"index {name!r} was built with other settings ({'; '.join(differ)}); "
                                f"unset the variables or use another index")
        archive = cls(path, manifest["model"], settings)
        archive.place_stories(wait=False)
        return archive

    def place_stories(self, wait: bool = True) -> None:
        """Give stories to articles that have none: an index made before stories (or with other story
        settings) is migrated on its first open with no writer busy, else by its next write."""
        try:
            with self.generations.write_lock(wait):
                self.store.place_unplaced()
        except IndexLocked:
            pass

    def verify_model(self) -> None:
        """Fail clearly if the model's weights changed since the index was built."""
        manifest = self.manifest()
        if manifest.get("model_fingerprint") and manifest["model_fingerprint"] != self.embedder.fingerprint:
            raise IndexMismatch(
                f"the weights of model {self.embedder.name!r} differ from those index {self.name!r} was built with; "
                f"re-ingest into a new index")

    def manifest(self) -> dict:
        return self.generations.manifest()

    def derived(self) -> Derived:
        return self.generations.derived()

    # --- writes ------------------------------------------------------------------------------
    def ingest(self, items: Iterable[Article | LoadFailure], progress: Progress = None,
               prepare_batches: BatchPreparer | None = None, merge: bool = True) -> IngestReport:
        """Add, replace or skip each article; commit in batches; publish one new segment at the end.

        Readers keep the last complete set of segments until the end, when the new one is swapped in
        whole. Each batch is durable once committed; after a crash the index opens with those batches.
        `prepare_batches` turns the stream of to-do batches into prepared batches, in order: by
        default this process's `Preparer`; rag.distributed passes one that runs it on Ray workers.
        Tiered merges then run in the background (`wait_for_merges`), unless `merge` is false.
        """
        report, started = IngestReport(), time.perf_counter()
        prepare = prepare_batches or (lambda batches, rep: (self.preparer.prepare(b, rep) for b in batches))
        with self.generations.write_lock():
            self.store.place_unplaced()
            pending = self.generations.begin_write()
            for prepared in prepare(todo_batches(self.store, items, report, progress), report):
                commit(self.store, prepared, pending, report, progress)
            if pending.changed:
                self.generations.finish_write(pending)
        if pending.changed and merge:
            self.generations.merge_soon()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, article_id: str, merge: bool = True) -> None:
        """Remove an article with its chunks from SQLite in one transaction; its chunks become deleted
        ids of the segments that hold them (the model is never loaded). Then as `ingest`."""
        with self.generations.write_lock():
            self.store.place_unplaced()
            pending = self.generations.begin_write()
            self.get_article(article_id)
            _, removed = self.store.write([], [article_id])
            pending.apply(removed, [])
            self.generations.finish_write(pending)
        if merge:
            self.generations.merge_soon()

    def optimize(self) -> dict:
        """Merge every segment into one without deleted chunks (`newsrag optimize`); waits for any
        running merge first. Readers and writers go on meanwhile."""
        before = len(self.derived().segments)
        self.generations.wait_for_merges()
        started = time.perf_counter()
        self.generations.merge(everything=True)
        derived = self.derived()
        return {"segments_before": before, "segments": len(derived.segments), "chunks": len(derived.vectors),
                "seconds": round(time.perf_counter() - started, 3)}

    def wait_for_merges(self) -> None:
        """Let this process's background merges finish (a CLI command, before it exits)."""
        self.generations.wait_for_merges()

    # --- reads -------------------------------------------------------------------------------
    def get_article(self, article_id: str) -> Article:
        article = self.store.get_article(article_id)
        if article is None:
            raise ArticleNotFound(f"no article {article_id!r} in index {self.name!r}")
        return article

    def get_articles(self, ids: list[str]) -> dict[str, Article]:
        return self.store.get_articles(ids)

    def list_articles(self, offset: int, limit: int) -> list[dict]:
        return self.store.list_articles(offset, limit)

    def count(self, what: str) -> int:
        """How many articles, chunks or sentences the index holds."""
        return self.store.count(what)

    def sources(self) -> dict[str, int]:
        return self.store.sources()

    def date_range(self) -> tuple[str | None, str | None]:
        return self.store.date_range()

    def search(self, query: Query) -> SearchResult:
        return self.pipeline.search(query)

    def answer(self, query: Query) -> dict:
        """The full answer document (the JSON `/answer` and `ask --json` return)."""
        directory = self.settings.answer.reader_dir
        return self.pipeline.answer(query, load_reader(directory), reader_identity(directory))

    def stats(self) -> dict:
        derived = self.derived()
        size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        built = Settings.from_json(self.manifest().get("settings") or {})
        return {"index": self.name, "path": str(self.path), "model": self.embedder.name,
                "articles": self.count("articles"), "chunks": self.count("chunks"),
                "sentences": self.count("sentences"), "date_range": list(self.date_range()), "sources": self.sources(),
                "stories": self.store.story_counts(),
                "index_type": derived.vectors.kind, "generation": derived.generation, "size_bytes": size,
                "segments": [s.entry() for s in derived.segments],
                "settings": self.settings.to_json(), "settings_differ_from_manifest": built.differences(self.settings)}

    def check(self) -> list[str]:
        """Problems found when every segment's FAISS and BM25 files are compared with SQLite (empty
        when they agree). Waits for a running writer, so it compares settled states."""
        with self.generations.write_lock():
            derived = self.generations.refresh(locked=True)
            sql_ids, orphans, chunkless = self.store.integrity()
            problems = self.store.check_stories()
            kept, counted = {t: self.store.count(t) for t in COUNTED}, self.store.recount()
        if kept != counted:
            problems.append(f"the counts kept in SQLite's meta {kept} are not the rows {counted}")
        live: list[np.ndarray] = []
        for s in derived.segments:
            faiss_ids, bm25_ids = np.sort(s.vectors.ids()), np.sort(np.asarray(s.lexical.ids))
            if not np.array_equal(faiss_ids, bm25_ids):
                problems.append(f"segment {s.name}: FAISS and BM25 hold different chunk ids")
            if len(bm25_ids) and (bm25_ids[0] < s.first or bm25_ids[-1] > s.last):
                problems.append(f"segment {s.name}: chunk ids outside its range [{s.first}, {s.last}]")
            if not np.isin(s.deleted, bm25_ids).all():
                problems.append(f"segment {s.name}: deletes chunks it does not hold")
            live.append(s.live_ids())
        ids = np.concatenate(live) if live else np.zeros(0, dtype=np.int64)
        segment_ids = set(ids.tolist())
        if segment_ids != sql_ids:
            problems.append(f"the segments and SQLite differ: {len(segment_ids - sql_ids)} ids only in the segments, "
                            f"{len(sql_ids - segment_ids)} only in SQLite")
        if len(ids) != len(segment_ids):
            problems.append(f"{len(ids) - len(segment_ids)} chunk ids are live in two segments")
        if orphans:
            problems.append(f"{orphans} chunks have no article")
        if chunkless:
            problems.append(f"{chunkless} articles have no chunks (a half-written article)")
        return problems

"""`Archive`: the one object the CLI, the API and the evaluation harness use for an index. It only
composes: the store (rag/store.py), the folder's generations (rag/generations.py), the ingest
preparer (rag/ingest.py), and the search pipeline and answer stage (rag/search.py)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from .articles import Article, LoadFailure
from .embedding import shared_embedder
from .errors import ArticleNotFound, IndexLocked, IndexMismatch, IndexNotFound
from .generations import DEFAULT_INDEX, FORMAT_VERSION, Generations, check_index_name, exclusive_lock, index_root
from .ingest import BatchPreparer, IngestReport, Preparer, Progress, commit, todo_batches
from .query import Query
from .reader import load_reader, reader_identity
from .search import SearchPipeline, SearchResult
from .settings import Settings
from .source import Derived, LocalSource
from .store import Store

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
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"index {name!r} has format {manifest.get('format_version')}, this newsrag reads {FORMAT_VERSION}; "
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
               prepare_batches: BatchPreparer | None = None) -> IngestReport:
        """Add, replace or skip each article; commit in batches; publish derived files once.

        Readers keep the last complete state until the end, when the new one is swapped in whole.
        Each batch is durable once committed; after a crash the index opens with those batches.
        `prepare_batches` turns the stream of to-do batches into prepared batches, in order: by
        default this process's `Preparer`; rag.distributed passes one that runs it on Ray workers.
        """
        report, started = IngestReport(), time.perf_counter()
        prepare = prepare_batches or (lambda batches, rep: (self.preparer.prepare(b, rep) for b in batches))
        with self.generations.write_lock():
            self.store.place_unplaced()
            pending = self.generations.begin_write()
            for prepared in prepare(todo_batches(self.store, items, report, progress), report):
                commit(self.store, prepared, pending, report, progress)
            if pending.vectors is not None:
                self.generations.finish_write(pending)
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, article_id: str) -> None:
        """Remove an article with its chunks from SQLite, FAISS and BM25, in one transaction."""
        with self.generations.write_lock():
            self.store.place_unplaced()
            pending = self.generations.begin_write()
            self.get_article(article_id)
            _, removed = self.store.write([], [article_id])
            pending.apply(removed, [])
            self.generations.finish_write(pending)

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
                "settings": self.settings.to_json(), "settings_differ_from_manifest": built.differences(self.settings)}

    def check(self) -> list[str]:
        """Problems found when FAISS, BM25 and SQLite are compared (empty when they agree).

        Waits for a running writer, so it compares settled states.
        """
        with self.generations.write_lock():
            derived = self.generations.refresh(locked=True)
            sql_ids, orphans, chunkless = self.store.integrity()
            problems = self.store.check_stories()
        faiss_all = derived.vectors.ids().tolist()
        faiss_ids, bm25_ids = set(faiss_all), set(derived.lexical.ids.tolist())
        for name, ids in (("FAISS", faiss_ids), ("BM25", bm25_ids)):
            if ids != sql_ids:
                problems.append(f"{name} and SQLite differ: {len(ids - sql_ids)} ids only in {name}, "
                                f"{len(sql_ids - ids)} only in SQLite")
        if len(faiss_all) != len(faiss_ids):
            problems.append(f"FAISS holds {len(faiss_all) - len(faiss_ids)} duplicate ids")
        if orphans:
            problems.append(f"{orphans} chunks have no article")
        if chunkless:
            problems.append(f"{chunkless} articles have no chunks (a half-written article)")
        return problems

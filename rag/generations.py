"""An index folder's generations: the manifest, the write lock, and the derived FAISS + BM25 state.

An index is a folder `indexes/<name>/`: `meta.sqlite` (the truth), `manifest.json`, and a
`derived-<generation>/` folder with the FAISS and BM25 files built from that SQLite generation.
Writes take an OS file lock, commit in SQLite, then publish new derived files; opening an index
whose derived files lag behind SQLite (a crash in between) rebuilds them, so nothing is lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from .embedding import Embedder
from .errors import IndexLocked, InvalidInput
from .lexical import LexicalIndex
from .reader import reader_identity
from .settings import Settings
from .source import Derived
from .store import Store
from .vectors import VectorIndex, sample_size

FORMAT_VERSION = 2
DEFAULT_INDEX = "default"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def index_root(index_dir: str | os.PathLike | None = None) -> Path:
    """Where indexes live: the argument, else NEWSRAG_INDEX_DIR, else ./indexes."""
    return Path(index_dir or os.environ.get("NEWSRAG_INDEX_DIR") or "indexes")


def check_index_name(name: str) -> str:
    """Index names are plain folder names: no path separators, no traversal."""
    if not _NAME_OK.match(name or ""):
        raise InvalidInput(f"invalid index name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


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


class PendingWrite:
    """A writer's private FAISS copy: readers keep the last complete state until the writer swaps it in."""

    def __init__(self, base: Derived):
        self.base = base
        self.vectors: VectorIndex | None = None  # copied at the first change, so a no-op ingest copies nothing

    def apply(self, removed: list[int], added: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Remove and add chunk vectors in the copy, never in the state readers hold."""
        if self.vectors is None:
            self.vectors = self.base.vectors.copy()
        self.vectors.remove(removed)
        for ids, vectors in added:
            self.vectors.add(ids, vectors)


class Generations:
    """The folder's derived state for SQLite's current generation, published whole or not at all."""

    def __init__(self, path: Path, store: Store, embedder: Embedder, settings: Settings):
        self.path = path
        self.name = path.name
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._derived: Derived | None = None
        self._reload_lock = threading.Lock()

    # --- manifest ----------------------------------------------------------------------------
    @staticmethod
    def read_manifest(path: Path) -> dict:
        return json.loads((path / "manifest.json").read_text())

    def manifest(self) -> dict:
        return self.read_manifest(self.path)

    def write_manifest(self, derived: Derived | None = None) -> None:
        """The manifest for SQLite's generation (and the derived state published for it, if any)."""
        store, vectors = self.store, derived.vectors if derived else None
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": self.embedder.name,
            "model_fingerprint": self.embedder.fingerprint,
            "dimension": self.embedder.dimension,
            "settings": self.settings.to_json(),
            "index_type": vectors.kind if vectors is not None else "flat-ip",
            "index_params": vectors.params if vectors is not None else {"metric": "inner_product"},
            "generation": store.generation,
            "derived_generation": derived.generation if derived else None,
            "reader": reader_identity(self.settings.answer.reader_dir),
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

    # --- locking -----------------------------------------------------------------------------
    def write_lock(self, wait: bool = True):
        """One writer at a time, across threads and processes."""
        return exclusive_lock(self.path, self.name, wait)

    def writer_busy(self) -> bool:
        """Whether a writer holds the lock now: a shared, non-blocking probe that never waits."""
        with open(self.path / ".write.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing the file drops the shared lock

    # --- derived state -----------------------------------------------------------------------
    def derived(self) -> Derived:
        """The last complete FAISS and BM25 state, never a half-written one.

        When SQLite has moved on it is reloaded, unless a writer (in this process or another) holds
        the lock: readers then keep answering from the state they have until the writer is done.
        """
        current = self._derived
        if current is not None and (current.generation == self.store.generation or self.writer_busy()):
            return current
        return self.refresh()

    def refresh(self, locked: bool = False) -> Derived:
        """Bring the state up to SQLite's generation; `locked`: the caller holds the write lock."""
        with self._reload_lock:
            current = self._derived
            if current is None or current.generation != self.store.generation:
                self._derived = self._load_or_rebuild(locked)
            return self._derived

    def _load_or_rebuild(self, locked: bool) -> Derived:
        """The published files for SQLite's generation, else (a crash between commit and publish, or
        files removed under us by a newer writer) a rebuild from SQLite, published when no writer is busy."""
        generation = self.store.generation
        folder = self.path / f"derived-{generation}"
        if (folder / "complete").exists():
            try:
                return Derived(generation, VectorIndex.load(folder / "vectors.faiss"), LexicalIndex.load(folder / "bm25"))
            except (OSError, RuntimeError, ValueError, EOFError):
                pass  # replaced by a newer writer while we looked, or damaged on disk: rebuild
        derived = self._rebuild()
        if locked:
            self._publish(derived)
            return derived
        try:
            with self.write_lock(wait=False):
                if self.store.generation == derived.generation:
                    self._publish(derived)
        except IndexLocked:
            pass  # a writer is busy; it publishes its own generation
        return derived

    def _lexical(self) -> LexicalIndex:
        rows = list(self.store.iter_chunk_texts())
        return LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows], self.settings.bm25.k1,
                                  self.settings.bm25.b)

    def _rebuild(self) -> Derived:
        """FAISS and BM25 from one SQLite read snapshot, stamped with that snapshot's generation."""
        conn = self.store.connect()
        conn.execute("BEGIN")  # one snapshot: a writer committing meanwhile cannot split vectors from texts
        try:
            generation = self.store.generation
            vectors = VectorIndex.for_size(self.embedder.dimension, *self._training_sample(),
                                           approximate_from=self.settings.vectors.approximate_from)
            for ids, vecs in self.store.iter_chunk_vectors():
                vectors.add(ids, vecs)
            lexical = self._lexical()
        finally:
            conn.execute("COMMIT")
        return Derived(generation, vectors, lexical)

    def _training_sample(self) -> tuple[int, np.ndarray | None]:
        """The chunk count and, when it calls for an approximate index, an even sample of stored vectors
        (one pass, bounded memory) to train it on."""
        count = self.store.count("chunks")
        if count < self.settings.vectors.approximate_from:
            return count, None
        step = max(count // sample_size(count), 1)
        picked = [vecs[::step] for _, vecs in self.store.iter_chunk_vectors(batch=step * 1000)]
        return count, np.vstack(picked)

    def _publish(self, derived: Derived) -> None:
        """Write derived files beside the old ones, switch by rename, then drop the old ones.

        Runs only under the write lock, so any other temporary folder is a dead writer's leftover.
        """
        for stale in self.path.glob(".tmp-derived-*"):
            shutil.rmtree(stale, ignore_errors=True)
        folder = self.path / f"derived-{derived.generation}"
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
        self.write_manifest(derived)

    # --- writes ------------------------------------------------------------------------------
    def begin_write(self) -> PendingWrite:
        """A private copy to change; call under `write_lock`."""
        return PendingWrite(self.refresh(locked=True))

    def finish_write(self, pending: PendingWrite) -> None:
        """BM25 for the committed state plus the writer's FAISS copy: swapped in for readers, then published."""
        derived = Derived(self.store.generation, pending.vectors.fitted(self.settings.vectors.approximate_from),
                          self._lexical())
        self._derived = derived  # one assignment: readers see the old state or the new one, never a mix
        self._publish(derived)

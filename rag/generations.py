"""An index folder's generations: the manifest, the write lock, and the segments of each generation.

An index is a folder `indexes/<name>/`: `meta.sqlite` (the truth), `manifest.json`, `segments.json`
(the segments of one SQLite generation) and `segments/` (each segment's FAISS and BM25 files,
rag/segments.py). A write takes an OS file lock, commits in SQLite, then publishes only what it
changed: one new segment for the chunks it added and new deletion files for the segments it removed
chunks from. Opening an index whose listing lags behind SQLite (a crash in between, or an index of
format 2) catches it up from SQLite, so nothing is lost. Merges rewrite neighbouring segments as one,
built without the write lock and swapped in under it, so neither readers nor writers wait for one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from .embedding import Embedder
from .errors import IndexLocked, InvalidInput
from .lexical import LexicalIndex
from .reader import reader_identity
from .segments import (Derived, Segment, load_segment, place, plan, read_listing, remove_unlisted, save_deletions,
                       save_segment, segment_name, with_deleted, write_listing)
from .settings import Settings
from .store import Store
from .vectors import VectorIndex, sample_size

FORMAT_VERSION = 3  # 3: segments (2: one derived-<generation> folder, still opened: its segments are built)
READS = (2, 3)
DEFAULT_INDEX = "default"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LOADS = 3  # tries at loading a listing whose segments a merge may remove meanwhile
log = logging.getLogger(__name__)


def index_root(index_dir: str | os.PathLike | None = None) -> Path:
    """Where indexes live: the argument, else NEWSRAG_INDEX_DIR, else ./indexes."""
    return Path(index_dir or os.environ.get("NEWSRAG_INDEX_DIR") or "indexes")


def check_index_name(name: str) -> str:
    """Index names are plain folder names: no path separators, no traversal."""
    if not _NAME_OK.match(name or ""):
        raise InvalidInput(f"invalid index name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


@contextmanager
def exclusive_lock(folder: Path, name: str, wait: bool = True, file: str = ".write.lock") -> Iterator[None]:
    """The index's `.write.lock` (fcntl.flock): one holder across threads and processes; the kernel
    releases it when a holder dies. Not waiting, a busy lock raises IndexLocked."""
    with open(folder / file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise IndexLocked(f"index {name!r} is being written by another process") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def lock_busy(folder: Path, file: str) -> bool:
    """Whether someone holds a lock file now: a shared, non-blocking probe that never waits."""
    with open(folder / file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # closing the file drops the shared lock


class PendingWrite:
    """What one write changed, gathered as its batches commit: the chunk ids it removed and the
    range of ids it added (ids only grow, so one write's new chunks are one range)."""

    def __init__(self) -> None:
        self.removed: list[int] = []
        self.first: int | None = None
        self.last: int | None = None

    def apply(self, removed: list[int], added: list[int]) -> None:
        self.removed.extend(removed)
        if added:
            self.first = min(added) if self.first is None else min(self.first, min(added))
            self.last = max(added) if self.last is None else max(self.last, max(added))

    @property
    def changed(self) -> bool:
        return bool(self.removed) or self.first is not None


class Generations:
    """The folder's segments for SQLite's current generation, published whole or not at all."""

    def __init__(self, path: Path, store: Store, embedder: Embedder, settings: Settings):
        self.path = path
        self.name = path.name
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._derived: Derived | None = None
        self._reload_lock = threading.Lock()
        self._opened: dict[str, tuple[VectorIndex, LexicalIndex]] = {}  # segment files this process maps
        self._opened_lock = threading.Lock()
        self._merger: threading.Thread | None = None
        self._merge_again = False
        self._merge_guard = threading.Lock()

    # --- manifest ----------------------------------------------------------------------------
    @staticmethod
    def read_manifest(path: Path) -> dict:
        return json.loads((path / "manifest.json").read_text())

    def manifest(self) -> dict:
        return self.read_manifest(self.path)

    def _model_identity(self) -> tuple[str, str, int]:
        """The model's name, fingerprint and dimension: the manifest's once written (they never change
        for an index), so a write that embeds nothing (a delete) never loads the model."""
        try:
            old = self.manifest()
            return old["model"], old["model_fingerprint"], int(old["dimension"])
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            return self.embedder.name, self.embedder.fingerprint, self.embedder.dimension

    @property
    def dimension(self) -> int:
        return self._model_identity()[2]

    def write_manifest(self, derived: Derived | None = None) -> None:
        """The manifest for SQLite's generation (and the segments published for it, if any)."""
        store, vectors = self.store, derived.vectors if derived else None
        model, fingerprint, dimension = self._model_identity()
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": model,
            "model_fingerprint": fingerprint,
            "dimension": dimension,
            "settings": self.settings.to_json(),
            "index_type": vectors.kind if vectors is not None else "flat-ip",
            "index_params": vectors.params if vectors is not None else {"metric": "inner_product"},
            "generation": store.generation,
            "derived_generation": derived.generation if derived else None,
            "segments": len(derived.segments) if derived else 0,
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
        """Whether a writer holds the lock now (never waits)."""
        return lock_busy(self.path, ".write.lock")

    # --- the current segments ----------------------------------------------------------------
    def derived(self) -> Derived:
        """The last complete segment set, never a half-written one.

        When SQLite has moved on it is reloaded, unless a writer (in this process or another) holds
        the lock: readers then keep answering from the set they have until the writer is done.
        """
        current = self._derived
        if current is not None and (current.generation == self.store.generation or self.writer_busy()):
            return current
        return self.refresh()

    def refresh(self, locked: bool = False) -> Derived:
        """Bring the set up to SQLite's generation; `locked`: the caller holds the write lock."""
        with self._reload_lock:
            current = self._derived
            if current is None or current.generation != self.store.generation:
                self._derived = self._load_or_catch_up(locked)
            return self._derived

    def _load(self, listing: dict) -> Derived:
        with self._opened_lock:  # a reader's refresh and the merger's publish may load at once
            segments = tuple(load_segment(self.path, entry, self._opened) for entry in listing["segments"])
            for name in set(self._opened) - {s.name for s in segments}:
                del self._opened[name]  # unmapped once no reader's set holds it
        return Derived(int(listing["generation"]), segments)

    def _published(self) -> Derived | None:
        """The listing's set when it is SQLite's generation; None when it lags (or is missing)."""
        for _ in range(_LOADS):
            listing = read_listing(self.path)
            if listing is None or listing["generation"] != self.store.generation:
                return None
            try:
                return self._load(listing)
            except (OSError, RuntimeError, ValueError, EOFError):
                continue  # a merge replaced a segment while we looked: read the new listing
        return None

    def _load_or_catch_up(self, locked: bool) -> Derived:
        """The published set for SQLite's generation, else (a crash between commit and publish, an
        index of format 2, or a writer busy since) one caught up from SQLite, published when no
        writer is busy."""
        derived = self._published()
        if derived is not None:
            return derived
        if locked:
            return self._catch_up(publish=True)
        try:
            with self.write_lock(wait=False):
                return self._published() or self._catch_up(publish=True)
        except IndexLocked:
            return self._catch_up(publish=False)  # a writer is busy; it publishes its own generation

    def _catch_up(self, publish: bool) -> Derived:
        """The listed segments with the deletions SQLite has made since, plus a segment for the
        chunks added since, all from one read snapshot; with no usable listing, one segment of
        every chunk."""
        conn = self.store.connect()
        conn.execute("BEGIN")  # one snapshot: a writer committing meanwhile cannot split vectors from texts
        try:
            generation = self.store.generation
            listing = read_listing(self.path)
            try:
                base = self._load(listing).segments if listing else ()
            except (OSError, RuntimeError, ValueError, EOFError):
                base = ()  # damaged or removed files: rebuild every segment
            live = self.store.chunk_ids_between()
            listed = np.concatenate([s.live_ids() for s in base]) if base else np.zeros(0, dtype=np.int64)
            segments, touched = with_deleted(base, np.setdiff1d(listed, live))
            covered = max((s.last for s in base), default=0)
            tail = live[live > covered]
            new = self._build(int(tail[0]), int(tail[-1]), generation, "r") if len(tail) else None
        finally:
            conn.execute("COMMIT")
        if new is not None:
            segments.append(new)
        derived = Derived(generation, tuple(segments))
        if publish:
            derived = self._publish(derived, [new] if new else [], touched)
        return derived

    def _build(self, first: int, last: int, generation: int, kind: str) -> Segment | None:
        """A segment (in memory) of the stored chunks with ids in [first, last]; None when none is
        left. The caller holds the write lock or a read snapshot, so FAISS and BM25 see one state."""
        ids = self.store.chunk_ids_between(first, last)
        if not len(ids):
            return None
        vectors = VectorIndex.for_size(self.dimension, len(ids), self._training_sample(first, last, len(ids)),
                                       approximate_from=self.settings.vectors.approximate_from)
        for part, vecs in self.store.iter_chunk_vectors(first=first, last=last):
            vectors.add(part, vecs)
        rows = list(self.store.iter_chunk_texts(first, last))
        lexical = LexicalIndex.build([r[0] for r in rows], [r[1] for r in rows], self.settings.bm25.k1,
                                     self.settings.bm25.b)
        return Segment(segment_name(first, last, generation, kind), first, last, vectors, lexical,
                       np.zeros(0, dtype=np.int64))

    def _training_sample(self, first: int, last: int, count: int) -> np.ndarray | None:
        """When `count` chunks call for an approximate index, an even sample of their stored vectors
        (one pass, bounded memory) to train it on."""
        if count < self.settings.vectors.approximate_from:
            return None
        step = max(count // sample_size(count), 1)
        picked = [vecs[::step] for _, vecs in self.store.iter_chunk_vectors(batch=step * 1000, first=first, last=last)]
        return np.vstack(picked)

    def _publish(self, derived: Derived, new: list[Segment], touched: list[str]) -> Derived:
        """Write the new segments' files and the touched segments' deletion files, then the listing
        (one rename: readers see the old set or the new one), then drop what no listing names.

        Runs only under the write lock; returns the set as read back from disk (memory-mapped, so
        processes serving one folder share its pages)."""
        for s in new:
            save_segment(self.path, s.name, s.vectors, s.lexical, staging="")
        segments = tuple(replace(s, deletions=save_deletions(self.path, s.name, s.deleted, derived.generation))
                         if s.name in touched else s for s in derived.segments)
        write_listing(self.path, derived.generation, segments)
        published = self._load(read_listing(self.path))
        self._derived = published  # one assignment: readers see the old set or the new one, never a mix
        remove_unlisted(self.path, segments, staged_too=not lock_busy(self.path, ".merge.lock"))
        for old in [*self.path.glob("derived-*"), *self.path.glob(".tmp-derived-*")]:
            shutil.rmtree(old, ignore_errors=True)  # format 2's folders
        self.write_manifest(published)
        return published

    # --- writes ------------------------------------------------------------------------------
    def begin_write(self) -> PendingWrite:
        """Bring the set up to date and start recording a write; call under `write_lock`."""
        self.refresh(locked=True)
        return PendingWrite()

    def finish_write(self, pending: PendingWrite) -> None:
        """Publish what the write changed: deletions in the segments that held its removed chunks,
        and one new segment of the chunks it added."""
        base = self._derived
        generation = self.store.generation
        segments, touched = with_deleted(base.segments, np.unique(np.asarray(pending.removed, dtype=np.int64)))
        new = None if pending.first is None else self._build(pending.first, pending.last, generation, "w")
        if new is not None:
            segments.append(new)
        self._publish(Derived(generation, tuple(segments)), [new] if new else [], touched)

    # --- merges --------------------------------------------------------------------------------
    def merge(self, everything: bool = False) -> bool:
        """Merge one run of neighbouring segments, or rewrite one mostly deleted (`everything`: all
        of them, dropping deleted chunks); False when there was nothing to merge or another process
        is merging.

        The merged segment is built from SQLite without the write lock (readers and writers go on),
        staged, then swapped in under the lock with the deletions made meanwhile."""
        try:
            with exclusive_lock(self.path, self.name, wait=everything, file=".merge.lock"):
                return self._merge(everything)
        except IndexLocked:
            return False

    def _merge(self, everything: bool) -> bool:
        base = self.derived().segments  # a busy writer's generation is merged next round
        if everything:
            span = (0, len(base)) if len(base) > 1 or any(len(s.deleted) for s in base) else None
        else:
            span = plan(base)
        if span is None:
            return False
        run = base[span[0]: span[1]]
        first, last = run[0].first, run[-1].last
        conn = self.store.connect()
        conn.execute("BEGIN")  # one snapshot: a delete meanwhile cannot split its vectors from its texts
        try:
            built = self._build(first, last, self.store.generation, "m")
        finally:
            conn.execute("COMMIT")
        staged = save_segment(self.path, built.name, built.vectors, built.lexical, ".merging-") if built else None
        with self.write_lock():
            current = self.refresh(locked=True).segments
            names = [s.name for s in current]
            wanted = [s.name for s in run]
            at = next((i for i in range(len(names)) if names[i: i + len(wanted)] == wanted), None)
            if at is None or (built is not None and built.name in names):  # a race: leave it for the next round
                if staged:
                    shutil.rmtree(staged, ignore_errors=True)
                return False
            merged, touched = [], []
            if built is not None:
                place(self.path, staged, built.name)
                gone = np.setdiff1d(built.lexical.ids, self.store.chunk_ids_between(first, last))
                merged = [built.without(gone, None)] if len(gone) < len(built.lexical.ids) else []
                touched = [built.name] if len(gone) else []
            segments = (*current[:at], *merged, *current[at + len(wanted):])
            self._publish(Derived(self.store.generation, segments), [], touched)
        return True

    def merge_soon(self) -> None:
        """When the segments hold a run to merge, merge in a background thread until none is left
        (one thread per index); most writes leave none, and start nothing."""
        current = self._derived
        if current is None or plan(current.segments) is None:
            return
        with self._merge_guard:
            if self._merger is not None and self._merger.is_alive():
                self._merge_again = True
                return
            self._merge_again = False
            self._merger = threading.Thread(target=self._merge_loop, name=f"merge-{self.name}", daemon=True)
            self._merger.start()

    def _merge_loop(self) -> None:
        while True:
            try:
                merged = self.merge()
            except Exception:  # a merge is an optimisation: the index stays correct without it
                log.exception("merging segments of index %r failed", self.name)
                merged = False
            with self._merge_guard:
                if not merged and not self._merge_again:
                    return
                self._merge_again = False

    def wait_for_merges(self) -> None:
        """Block until this process's background merges are done (a CLI command before it exits)."""
        merger = self._merger
        if merger is not None:
            merger.join()

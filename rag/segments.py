"""Segments: an index's FAISS and BM25 files cut into immutable pieces, so a write costs what it adds.

A segment holds the chunks of one range of chunk ids `[first, last]` that were live when it was
sealed: its own FAISS file and bm25s folder, never edited once published. A write seals one new
segment for the chunks it added and records the chunks it removed as their segment's deleted ids (a
new small file, never an edit); a merge rewrites adjacent segments as one, from SQLite. Chunk ids
only grow (SQLite AUTOINCREMENT), so segments' ranges never overlap and a merge of neighbours is a
range again. `segments.json` lists the segments (and deletion files) of one SQLite generation and is
replaced by rename, so a reader always loads one consistent set.

Many segments search as one index: BM25 scores every segment under the summed statistics of the live
chunks (the shards' arithmetic, `CorpusStats` in rag/lexical.py), so each score is bit for bit the
one a single index of the same chunks gives; exact (flat) dense searches merge exactly by score.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .lexical import CorpusStats, LexicalIndex
from .terms import TermWeights
from .vectors import VectorIndex

LISTING = "segments.json"
FOLDER = "segments"
MERGE_FACTOR = 8  # a run of this many neighbouring segments of one size tier is merged into one
TIER_FLOOR = 256  # chunks: segments below this many live chunks are all of the lowest tier


@dataclass(frozen=True)
class Segment:
    """One sealed segment: FAISS and BM25 over chunk ids in `[first, last]`, and the ids deleted
    since it was sealed (`deleted`, sorted; read from the file `deletions` names, None when none)."""

    name: str
    first: int
    last: int
    vectors: VectorIndex
    lexical: LexicalIndex
    deleted: np.ndarray
    deletions: str | None = None

    @cached_property
    def live(self) -> np.ndarray | None:
        """One bool per BM25 row: not deleted. None when nothing was deleted."""
        return ~np.isin(self.lexical.ids, self.deleted) if len(self.deleted) else None

    def __len__(self) -> int:
        return len(self.lexical.ids) - len(self.deleted)

    def live_ids(self) -> np.ndarray:
        ids = np.asarray(self.lexical.ids, dtype=np.int64)
        return ids if self.live is None else ids[self.live]

    def without(self, removed: np.ndarray, deletions: str | None) -> "Segment":
        """This segment with more of its chunks deleted (`removed`: chunk ids, any segment's)."""
        mine = np.intersect1d(removed, self.lexical.ids)
        return Segment(self.name, self.first, self.last, self.vectors, self.lexical,
                       np.union1d(self.deleted, mine).astype(np.int64), deletions)

    def entry(self) -> dict:
        """This segment's line in the listing."""
        return {"name": self.name, "first": self.first, "last": self.last, "chunks": len(self),
                "deleted": len(self.deleted), "deletions": self.deletions}


def with_deleted(segments: tuple[Segment, ...], removed: np.ndarray) -> tuple[list[Segment], list[str]]:
    """The segments with the chunk ids `removed` (sorted, any segment's) deleted, those left without a
    live chunk dropped, and the names of the segments that changed. Each segment looks only at the
    ids inside its range, so a write's cost does not grow with the segments' sizes."""
    kept, touched = [], []
    for s in segments:
        gone = removed[(removed >= s.first) & (removed <= s.last)]
        if len(gone):
            s = s.without(gone, None)
            touched.append(s.name)
        if len(s):
            kept.append(s)
    return kept, touched


def segment_name(first: int, last: int, generation: int, kind: str) -> str:
    """A segment's folder name: its id range, the generation it was built at, and how (w: a write,
    m: a merge, r: rebuilt from SQLite when opening)."""
    return f"{first:012d}-{last:012d}-g{generation}{kind}"


def save_segment(root: Path, name: str, vectors: VectorIndex, lexical: LexicalIndex, staging: str = ".tmp-") -> Path:
    """Write a segment's files into `segments/<staging><name>` (then renamed into place by the caller,
    or at once when `staging` is '')."""
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    tmp = folder / f"{staging or '.tmp-'}{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    vectors.save(tmp / "vectors.faiss")
    lexical.save(tmp / "bm25")
    (tmp / "complete").write_text(name)
    if staging:
        return tmp
    return place(root, tmp, name)


def place(root: Path, staged: Path, name: str) -> Path:
    """Rename a staged segment folder to its name (replacing an unlisted leftover of a dead writer)."""
    target = root / FOLDER / name
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staged, target)
    return target


def save_deletions(root: Path, name: str, deleted: np.ndarray, generation: int) -> str:
    """A segment's deleted ids as of `generation`, in a new file inside its folder."""
    file = f"deleted-{generation}.npy"
    tmp = root / FOLDER / name / f".{file}.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(deleted, dtype=np.int64))
    os.replace(tmp, root / FOLDER / name / file)
    return file


def read_listing(root: Path) -> dict | None:
    """The published listing, or None when there is none (a new index, or one of format 2)."""
    try:
        return json.loads((root / LISTING).read_text())
    except FileNotFoundError:
        return None


def write_listing(root: Path, generation: int, segments: tuple[Segment, ...]) -> None:
    """Publish the segment set of `generation`: written beside, fsynced, then renamed over the old one."""
    doc = {"generation": generation, "segments": [s.entry() for s in segments]}
    tmp = root / f".{LISTING}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(json.dumps(doc, indent=1))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / LISTING)


def load_segment(root: Path, entry: dict, opened: dict[str, tuple[VectorIndex, LexicalIndex]]) -> Segment:
    """A listed segment, its files memory-mapped (reusing `opened`, files this process already maps)."""
    name = entry["name"]
    folder = root / FOLDER / name
    if name not in opened:
        if not (folder / "complete").exists():
            raise FileNotFoundError(f"segment {name} is incomplete")
        opened[name] = (VectorIndex.load(folder / "vectors.faiss"), LexicalIndex.load(folder / "bm25"))
    vectors, lexical = opened[name]
    deleted = np.load(folder / entry["deletions"]) if entry.get("deletions") else np.zeros(0, dtype=np.int64)
    return Segment(name, int(entry["first"]), int(entry["last"]), vectors, lexical, deleted, entry.get("deletions"))


def remove_unlisted(root: Path, segments: tuple[Segment, ...], staged_too: bool) -> None:
    """Drop segment folders and deletion files the listing no longer names (under the write lock);
    `staged_too`: also a dead merger's staged folders (only when no merge runs)."""
    folder = root / FOLDER
    if not folder.exists():
        return
    listed = {s.name: s.deletions for s in segments}
    for path in folder.iterdir():
        if path.name.startswith(".merging-") and not staged_too:
            continue
        if path.name not in listed:
            shutil.rmtree(path, ignore_errors=True)
            continue
        for file in path.glob("deleted-*.npy"):
            if file.name != listed[path.name]:
                file.unlink(missing_ok=True)


def tier(size: int) -> int:
    """A segment's size tier: 0 below TIER_FLOOR live chunks, then one more per MERGE_FACTOR times."""
    return 0 if size < TIER_FLOOR else 1 + int(math.log(size / TIER_FLOOR, MERGE_FACTOR))


def plan_merge(sizes: list[int]) -> tuple[int, int] | None:
    """The newest run of at least MERGE_FACTOR neighbouring segments of one tier, as a slice
    (start, stop); None when none. Merging only neighbours keeps every segment one id range; a
    segment is rewritten about once per tier it climbs, so a chunk is copied log(N) times in all."""
    tiers = [tier(s) for s in sizes]
    stop = len(tiers)
    while stop > 0:
        start = stop - 1
        while start > 0 and tiers[start - 1] == tiers[stop - 1]:
            start -= 1
        if stop - start >= MERGE_FACTOR:
            return start, stop
        stop = start
    return None


def plan(segments: tuple[Segment, ...]) -> tuple[int, int] | None:
    """What to merge next: a tier's run (`plan_merge`), else the first segment more than half of
    whose chunks are deleted, rewritten alone (an archive that ages articles out would otherwise keep
    scoring dead rows until `newsrag optimize`)."""
    run = plan_merge([len(s) for s in segments])
    if run is not None:
        return run
    return next(((i, i + 1) for i, s in enumerate(segments) if len(s.deleted) > len(s)), None)


class SegmentedVectors:
    """The segments' FAISS indexes searched as one: each gives its top k of its live chunks, then
    the lists merge by score (exact when every segment is flat)."""

    def __init__(self, segments: tuple[Segment, ...]):
        self.segments = segments

    @property
    def kind(self) -> str:
        return "ivf-fp16" if any(s.vectors.kind == "ivf-fp16" for s in self.segments) else "flat-ip"

    @property
    def params(self) -> dict:
        """The largest segment's parameters (what the manifest records next to `index_type`)."""
        largest = max(self.segments, key=len, default=None)
        return largest.vectors.params if largest is not None else {"metric": "inner_product"}

    def __len__(self) -> int:
        return sum(len(s) for s in self.segments)

    def ids(self) -> np.ndarray:
        """Every live chunk id FAISS holds (for consistency checks)."""
        parts = [np.setdiff1d(s.vectors.ids(), s.deleted) for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine) over live chunks; `allowed` restricts to those ids before ranking."""
        allowed = None if allowed is None else np.sort(np.asarray(allowed, dtype=np.int64))
        hits: list[tuple[int, float]] = []
        for s in self.segments:
            if allowed is None:
                hits += s.vectors.search(query, k, excluded=s.deleted)
                continue
            mine = in_range(allowed, s)
            if len(s.deleted):
                mine = mine[~np.isin(mine, s.deleted)]
            if len(mine):
                hits += s.vectors.search(query, k, mine)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]


class SegmentedLexical:
    """The segments' BM25 indexes scored as one collection of their live chunks."""

    def __init__(self, segments: tuple[Segment, ...]):
        self.segments = segments

    @property
    def whole(self) -> bool:
        """One segment with nothing deleted: its own statistics are the collection's."""
        return len(self.segments) == 1 and not len(self.segments[0].deleted)

    @cached_property
    def ids(self) -> np.ndarray:
        """Every live chunk id BM25 holds, segment by segment."""
        parts = [s.live_ids() for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return sum(len(s) for s in self.segments)

    query_tokens = staticmethod(LexicalIndex.query_tokens)

    def stats(self, terms: list[str]) -> CorpusStats:
        """The live chunks' statistics for `terms`, summed over segments."""
        return sum((s.lexical.stats(terms, s.live) for s in self.segments), CorpusStats())

    def term_weights(self) -> TermWeights:
        """The collection's idf for every stem (one segment: read from its matrix; else summed, which
        costs a pass over every vocabulary; the search path asks `stats` for the question's terms)."""
        if self.whole:
            return self.segments[0].lexical.term_weights()
        vocabulary = {t for s in self.segments for t in (getattr(s.lexical.retriever, "vocab_dict", None) or {})}
        return self.stats(sorted(vocabulary)).term_weights()

    def search(self, text: str, k: int, allowed: np.ndarray | None = None,
               corpus: CorpusStats | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, score > 0) as one index of the live chunks would rank them; `corpus`:
        statistics of a larger collection (shards), else the segments' own, summed."""
        if corpus is None and self.whole:
            return self.segments[0].lexical.search(text, k, allowed)
        if corpus is None:
            corpus = self.stats(self.query_tokens(text))
        allowed = None if allowed is None else np.sort(np.asarray(allowed, dtype=np.int64))
        hits: list[tuple[int, float]] = []
        for s in self.segments:
            mine = None if allowed is None else in_range(allowed, s)
            if mine is None or len(mine):
                hits += s.lexical.search(text, k, mine, corpus, s.live)
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]


def in_range(ids: np.ndarray, segment: Segment) -> np.ndarray:
    """The ids (sorted) inside a segment's range."""
    return ids[np.searchsorted(ids, segment.first): np.searchsorted(ids, segment.last, side="right")]


@dataclass(frozen=True)
class Derived:
    """One generation's segments, searched as one index; never edited once shared (a write or merge
    makes a new one)."""

    generation: int
    segments: tuple[Segment, ...]

    @cached_property
    def vectors(self) -> SegmentedVectors:
        return SegmentedVectors(self.segments)

    @cached_property
    def lexical(self) -> SegmentedLexical:
        return SegmentedLexical(self.segments)

"""Stories: one story, many outlets. Near-duplicate articles (a wire story and its lightly edited
reprints) are found with MinHash over word shingles and grouped, so search can show each story once.

An article's signature is the MinHash of its 5-word shingles (lower-cased word runs); two articles are
near-duplicates when their signatures share an LSH band and agree on at least `threshold` of their
values (an estimate of the shingles' Jaccard similarity). A story is a connected component of that
relation: adding an article joins (or merges) the stories it matches; removing one re-checks what is
left of its story, which may split. The partition depends only on the stored signatures, so it can be
rebuilt or verified from SQLite at any time. Settings, the threshold included, are fitted and measured
in research/stories_study.py and eval/stories.py (eval/RESULTS.md, "Stories").

This module holds the logic only; rag/store.py holds the tables and implements `StoryTables`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Iterable, Protocol

import numpy as np

_WORD = re.compile(r"\w+")
_EMPTY = np.iinfo(np.uint32).max  # every value of a signature with no shingles


@dataclass(frozen=True)
class StorySettings:
    """What a signature and the duplicate test depend on; stored with an index, so a change rebuilds."""

    shingle_words: int = 5
    permutations: int = 128
    band_rows: int = 2
    threshold: float = 0.27
    seed: int = 19

    @property
    def bands(self) -> int:
        return self.permutations // self.band_rows

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Member:
    """One article of a story, as a citation lists it (`also_in`)."""

    article_id: str
    source: str | None
    date: str | None
    url: str | None

    def to_json(self) -> dict:
        return {"article_id": self.article_id, "source": self.source, "date": self.date, "url": self.url}


def lead_first(members: Iterable[Member]) -> list[Member]:
    """Members with the story's lead first: the earliest date (undated last), ties by article id."""
    return sorted(members, key=lambda m: (m.date is None, m.date or "", m.article_id))


def words(text: str) -> list[str]:
    """The word runs shingles are made of: case and punctuation never make two copies differ."""
    return _WORD.findall(text.casefold())


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads structured 64-bit values over all bits (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class MinHasher:
    """Signatures and LSH band keys for one `StorySettings` (deterministic across processes)."""

    BLOCK = 4096  # shingles hashed at a time: a 1M-char article stays within a few MB

    def __init__(self, settings: StorySettings = StorySettings()):
        if settings.permutations % settings.band_rows:
            raise ValueError("permutations must be a multiple of band_rows")
        self.settings = settings
        rng = np.random.default_rng(settings.seed)
        high = np.iinfo(np.uint64).max
        self._a = rng.integers(0, high, settings.permutations, dtype=np.uint64, endpoint=True) | np.uint64(1)
        self._b = rng.integers(0, high, settings.permutations, dtype=np.uint64, endpoint=True)
        self._position = rng.integers(0, high, settings.shingle_words, dtype=np.uint64, endpoint=True) | np.uint64(1)
        self._band = rng.integers(0, high, settings.band_rows, dtype=np.uint64, endpoint=True) | np.uint64(1)

    def shingles(self, text: str) -> np.ndarray:
        """Distinct 64-bit hashes of the text's word shingles (a text shorter than one shingle is one)."""
        found = words(text)
        if not found:
            return np.zeros(0, dtype=np.uint64)
        known = {w: _word_hash(w) for w in set(found)}
        hashed = np.fromiter((known[w] for w in found), dtype=np.uint64, count=len(found))
        k = min(self.settings.shingle_words, len(found))
        windows = np.lib.stride_tricks.sliding_window_view(hashed, k)
        with np.errstate(over="ignore"):
            combined = (windows * self._position[:k]).sum(axis=1, dtype=np.uint64)
        return np.unique(_mix(combined))

    def signature(self, text: str) -> np.ndarray:
        """The MinHash signature (uint32 per permutation); all-ones for a text with no words."""
        shingles = self.shingles(text)
        out = np.full(self.settings.permutations, _EMPTY, dtype=np.uint32)
        with np.errstate(over="ignore"):
            for i in range(0, len(shingles), self.BLOCK):
                block = shingles[i: i + self.BLOCK, None]
                values = ((block * self._a + self._b) >> np.uint64(32)).astype(np.uint32)
                np.minimum(out, values.min(axis=0), out=out)
        return out

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """One signed 64-bit key per band (SQLite's INTEGER), for one signature or a row each of a
        matrix: two signatures sharing a band's key are candidates."""
        rows = signatures.astype(np.uint64).reshape(*signatures.shape[:-1], self.settings.bands, self.settings.band_rows)
        with np.errstate(over="ignore"):
            keys = _mix((rows * self._band).sum(axis=-1, dtype=np.uint64))
        return keys.view(np.int64)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Share of equal values: an unbiased estimate of the shingles' Jaccard similarity."""
        return float(np.mean(a == b))

    def duplicates(self, signature: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Which rows of `others` are near-duplicates of `signature`: a shared band and enough agreement.
        A text without words (an all-ones signature) duplicates nothing."""
        if not len(others) or (signature == _EMPTY).all():
            return np.zeros(len(others), dtype=bool)
        equal = others == signature
        bands = equal.reshape(len(others), self.settings.bands, self.settings.band_rows).all(axis=2).any(axis=1)
        return bands & (equal.mean(axis=1) >= self.settings.threshold)

    def components(self, signatures: dict[str, np.ndarray]) -> list[list[str]]:
        """The stories among these articles: connected components of the near-duplicate relation, each
        sorted, the list ordered by first id. Only articles sharing a band bucket are compared, and a
        pair already in one component is skipped, so exact copies cost one comparison each."""
        ids = sorted(signatures)
        if not ids:
            return []
        matrix = np.vstack([signatures[i] for i in ids])
        keys = self.band_keys(matrix)
        parent = list(range(len(ids)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for band in range(self.settings.bands):
            order = np.argsort(keys[:, band], kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(keys[order, band]) != 0])
            for start, end in zip(starts, np.r_[starts[1:], len(order)]):
                bucket = order[start:end].tolist()
                for pos, i in enumerate(bucket[:-1]):
                    rest = [j for j in bucket[pos + 1:] if root(j) != root(i)]
                    if rest:
                        for j in np.asarray(rest)[self.duplicates(matrix[i], matrix[rest])]:
                            parent[root(int(j))] = root(i)
        groups: dict[int, list[str]] = {}
        for i, article_id in enumerate(ids):
            groups.setdefault(root(i), []).append(article_id)
        return sorted(groups.values())


class StoryTables(Protocol):
    """What assigning stories needs of the store, all inside the write's own transaction."""

    def neighbours(self, keys: np.ndarray) -> dict[str, int | None]:
        """Articles sharing one of these band keys (band by band) -> their story (None: not yet placed)."""

    def signatures(self, ids: list[str]) -> dict[str, np.ndarray]: ...

    def members(self, story_id: int) -> list[str]: ...

    def set_story(self, ids: list[str], story_id: int) -> None: ...

    def new_story_id(self) -> int: ...


def attach(tables: StoryTables, hasher: MinHasher, article_id: str, signature: np.ndarray) -> int:
    """Place a stored, not yet placed article: in the story it matches, merging the stories it bridges
    into the oldest (lowest id); in a new story when it matches none. Returns its story id."""
    by_story: dict[int, list[str]] = {}
    for other, story in tables.neighbours(hasher.band_keys(signature)).items():
        if other != article_id and story is not None:
            by_story.setdefault(story, []).append(other)
    matched = []
    for story, ids in sorted(by_story.items()):
        stored = tables.signatures(ids)
        if hasher.duplicates(signature, np.vstack([stored[i] for i in ids])).any():
            matched.append(story)
    story = matched[0] if matched else tables.new_story_id()
    for other in matched[1:]:
        tables.set_story(tables.members(other), story)
    tables.set_story([article_id], story)
    return story


def settle(tables: StoryTables, hasher: MinHasher, story_id: int) -> list[list[str]]:
    """After a story lost members, split what is left into its components: the largest keeps the id
    (ties: the one with the smallest article id), each other gets a new one. Returns the components."""
    parts = hasher.components(tables.signatures(tables.members(story_id)))
    parts.sort(key=lambda ids: (-len(ids), ids[0]))
    for ids in parts[1:]:
        tables.set_story(ids, tables.new_story_id())
    return parts


def place(tables: StoryTables, hasher: MinHasher, added: dict[str, np.ndarray], vacated: Iterable[int]) -> None:
    """One write's story changes: re-check the stories that lost members, then attach the new articles
    in order (so a batch's own copies find each other)."""
    for story in sorted(set(vacated)):
        settle(tables, hasher, story)
    for article_id, signature in added.items():
        attach(tables, hasher, article_id, signature)


# --- grouping search results -------------------------------------------------------------------------
@dataclass(frozen=True)
class StoryView:
    """What an index says of one article's story: the story's id there (None: not placed, a story of
    its own), its members with the lead first (the article included), and the article's signature, so a
    front can join copies that different shards hold."""

    story_id: int | None
    members: tuple[Member, ...]
    signature: np.ndarray | None = None

    def to_json(self) -> dict:
        return {"story_id": self.story_id, "members": [m.to_json() for m in self.members],
                "signature": None if self.signature is None else self.signature.tolist()}

    @classmethod
    def from_json(cls, doc: dict) -> "StoryView":
        signature = None if doc.get("signature") is None else np.asarray(doc["signature"], dtype=np.uint32)
        return cls(doc["story_id"], tuple(Member(**m) for m in doc["members"]), signature)


def group_keys(views: dict[str, StoryView], source_of: dict[str, int], hasher: MinHasher | None = None) -> dict[str, tuple]:
    """One key per article, equal for the copies of one story: its story within its source (an unplaced
    article alone); with `hasher`, stories of different sources whose articles here are near-duplicates
    join, since shards place stories apart."""
    keys = {a: (source_of[a], "story", v.story_id) if v.story_id is not None else (source_of[a], "article", a)
            for a, v in views.items()}
    parent = {k: k for k in keys.values()}

    def root(k: tuple) -> tuple:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    signed = [a for a, v in views.items() if v.signature is not None]
    if hasher is not None and len({source_of[a] for a in signed}) > 1:
        for i, a in enumerate(signed):
            others = [b for b in signed[i + 1:] if source_of[b] != source_of[a] and root(keys[b]) != root(keys[a])]
            if others:
                hits = hasher.duplicates(views[a].signature, np.vstack([views[b].signature for b in others]))
                for b in np.asarray(others)[hits]:
                    parent[root(keys[str(b)])] = root(keys[a])
    return {a: root(k) for a, k in keys.items()}


def first_of_each_story(ranked_articles: Iterable[str], keys: dict[str, tuple]) -> set[str]:
    """The articles that speak for their story: the best-ranked copy of each (an article without a
    key is its own story)."""
    first: dict[object, str] = {}
    for article_id in ranked_articles:
        first.setdefault(keys.get(article_id, article_id), article_id)
    return set(first.values())


def also_in(article_id: str, views: dict[str, StoryView], keys: dict[str, tuple]) -> list[Member]:
    """The other articles of this article's story (across joined sources), the lead first."""
    key = keys.get(article_id)
    members = {m.article_id: m for other, v in views.items() if keys.get(other) == key and key is not None
               for m in v.members}
    members.pop(article_id, None)
    return lead_first(members.values())

"""The SQLite metadata store: articles, chunks (with their vectors), sentences, and the generation.

SQLite is the source of truth and its commit is the commit point of every write: the FAISS and BM25
files are derived from it, stamped with the generation they were built from, and rebuilt on open
when a crash left them behind. Never pickle; every value is a plain column or JSON.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from . import stories
from .articles import Article
from .stories import Member, MinHasher, StorySettings, StoryView

if TYPE_CHECKING:
    from .query import Filters

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, url TEXT, source TEXT,
    text TEXT NOT NULL, content_hash TEXT NOT NULL, extra TEXT NOT NULL DEFAULT '{}',
    ingested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX IF NOT EXISTS articles_date ON articles(date);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL, embed_hash TEXT NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id, ordinal);
CREATE INDEX IF NOT EXISTS chunks_embed_hash ON chunks(embed_hash);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, embed_hash TEXT NOT NULL,
    vector BLOB NOT NULL, dates TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sentences_article ON sentences(article_id, start);
CREATE INDEX IF NOT EXISTS sentences_embed_hash ON sentences(embed_hash);
CREATE TABLE IF NOT EXISTS story_signatures (
    id INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL UNIQUE REFERENCES articles(id) ON DELETE CASCADE,
    story_id INTEGER, signature BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS story_signatures_story ON story_signatures(story_id);
CREATE TABLE IF NOT EXISTS story_bands (
    band INTEGER NOT NULL, key INTEGER NOT NULL,
    signature_id INTEGER NOT NULL REFERENCES story_signatures(id) ON DELETE CASCADE,
    PRIMARY KEY (band, key, signature_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS story_bands_signature ON story_bands(signature_id);
"""


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk: where it sits in its article (text is sliced from the article)."""

    id: int
    article_id: str
    ordinal: int
    start: int
    end: int


@dataclass(frozen=True)
class SentenceRow:
    """A stored sentence with its vector and the dates found in it (article-level offsets)."""

    id: int
    article_id: str
    start: int
    end: int
    vector: np.ndarray
    dates: list[dict]

    def to_json(self) -> dict:
        """Offsets and dates (a shard sends these to a front's answer stage; it needs no vector)."""
        return {"id": self.id, "article_id": self.article_id, "start": self.start, "end": self.end, "dates": self.dates}

    @classmethod
    def from_json(cls, doc: dict) -> "SentenceRow":
        return cls(int(doc["id"]), str(doc["article_id"]), int(doc["start"]), int(doc["end"]),
                   np.zeros(0, dtype=np.float32), list(doc["dates"]))


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


COUNTED = ("articles", "chunks", "sentences")


class Store:
    """Thread-safe access to one index's `meta.sqlite` (a connection per thread, WAL mode)."""

    def __init__(self, path: Path, story_settings: StorySettings = StorySettings()):
        self.path = path
        self._local = threading.local()
        with self.connect() as conn:
            conn.executescript(SCHEMA)
        # None: stories are off for this index (turn_off_stories); every article is then its own story
        self.stories: MinHasher | None = None if self.get_meta("stories") == "off" else MinHasher(story_settings)

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- meta -----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.connect().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str, conn: sqlite3.Connection | None = None) -> None:
        (conn or self.connect()).execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    @property
    def generation(self) -> int:
        """Bumped by every committed write; derived files are stamped with it."""
        return int(self.get_meta("generation", "0"))

    # --- articles -------------------------------------------------------------------------
    def _by_article_id(self, column: str, ids: Iterable[str]) -> dict[str, str]:
        """Article id -> `column` (an SQL expression over `articles`) for the stored ones among `ids`,
        500 ids a query (SQLite's bound-parameter limit)."""
        ids = list(ids)
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            part = ids[i: i + 500]
            marks = ",".join("?" * len(part))
            out.update(self.connect().execute(
                f"SELECT id, {column} FROM articles WHERE id IN ({marks})", part).fetchall())
        return out

    def content_hashes(self, ids: Iterable[str]) -> dict[str, str]:
        return self._by_article_id("content_hash", ids)

    def given_ids(self, ids: Iterable[str]) -> dict[str, str]:
        """Stored id -> the id its source gave, for the stored ones among `ids`: an ingest refuses to put
        an article given another id in that place (two ids that clean to one)."""
        return self._by_article_id("coalesce(json_extract(extra, '$.given_id'), id)", ids)

    def get_article(self, article_id: str) -> Article | None:
        row = self.connect().execute(
            "SELECT id, text, title, date, url, source, extra FROM articles WHERE id=?", (article_id,)
        ).fetchone()
        return _article(row) if row else None

    def get_articles(self, ids: Iterable[str]) -> dict[str, Article]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.connect().execute(
            f"SELECT id, text, title, date, url, source, extra FROM articles WHERE id IN ({marks})", ids
        ).fetchall()
        return {row[0]: _article(row) for row in rows}

    def list_articles(self, offset: int, limit: int) -> list[dict]:
        rows = self.connect().execute(
            "SELECT a.id, a.title, a.date, a.url, a.source, length(a.text),"
            " (SELECT count(*) FROM chunks c WHERE c.article_id = a.id)"
            " FROM articles a ORDER BY a.date IS NULL, a.date DESC, a.id LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        keys = ("id", "title", "date", "url", "source", "chars", "chunks")
        return [dict(zip(keys, row)) for row in rows]

    def count(self, table: str) -> int:
        """Rows of articles, chunks or sentences: kept in `meta` by every write (counting a million
        rows costs a scan, and every write and /health asked); counted once for an older index."""
        assert table in COUNTED
        return self._counts(self.connect())[table]

    def _counts(self, conn: sqlite3.Connection) -> dict[str, int]:
        stored = self.get_meta("counts")
        return self.recount(conn) if stored is None else json.loads(stored)

    def table_bytes(self) -> dict[str, int]:
        """Bytes on disk per table, its indexes included (SQLite's dbstat), for `bench writes`."""
        rows = self.connect().execute(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d"
            " LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1").fetchall()
        return {name: int(size) for name, size in rows}

    def recount(self, conn: sqlite3.Connection | None = None) -> dict[str, int]:
        """The rows counted now (what `check` compares the kept counts with)."""
        conn = conn or self.connect()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED}

    def date_range(self) -> tuple[str | None, str | None]:
        return tuple(self.connect().execute("SELECT min(date), max(date) FROM articles").fetchone())

    def sources(self) -> dict[str, int]:
        rows = self.connect().execute(
            "SELECT coalesce(source, ''), count(*) FROM articles GROUP BY source ORDER BY count(*) DESC"
        ).fetchall()
        return dict(rows)

    # --- chunks and sentences ---------------------------------------------------------------
    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.connect().execute(
            f'SELECT id, article_id, ordinal, start, "end" FROM chunks WHERE id IN ({marks})', ids
        ).fetchall()
        return {row[0]: ChunkRow(*row) for row in rows}

    def chunk_ids_for(self, article_ids: Iterable[str]) -> list[int]:
        article_ids = list(article_ids)
        out: list[int] = []
        for i in range(0, len(article_ids), 500):
            part = article_ids[i: i + 500]
            marks = ",".join("?" * len(part))
            out.extend(r[0] for r in self.connect().execute(
                f"SELECT id FROM chunks WHERE article_id IN ({marks})", part))
        return out

    def chunk_ids_matching(self, filters: Filters) -> np.ndarray:
        """Chunk ids of the articles the filters admit (dates are stored as ISO YYYY-MM-DD)."""
        clauses, params = [], []
        undated = " OR a.date IS NULL" if filters.include_undated else ""
        if filters.date_from:
            clauses.append(f"(a.date >= ?{undated})")
            params.append(filters.date_from)
        if filters.date_to:
            clauses.append(f"(a.date <= ?{undated})")
            params.append(filters.date_to)
        if filters.source:
            clauses.append("a.source = ?")
            params.append(filters.source)
        if filters.article_ids:
            clauses.append(f"a.id IN ({','.join('?' * len(filters.article_ids))})")
            params.extend(filters.article_ids)
        rows = self.connect().execute(
            f"SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE {' AND '.join(clauses) or '1'}",
            params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def chunk_ids_between(self, first: int = 0, last: int = 2 ** 63 - 1) -> np.ndarray:
        """The stored chunk ids in [first, last], ascending (a range scan of the primary key)."""
        rows = self.connect().execute("SELECT id FROM chunks WHERE id BETWEEN ? AND ? ORDER BY id", (first, last))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def integrity(self) -> tuple[set[int], int, int]:
        """Every stored chunk id, chunks without an article, and articles without chunks (half-written)."""
        conn = self.connect()
        ids = {int(r[0]) for r in conn.execute("SELECT id FROM chunks")}
        orphans = conn.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN articles a ON a.id = c.article_id WHERE a.id IS NULL").fetchone()[0]
        chunkless = conn.execute(
            "SELECT count(*) FROM articles a WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.article_id = a.id)"
        ).fetchone()[0]
        return ids, orphans, chunkless

    def chunk_spans(self) -> list[tuple[str, int, int]]:
        """(article id, start, end) of every chunk, in id order (benchmarks re-embed exactly these)."""
        return self.connect().execute('SELECT article_id, start, "end" FROM chunks ORDER BY id').fetchall()

    def chunk_vectors(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Stored vectors of some chunks: exact cosines without another FAISS search."""
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.connect().execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", ids).fetchall()
        return {r[0]: _vector(r[1]) for r in rows}

    def iter_chunk_vectors(self, batch: int = 10000, first: int = 0,
                           last: int = 2 ** 63 - 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the chunks with ids in [first, last] in batches, for building FAISS files."""
        cursor = self.connect().execute("SELECT id, vector FROM chunks WHERE id BETWEEN ? AND ? ORDER BY id",
                                        (first, last))
        while rows := cursor.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, np.vstack([_vector(r[1]) for r in rows])

    def iter_chunk_texts(self, first: int = 0, last: int = 2 ** 63 - 1) -> Iterator[tuple[int, str]]:
        """(chunk id, BM25 document text) of the chunks with ids in [first, last], for building BM25:
        the title, then the chunk text (the title alone is skipped when the chunk starts with it, as
        for the embedding input)."""
        cursor = self.connect().execute(
            'SELECT c.id, CASE WHEN a.title = \'\' OR substr(a.text, c.start + 1, length(a.title)) = a.title'
            ' THEN substr(a.text, c.start + 1, c."end" - c.start)'
            ' ELSE a.title || char(10) || substr(a.text, c.start + 1, c."end" - c.start) END'
            " FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id BETWEEN ? AND ? ORDER BY c.id",
            (first, last),
        )
        yield from cursor

    def cached_vectors(self, table: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already computed for these embedding inputs (by hash): never embed twice."""
        assert table in ("chunks", "sentences")
        hashes = list(set(hashes))
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i: i + 500]
            marks = ",".join("?" * len(part))
            for h, blob in self.connect().execute(
                f"SELECT embed_hash, vector FROM {table} WHERE embed_hash IN ({marks}) GROUP BY embed_hash", part
            ):
                out[h] = _vector(blob)
        return out

    def sentences_in(self, article_id: str, start: int, end: int, details: bool = True) -> list[SentenceRow]:
        """Stored sentences lying inside `[start, end)` of an article; without `details` their dates
        are left empty (retrieval's second stage needs only offsets and vectors)."""
        extra = ", dates" if details else ""
        rows = self.connect().execute(
            f'SELECT id, article_id, start, "end", vector{extra} FROM sentences'
            ' WHERE article_id=? AND start>=? AND "end"<=? ORDER BY start',
            (article_id, start, end),
        ).fetchall()
        if not details:
            return [SentenceRow(r[0], r[1], r[2], r[3], _vector(r[4]), []) for r in rows]
        return [SentenceRow(r[0], r[1], r[2], r[3], _vector(r[4]), json.loads(r[5])) for r in rows]

    # --- writes -------------------------------------------------------------------------------
    def write(self, upserts: list["PreparedArticle"], deletes: list[str]) -> tuple[dict[str, list[int]], list[int]]:
        """One transaction: delete, then replace/insert articles with their chunks and sentences.

        Returns the new chunk ids per article and the removed chunk ids; bumps the generation.
        """
        conn = self.connect()
        removed_ids: list[int] = []
        new_ids: dict[str, list[int]] = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            touched = deletes + [p.article.id for p in upserts]
            removed_ids = self.chunk_ids_for(touched)
            vacated = set(self.story_ids(touched).values()) if self.stories else set()  # before the cascade
            counts = self._counts(conn)
            counts["chunks"] += sum(len(p.chunks) for p in upserts) - len(removed_ids)
            counts["sentences"] += sum(len(p.sentences) for p in upserts) - sum(
                r[0] for r in _in_batches(conn, "SELECT count(*) FROM sentences WHERE article_id IN ({})", touched))
            counts["articles"] += len(upserts)
            for i in range(0, len(touched), 500):
                part = touched[i: i + 500]
                marks = ",".join("?" * len(part))
                counts["articles"] -= conn.execute(f"DELETE FROM articles WHERE id IN ({marks})", part).rowcount
            for prepared in upserts:
                a = prepared.article
                conn.execute(
                    "INSERT INTO articles(id, title, date, url, source, text, content_hash, extra)"
                    " VALUES(?,?,?,?,?,?,?,?)",
                    (a.id, a.title, a.date, a.url, a.source, a.text, a.content_hash,
                     json.dumps(a.extra, ensure_ascii=False, default=str)),
                )
                ids = []
                for chunk, h, vec in zip(prepared.chunks, prepared.chunk_hashes, prepared.chunk_vectors):
                    cur = conn.execute(
                        'INSERT INTO chunks(article_id, ordinal, start, "end", n_tokens, embed_hash, vector)'
                        " VALUES(?,?,?,?,?,?,?)",
                        (a.id, chunk.ordinal, chunk.start, chunk.end, chunk.n_tokens, h, _blob(vec)),
                    )
                    ids.append(cur.lastrowid)
                new_ids[a.id] = ids
                conn.executemany(
                    'INSERT INTO sentences(article_id, start, "end", embed_hash, vector, dates)'
                    " VALUES(?,?,?,?,?,?)",
                    [
                        (a.id, s, e, h, _blob(v), json.dumps(d))
                        for (s, e), h, v, d in zip(
                            prepared.sentences, prepared.sentence_hashes, prepared.sentence_vectors,
                            prepared.sentence_dates,
                        )
                    ],
                )
            if self.stories:
                self._place(conn, {p.article.id: p.article.text for p in upserts}, vacated)
            self.set_meta("counts", json.dumps(counts), conn)
            self.set_meta("generation", str(self.generation + 1), conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return new_ids, removed_ids


    # --- stories (rag/stories.py holds the logic) ---------------------------------------------------
    def _place(self, conn: sqlite3.Connection, texts: dict[str, str], vacated: set[int]) -> None:
        """Store the signatures of stored articles and place them in stories; re-check `vacated`."""
        signatures = {article_id: self.stories.signature(text) for article_id, text in texts.items()}
        for article_id, signature in signatures.items():
            row = conn.execute("INSERT INTO story_signatures(article_id, signature) VALUES(?, ?)",
                               (article_id, signature.tobytes())).lastrowid
            conn.executemany("INSERT INTO story_bands(band, key, signature_id) VALUES(?,?,?)",
                             [(band, int(key), row) for band, key in enumerate(self.stories.band_keys(signature))])
        stories.place(_StoryTables(conn), self.stories, signatures, vacated)

    def story_ids(self, article_ids: Iterable[str]) -> dict[str, int]:
        """Article id -> story id, for the placed ones among `article_ids`."""
        return {k: int(v) for k, v in _in_batches(
            self.connect(), "SELECT article_id, story_id FROM story_signatures"
            " WHERE story_id IS NOT NULL AND article_id IN ({})", list(article_ids))}

    def story_members(self, story_ids: Iterable[int]) -> dict[int, list[Member]]:
        """Each story's members (article id, source, date, url), the lead first (rag.stories.lead_first)."""
        out: dict[int, list[Member]] = {}
        for story, *member in _in_batches(
                self.connect(), "SELECT s.story_id, a.id, a.source, a.date, a.url FROM story_signatures s"
                " JOIN articles a ON a.id = s.article_id WHERE s.story_id IN ({})", list(dict.fromkeys(story_ids))):
            out.setdefault(int(story), []).append(Member(*member))
        return {story: stories.lead_first(members) for story, members in out.items()}

    def story_views(self, article_ids: Iterable[str]) -> dict[str, StoryView]:
        """For each stored article among `article_ids`: its story, the story's members (lead first) and
        its signature; an unplaced one (stories off, or not yet migrated) is a story of its own."""
        ids = list(dict.fromkeys(article_ids))
        placed = {aid: (int(story) if story is not None else None, np.frombuffer(blob, dtype=np.uint32))
                  for aid, story, blob in _in_batches(self.connect(), "SELECT article_id, story_id, signature"
                                                      " FROM story_signatures WHERE article_id IN ({})", ids)}
        members = self.story_members(story for story, _ in placed.values() if story is not None)
        out = {}
        for aid, *row in _in_batches(self.connect(), "SELECT id, source, date, url FROM articles WHERE id IN ({})", ids):
            story, signature = placed.get(aid, (None, None))
            out[aid] = StoryView(story, tuple(members[story]) if story is not None else (Member(aid, *row),), signature)
        return out

    def story_counts(self) -> dict[str, int]:
        """Stories (an unplaced article counts as its own), those with more than one member, and the
        duplicates: articles beyond the first of their story."""
        conn = self.connect()
        articles = self.count("articles")
        placed, stories_, syndicated = conn.execute(
            "SELECT coalesce(sum(n), 0), count(*), coalesce(sum(n > 1), 0) FROM"
            " (SELECT count(*) AS n FROM story_signatures WHERE story_id IS NOT NULL GROUP BY story_id)").fetchone()
        total = stories_ + articles - placed
        return {"stories": total, "syndicated_stories": syndicated, "duplicates": articles - total}

    def place_unplaced(self, batch: int = 500) -> int:
        """Migrate: give every article without a signature one and a story (an index made before
        stories, or made with other story settings, whose rows are dropped first). One transaction
        per `batch` articles; the caller holds the write lock. Returns how many were placed."""
        conn = self.connect()
        if self.stories is None:
            return 0
        wanted = json.dumps(self.stories.settings.to_json(), sort_keys=True)
        if self.get_meta("stories") == wanted:
            return 0
        placed = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self.get_meta("stories") is not None:
                conn.execute("DELETE FROM story_signatures")  # made with other settings: the bands go with them
            while True:
                rows = conn.execute(
                    "SELECT id, text FROM articles WHERE id NOT IN (SELECT article_id FROM story_signatures)"
                    " ORDER BY id LIMIT ?", (batch,)).fetchall()
                if rows:
                    self._place(conn, dict(rows), set())
                    placed += len(rows)
                if len(rows) < batch:
                    self.set_meta("stories", wanted, conn)
                conn.execute("COMMIT")
                if len(rows) < batch:
                    return placed
                conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def turn_off_stories(self) -> None:
        """No stories for this index, for good: synthetic scale indexes are copies of a few articles,
        which would all be one story each (and a benchmark may weigh ingest without the step)."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM story_signatures")
        self.set_meta("stories", "off", conn)
        conn.execute("COMMIT")
        self.stories = None

    def check_stories(self) -> list[str]:
        """Problems with the stored stories: articles left unplaced, bands that do not match their
        signature, or a partition other than the one the signatures make (empty when all agree, or
        when stories are off)."""
        conn = self.connect()
        if self.stories is None:
            return []
        problems = []
        unplaced = conn.execute("SELECT count(*) FROM articles WHERE id NOT IN"
                                " (SELECT article_id FROM story_signatures WHERE story_id IS NOT NULL)").fetchone()[0]
        if unplaced:
            problems.append(f"{unplaced} articles have no story")
        signatures = {aid: np.frombuffer(blob, dtype=np.uint32)
                      for aid, blob in conn.execute("SELECT article_id, signature FROM story_signatures")}
        bands: dict[str, set] = {}
        for aid, band, key in conn.execute("SELECT s.article_id, b.band, b.key FROM story_bands b"
                                           " JOIN story_signatures s ON s.id = b.signature_id"):
            bands.setdefault(aid, set()).add((band, key))
        wrong = sum(bands.get(aid) != set(enumerate(self.stories.band_keys(sig).tolist()))
                    for aid, sig in signatures.items())
        if wrong:
            problems.append(f"{wrong} articles' story bands do not match their signatures")
        stored: dict[int, list[str]] = {}
        for aid, story in conn.execute("SELECT article_id, story_id FROM story_signatures WHERE story_id IS NOT NULL"):
            stored.setdefault(story, []).append(aid)
        expected = self.stories.components({aid: sig for aid, sig in signatures.items()})
        if sorted(sorted(ids) for ids in stored.values()) != expected:
            problems.append("the stored stories differ from those the signatures make; rebuild them")
        return problems


class _StoryTables:
    """rag.stories.StoryTables on one connection, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def neighbours(self, keys: np.ndarray) -> dict[str, int | None]:
        pairs = [v for band, key in enumerate(keys.tolist()) for v in (band, key)]
        rows = self.conn.execute(  # written as ORs, which SQLite answers from the primary key, band by band
            "SELECT article_id, story_id FROM story_signatures WHERE id IN (SELECT signature_id FROM story_bands"
            f" WHERE {' OR '.join(['(band=? AND key=?)'] * len(keys))})", pairs).fetchall()
        return dict(rows)

    def signatures(self, ids: list[str]) -> dict[str, np.ndarray]:
        return {aid: np.frombuffer(blob, dtype=np.uint32) for aid, blob in _in_batches(
            self.conn, "SELECT article_id, signature FROM story_signatures WHERE article_id IN ({})", ids)}

    def members(self, story_id: int) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT article_id FROM story_signatures WHERE story_id=? ORDER BY article_id", (story_id,))]

    def set_story(self, ids: list[str], story_id: int) -> None:
        for i in range(0, len(ids), 500):
            part = ids[i: i + 500]
            self.conn.execute(f"UPDATE story_signatures SET story_id=? WHERE article_id IN ({','.join('?' * len(part))})",
                              [story_id, *part])

    def new_story_id(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='next_story_id'").fetchone()
        story = int(row[0]) if row else 1
        self.conn.execute("INSERT INTO meta(key, value) VALUES('next_story_id', ?)"
                          " ON CONFLICT(key) DO UPDATE SET value=excluded.value", (str(story + 1),))
        return story


def _in_batches(conn: sqlite3.Connection, sql: str, values: list) -> Iterator[tuple]:
    """Rows of `sql` (one `IN ({})` placeholder) over `values`, 500 at a time (SQLite's bound-parameter limit)."""
    for i in range(0, len(values), 500):
        part = values[i: i + 500]
        yield from conn.execute(sql.format(",".join("?" * len(part))), part)


@dataclass
class PreparedArticle:
    """An article with everything computed for it, ready to be written in one transaction."""

    article: Article
    chunks: list
    chunk_hashes: list[str]
    chunk_vectors: np.ndarray
    sentences: list[tuple[int, int]]
    sentence_hashes: list[str]
    sentence_vectors: np.ndarray
    sentence_dates: list[list[dict]]


def _article(row) -> Article:
    return Article(id=row[0], text=row[1], title=row[2], date=row[3], url=row[4], source=row[5],
                   extra=json.loads(row[6] or "{}"))

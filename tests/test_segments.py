"""Segments: after any sequence of writes, deletes and merges, an index searches exactly as one
segment built from the same stored chunks (the same passages and scores for BM25 and flat dense, the
same hybrid order), with filters and recency; `check` verifies every segment against SQLite; a write
publishes only what it adds; SIGKILL during a merge or a delete loses nothing acknowledged.

The reference is the same folder's SQLite with its segments removed, reopened: it rebuilds one
segment from the very vectors the segmented index holds, so scores can be compared bit for bit.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.archive import Archive
from rag.generations import lock_busy
from rag.articles import iter_sources, make_article, sample_corpus_path
from rag.query import Filters, Query
from rag.segments import MERGE_FACTOR, TIER_FLOOR, plan_merge, tier

from synthetic import articles
from test_crash import newsrag

AS_OF = "2025-11-20"
QUESTIONS = ["Who was elected mayor of Rivertown?", "What did the central bank decide about rates?",
             "Which company opened a chip plant?", "bridge repairs closure",
             "What happened in Rivertown in August 2025?", "council approved a water plan",
             "farmers funded the harbour wall"]
CASES = [(None, "none"), (Filters(source="Synthetic"), "none"), (Filters(source="Harbour Gazette"), "none"),
         (Filters(date_from="2024-03", date_to="2024-08"), "none"), (None, "prefer_recent"),
         (Filters(date_from="2025-08"), "prefer_recent")]


def _as_articles(records: list[dict]):
    return [make_article(r, f"test:{r['id']}") for r in records]


def single_segment_copy(archive: Archive, root: Path, name: str) -> Archive:
    """The archive's SQLite alone, reopened: its one segment is built from the same stored chunks."""
    archive.wait_for_merges()
    shutil.copytree(archive.path, root / name, ignore=shutil.ignore_patterns("segments", "segments.json", "*.lock"))
    reference = Archive.open(name, root)
    assert len(reference.derived().segments) == 1
    return reference


def ranking(passages) -> list[tuple]:
    return [(p.article.id, p.start, p.end, p.score) for p in passages]


def same_ranking(got: list[tuple], expected: list[tuple]) -> bool:
    """Equal scores bit for bit in the same order; items of equal score may swap (and where a tie
    straddles the cut, either may be kept)."""
    if [g[-1] for g in got] != [e[-1] for e in expected]:
        return False
    last = expected[-1][-1] if expected else None
    for score in {e[-1] for e in expected} - {last}:
        if {g for g in got if g[-1] == score} != {e for e in expected if e[-1] == score}:
            return False
    return True


def assert_searches_alike(archive: Archive, reference: Archive) -> None:
    for question in QUESTIONS:
        for filters, recency in CASES:
            for k in (1, 5, 10):
                for mode in ("bm25", "dense", "hybrid"):
                    query = Query(question, k, mode, filters=filters, recency=recency, as_of=AS_OF)
                    got, expected = archive.search(query).passages, reference.search(query).passages
                    if mode == "hybrid":
                        assert [p.article.id for p in got] == [p.article.id for p in expected], (question, k, filters)
                    else:
                        assert same_ranking(ranking(got), ranking(expected)), (mode, question, k, filters, recency)
    derived, single = archive.derived(), reference.derived()
    for question in QUESTIONS:
        got, expected = derived.lexical.search(question, 10), single.lexical.search(question, 10)
        assert same_ranking([(c, s) for c, s in got], [(c, s) for c, s in expected]), question


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """An index written by a seeded sequence of ingests, replacements, deletes and merges."""
    root = tmp_path_factory.mktemp("segments")
    archive = Archive.open("seg", root, create=True)
    archive.ingest(iter_sources([str(sample_corpus_path())]))
    records = articles(60, seed=5, prefix="seg")
    rng = random.Random(17)
    live: set[str] = set()
    for step in range(14):
        batch = records[step * 4: step * 4 + 4]
        archive.ingest(_as_articles(batch))
        live |= {r["id"] for r in batch}
        if step % 3 == 1:  # replace one with new text
            changed = {**rng.choice([r for r in records if r["id"] in live])}
            changed["text"] += " The vote was close."
            archive.ingest(_as_articles([changed]))
        if step % 2 == 0:
            gone = rng.choice(sorted(live))
            archive.delete(gone)
            live.discard(gone)
        archive.wait_for_merges()
    return root, archive, live


def test_writes_deletes_and_tiered_merges_search_as_one_segment(written, tmp_path):
    root, archive, live = written
    segments = archive.derived().segments
    assert len(segments) > 1 and any(len(s.deleted) for s in segments)
    assert any(s.name.endswith("m") for s in segments), "the small segments were merged by tier"
    assert archive.check() == []
    assert {a["id"] for a in archive.list_articles(0, 1000) if a["id"].startswith("seg-")} == live
    assert_searches_alike(archive, single_segment_copy(archive, tmp_path, "reference"))


def test_optimize_merges_everything_and_still_searches_as_one(written, tmp_path):
    root, archive, _ = written
    copy = tmp_path / "copy"
    shutil.copytree(archive.path, copy / "seg", ignore=shutil.ignore_patterns("*.lock"))
    optimized = Archive.open("seg", copy)
    before = len(optimized.derived().segments)
    done = optimized.optimize()
    (segment,) = optimized.derived().segments
    assert done["segments_before"] == before and not len(segment.deleted) and optimized.check() == []
    assert_searches_alike(optimized, single_segment_copy(archive, tmp_path, "reference"))


def test_a_write_publishes_only_what_it_adds(written, tmp_path):
    """A one-article ingest adds one small segment and leaves every other segment's files alone; a
    delete adds one deletion file."""
    _, archive, _ = written
    shutil.copytree(archive.path, tmp_path / "w", ignore=shutil.ignore_patterns("*.lock"))
    index = Archive.open("w", tmp_path)
    folder = tmp_path / "w" / "segments"
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    index.ingest(_as_articles(articles(1, seed=99, prefix="one")), merge=False)  # the write alone
    after = {p for p in folder.rglob("*") if p.is_file()}
    new = {p.parent if p.parent.parent == folder else p.parent.parent for p in after - set(before)}
    assert len(new) == 1 and all(before[p] == p.stat().st_mtime_ns for p in before)
    (added,) = new
    assert json.loads((added / "bm25" / "count.json").read_text())["documents"] == len(
        index.store.chunk_ids_for(["one-0000"]))
    victim = next(s for s in index.derived().segments if s.name != added.name)
    index.delete(index.store.chunks_by_id(victim.live_ids()[:1].tolist()).popitem()[1].article_id, merge=False)
    assert {p for p in folder.rglob("*") if p.is_file()} - after - set(before) <= {
        p for p in folder.rglob("deleted-*.npy")}
    assert index.check() == []


def test_check_finds_a_segment_that_disagrees_with_sqlite(written, tmp_path):
    _, archive, _ = written
    shutil.copytree(archive.path, tmp_path / "bad", ignore=shutil.ignore_patterns("*.lock"))
    listing = json.loads((tmp_path / "bad" / "segments.json").read_text())
    entry = next(e for e in listing["segments"] if e["deletions"])
    entry["deletions"] = None  # the segment forgets its deleted chunks
    (tmp_path / "bad" / "segments.json").write_text(json.dumps(listing))
    problems = Archive.open("bad", tmp_path).check()
    assert any("only in the segments" in p for p in problems), problems


def test_a_lagging_listing_catches_up_from_sqlite(written, tmp_path):
    """A crash after SQLite committed but before the listing was replaced: the next open adds the
    missing chunks as a segment and the missing deletions, and searches as one segment."""
    _, archive, _ = written
    shutil.copytree(archive.path, tmp_path / "lag", ignore=shutil.ignore_patterns("*.lock"))
    listing = (tmp_path / "lag" / "segments.json").read_text()
    index = Archive.open("lag", tmp_path)
    index.ingest(_as_articles(articles(2, seed=7, prefix="late")))
    index.delete(next(a["id"] for a in index.list_articles(0, 100) if a["id"].startswith("seg-")))
    index.wait_for_merges()
    (tmp_path / "lag" / "segments.json").write_text(listing)  # as if both publishes were lost
    reopened = Archive.open("lag", tmp_path)
    assert reopened.check() == []
    assert_searches_alike(reopened, single_segment_copy(reopened, tmp_path, "reference"))


def test_tiers_merge_neighbours_only_in_runs_of_the_merge_factor():
    small, big = TIER_FLOOR // 2, TIER_FLOOR * MERGE_FACTOR * 3
    assert tier(small) == 0 and tier(TIER_FLOOR) == 1 and tier(big) == 2
    assert plan_merge([big] + [small] * (MERGE_FACTOR - 1)) is None
    assert plan_merge([big] + [small] * MERGE_FACTOR) == (1, MERGE_FACTOR + 1)
    assert plan_merge([small] * MERGE_FACTOR + [big, small]) == (0, MERGE_FACTOR)
    assert plan_merge([]) is None


def test_a_mostly_deleted_segment_is_rewritten_alone(written, tmp_path):
    """Deleting most of a segment's articles makes the background merge rewrite it without them."""
    _, archive, _ = written
    shutil.copytree(archive.path, tmp_path / "aged", ignore=shutil.ignore_patterns("*.lock"))
    index = Archive.open("aged", tmp_path)
    index.ingest(_as_articles(articles(6, seed=31, prefix="aged")), merge=False)
    for i in range(4):
        index.delete(f"aged-{i:04d}")
    index.wait_for_merges()
    kept = index.store.chunk_ids_for(["aged-0004", "aged-0005"])
    (holder,) = [s for s in index.derived().segments if set(kept) & set(s.live_ids().tolist())]
    assert holder.name.endswith("m") and not len(holder.deleted)
    assert all(len(s.deleted) <= len(s) for s in index.derived().segments) and index.check() == []


def test_a_delete_does_not_load_the_model(written, tmp_path):
    _, archive, _ = written
    shutil.copytree(archive.path, tmp_path / "d", ignore=shutil.ignore_patterns("*.lock"))
    victim = next(a["id"] for a in archive.list_articles(0, 100) if a["id"].startswith("seg-"))
    code = ("import sys; from newsrag.cli import main; code = main(sys.argv[1:]);"
            "assert 'sentence_transformers' not in sys.modules and 'torch' not in sys.modules, 'model loaded';"
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "delete", victim, "--index", "d",
                           "--index-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Archive.open("d", tmp_path).store.get_article(victim) is None


def _kill_during(args: list[str], lock: Path, delay: float) -> bool:
    """Run `newsrag ARGS`, SIGKILL it `delay` s after it first holds `lock` (the write or the merge
    lock: its work has begun); False if it finished first."""
    proc = subprocess.Popen(newsrag(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not lock_busy(lock.parent, lock.name) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    return killed


def test_sigkill_during_merges_and_deletes_loses_nothing_acknowledged(written, tmp_path):
    """Seeded kill points inside `newsrag optimize` (a merge of every segment) and `newsrag delete`:
    the index opens, `check` is clean, and every article is there unless its delete was acknowledged."""
    _, archive, live = written
    shutil.copytree(archive.path, tmp_path / "k", ignore=shutil.ignore_patterns("*.lock"))
    rng = random.Random(20261207)
    where = ["--index", "k", "--index-dir", str(tmp_path)]
    expected = {a["id"] for a in archive.list_articles(0, 1000)}
    kills = 0
    for run in range(6):
        if run % 2 == 0:
            index = Archive.open("k", tmp_path)
            index.ingest(_as_articles(articles(3, seed=100 + run, prefix=f"k{run}")))  # more segments to merge
            index.wait_for_merges()
            expected |= {f"k{run}-{i:04d}" for i in range(3)}
            kills += _kill_during(["optimize", *where], tmp_path / "k" / ".merge.lock", rng.uniform(0.0, 0.15))
        else:
            victim = sorted(expected)[rng.randrange(len(expected))]
            killed = _kill_during(["delete", victim, *where], tmp_path / "k" / ".write.lock", rng.uniform(0.0, 0.05))
            kills += killed
            if not killed:
                expected.discard(victim)
        reopened = Archive.open("k", tmp_path)
        assert reopened.check() == []
        have = {a["id"] for a in reopened.list_articles(0, 1000)}
        lost = expected - have
        assert lost <= {victim} if run % 2 else not lost, (run, lost)
        expected = have
    assert kills >= 2, kills

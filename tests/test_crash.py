"""SIGKILL `newsrag ingest` at random points: the index always opens consistent, with every batch it
reported committed, and a later ingest of the same files completes it.

The runs share one index, each resuming the same corpus (as a user would after a crash), so the whole
test embeds the corpus about once. Kill points are drawn with a fixed seed: a progress count to wait
for (progress is reported only after a batch commits) still ahead of what is stored, then a random delay
that lands inside the next batch's embedding, its SQLite commit, the final publish of the new
segment, or a merge after it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rag.archive import Archive
from rag.ingest import INGEST_BATCH

from synthetic import articles, write_jsonl
from rag.query import Query

N_ARTICLES = 200
KILLS = 4
_PROGRESS = re.compile(rb"ingest: (\d+)article")


def newsrag(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("newsrag")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "newsrag.cli", *args]


class Ingest:
    """`newsrag ingest` in a subprocess, with the progress it has reported on stderr."""

    def __init__(self, corpus: Path, index_dir: Path):
        self.proc = subprocess.Popen(newsrag("ingest", str(corpus), "--index", "crash", "--index-dir", str(index_dir)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.proc.stderr.fileno(), 4096):
            self.stderr += chunk

    def reported(self) -> int:
        """The last article count the progress bar showed (-1 before the bar appears)."""
        counts = _PROGRESS.findall(self.stderr)
        return int(counts[-1]) if counts else -1

    def kill_after(self, count: int, delay: float, limit: float = 120.0) -> bool:
        """SIGKILL once `count` articles are reported plus `delay` seconds; False if it finished first."""
        deadline = time.monotonic() + limit
        while self.reported() < count and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        killed = self.proc.poll() is None
        if killed:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(5)
        return killed


def stored(index_dir: Path) -> dict[str, str]:
    archive = Archive.open("crash", index_dir)
    problems = archive.check()
    assert problems == [], problems
    rows = archive.store.connect().execute("SELECT id, text FROM articles").fetchall()
    archive.store.close()
    return dict(rows)


def test_sigkill_at_random_points_never_loses_a_committed_batch(tmp_path):
    records = articles(N_ARTICLES, seed=11, prefix="crash")
    corpus = write_jsonl(tmp_path / "corpus.jsonl", records)
    order = [r["id"] for r in records]
    texts = {r["id"]: r["text"] for r in records}
    index_dir = tmp_path / "indexes"
    rng = random.Random(20251007)
    runs = []
    committed = 0
    for run in range(KILLS):
        target = rng.choice(range(committed, N_ARTICLES + 1, INGEST_BATCH))  # a point still ahead
        ingest = Ingest(corpus, index_dir)
        killed = ingest.kill_after(target, rng.uniform(0.0, 1.5))
        reported = ingest.reported()
        if not (index_dir / "crash" / "manifest.json").exists():
            assert reported <= 0, "progress was reported before the index existed"
            runs.append((target, killed, reported, 0))
            continue
        have = stored(index_dir)
        # a batch lands whole or not at all, in input order
        assert list(have) == [] or set(have) == set(order[:len(have)])
        assert len(have) % INGEST_BATCH == 0 or len(have) == N_ARTICLES, len(have)
        assert len(have) >= reported, f"run {run}: {reported} articles reported committed, {len(have)} stored"
        assert all(have[i] == texts[i] for i in have)
        if not killed:
            assert ingest.proc.returncode == 0 and len(have) == N_ARTICLES
        runs.append((target, killed, reported, len(have)))
        committed = len(have)
    assert sum(killed for _, killed, _, _ in runs) >= KILLS - 1, runs

    check = subprocess.run(newsrag("check", "--index", "crash", "--index-dir", str(index_dir)),
                           capture_output=True, text=True, timeout=120)
    if (index_dir / "crash" / "manifest.json").exists():
        assert check.returncode == 0, check.stderr
    final = subprocess.run(newsrag("ingest", str(corpus), "--index", "crash", "--index-dir", str(index_dir), "--json"),
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert set(stored(index_dir)) == set(order)
    folder = index_dir / "crash"
    assert (folder / "segments.json").exists() and not list(folder.glob("derived-*"))
    assert not [p for p in (folder / "segments").iterdir() if p.name.startswith(".")]  # no dead writer's files
    archive = Archive.open("crash", index_dir)
    place = records[-1]["title"].removeprefix("News from ")
    passages = archive.search(Query(f"What happened in {place}?", k=3, mode="bm25")).passages
    assert passages and passages[0].article.id == order[-1]
    print("crash runs (target, killed, reported, stored):", runs)

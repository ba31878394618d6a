"""`newsrag bench writes`: what one small write costs as an index grows (issue 17).

For each size, a synthetic index of about that many chunks (eval/synthetic.py: copies of a built
index) is opened, and then, `rounds` times, alternately:
- a one-article ingest is timed from the call to its return, when it is durable (SQLite committed)
  and visible (its segment published; this process's searches already see it), and beside it the
  model's share (preparing the same article: chunking and embedding, which no index layout changes),
  and an ingest of a copy under another id, whose stored vectors are reused (the write path alone);
  another open of the same index (a second server, say) then times its first search, which loads
  what changed;
- that article's delete is timed likewise.
A search for the article's unique word before and after proves it visible, then gone. Merges are
left to run as they would (in the background), and the segment count is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

from rag.archive import Archive
from rag.articles import Article
from rag.ingest import IngestReport
from rag.query import Query


def _article(i: int) -> Article:
    word = f"zyxwrite{i}"
    return Article(id=f"bench-write-{i}", title=f"Council {word} vote", date="2026-12-07", source="Bench",
                   text=f"The council of {word} voted on a new harbour wall on Monday. The vote was close, "
                        f"and the mayor of {word} said work would start in spring.")


def _found(archive: Archive, i: int) -> bool:
    passages = archive.search(Query(f"zyxwrite{i}", k=3, mode="bm25", dedupe=False)).passages
    return any(p.article.id == f"bench-write-{i}" for p in passages)


def bench_writes(index: str, index_dir: Path, rounds: int) -> dict:
    """Median and every timing of `rounds` one-article ingests and deletes on an existing index."""
    writer = Archive.open(index, index_dir)
    reader = Archive.open(index, index_dir)  # another open of the index: what a second process would load
    writer.answer(Query("warm up"))  # the model and the reader load once, outside the timings
    reader.search(Query("warm up"))
    out = {"index": index, "chunks": writer.count("chunks"), "segments_before": len(writer.derived().segments),
           "ingest_s": [], "embed_s": [], "ingest_reusing_vectors_s": [], "delete_s": [], "reader_refresh_after_ingest_s": [], "reader_refresh_after_delete_s": []}
    def timed(key: str, call):
        """Run `call`, adding its seconds to `out[key]`; its result back."""
        started = time.perf_counter()
        result = call()
        out[key].append(time.perf_counter() - started)
        return result

    for r in range(rounds):
        i = time.time_ns() % 10**9 + r
        timed("embed_s", lambda: writer.preparer.prepare([_article(i)], IngestReport()))  # the model's share of ingest
        timed("ingest_s", lambda: writer.ingest([_article(i)]))
        assert _found(writer, i), "the ingested article is not visible"
        assert timed("reader_refresh_after_ingest_s", lambda: _found(reader, i)), "another open does not see the ingested article"
        copy = replace(_article(i), id=f"bench-write-{i}-copy")
        # its inputs are stored already: their vectors are reused, the model does nothing
        timed("ingest_reusing_vectors_s", lambda: writer.ingest([copy]))
        writer.delete(copy.id)
        timed("delete_s", lambda: writer.delete(f"bench-write-{i}"))
        assert not _found(writer, i), "the deleted article is still found"
        assert not timed("reader_refresh_after_delete_s", lambda: _found(reader, i)), "another open still finds the deleted article"
    writer.wait_for_merges()
    out["segments_after"] = len(writer.derived().segments)
    for key in [k for k in out if k.endswith("_s")]:
        out[key] = {"median": round(statistics.median(out[key]), 3), "max": round(max(out[key]), 3),
                    "all": [round(x, 3) for x in out[key]]}
    assert writer.check() == []
    return out


def answer_during_writes(index: str, index_dir: Path, questions: list[str], seconds: float, write_every: float) -> dict:
    """One client's `/answer` latency over HTTP for `seconds` with no writes, then for `seconds` while
    another client posts a one-article ingest or delete every `write_every` seconds (alternately)."""
    import threading

    import httpx

    from eval.bench import percentiles
    from eval.load import served

    with served(index, str(index_dir), timeout_s=1800) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        http.post("/answer", json={"question": questions[0]}).raise_for_status()

        def ask_for(duration: float) -> list[float]:
            ms, end, i = [], time.perf_counter() + duration, 0
            while time.perf_counter() < end:
                started = time.perf_counter()
                http.post("/answer", json={"question": questions[i % len(questions)]}).raise_for_status()
                ms.append((time.perf_counter() - started) * 1e3)
                i += 1
            return ms

        quiet = ask_for(seconds)
        stop, writes = threading.Event(), []

        def write() -> None:
            with httpx.Client(base_url=server.url, timeout=120) as writer:
                n = 0
                while not stop.is_set():
                    a, started = _article(time.time_ns() % 10**9), time.perf_counter()
                    if n % 2 == 0:
                        body = {"articles": [{"id": a.id, "title": a.title, "date": a.date, "source": a.source,
                                              "text": a.text}]}
                        writer.post("/articles", json=body).raise_for_status()
                        last = a.id
                    else:
                        writer.delete(f"/articles/{last}").raise_for_status()
                    writes.append((time.perf_counter() - started) * 1e3)
                    n += 1
                    stop.wait(max(0.0, write_every - (time.perf_counter() - started)))
                if n % 2:
                    writer.delete(f"/articles/{last}").raise_for_status()  # leave the index as it was

        writer = threading.Thread(target=write)
        writer.start()
        busy = ask_for(seconds)
        stop.set()
        writer.join()
    return {"seconds_each": seconds, "write_every_s": write_every, "answer_ms_quiet": percentiles(quiet),
            "answer_ms_during_writes": percentiles(busy), "write_ms": percentiles(writes) if writes else None}


def store_report(archive: Archive, sample: int = 200_000, queries: int = 200, seed: int = 0) -> dict:
    """Bytes per chunk on disk (SQLite by table, the segments' files), what float16 chunk and sentence
    vectors would save, and the recall@10 of exact search over float16-rounded chunk vectors against
    float32 (over the first `sample` chunks; queries: stored vectors plus noise of norm 0.3)."""
    import numpy as np

    from eval.synthetic import noisy

    chunks, sentences = archive.count("chunks"), archive.count("sentences")
    tables = archive.store.table_bytes()
    segments = sum(f.stat().st_size for f in (archive.path / "segments").rglob("*") if f.is_file())
    parts, have = [], 0
    for _, vecs in archive.store.iter_chunk_vectors():
        parts.append(vecs)
        have += len(vecs)
        if have >= sample:
            break
    x = np.vstack(parts)[:sample]
    rng = np.random.default_rng(seed)
    q = noisy(x[rng.choice(len(x), min(queries, len(x)), replace=False)], rng, 0.3)
    x16 = x.astype(np.float16).astype(np.float32)
    k = min(10, len(x))
    top = lambda m: np.argsort(-(m @ q.T), axis=0, kind="stable")[:k].T
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top(x), top(x16))]))
    dimension = x.shape[1]
    saved = (chunks + sentences) * dimension * 2
    total = sum(tables.values()) + segments
    return {"chunks": chunks, "sentences": sentences,
            "bytes_per_chunk": {**{t: round(b / chunks) for t, b in tables.items() if b > 65536},
                                "segments": round(segments / chunks), "total": round(total / chunks)},
            "float16_vectors_would_save_bytes_per_chunk": round(saved / chunks),
            "total_with_float16_vectors_bytes_per_chunk": round((total - saved) / chunks),
            "float16_chunk_vectors_recall@10": round(recall, 4), "recall_sample_chunks": len(x)}

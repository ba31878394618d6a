"""`newsrag bench ingest|query|vectors|langchain|synthetic|writes|long|stories|news`: throughput, latency and memory, as JSON and Markdown.

- ingest: `Archive.ingest` end to end on a fresh index beside the bare model encoding the same texts
  in the same process (the ratio is the pipeline's overhead);
- query: `/answer` and `/search` latency in-process and over HTTP (uvicorn on 127.0.0.1), one client
  and N concurrent clients, plus the server's start-up time to its first answer and its resident memory;
- vectors: the vector layer (`VectorIndex`, both kinds) and BM25 at synthetic sizes: build time,
  resident bytes per chunk, search latency and recall@10 of the approximate index against exact search;
- langchain: the same corpus and questions through LangChain's FAISS store, side by side (eval/peer.py);
- synthetic: an index of 100k or 1M chunks made of copies of a built one (eval/synthetic.py), for `query`;
- stories: ingest with the near-duplicate step (rag/stories.py) on and off, alternated, and the step's own
  cost per article (eval/stories.py, issue 19);
- writes: one-article ingest and delete, to durable and visible, on synthetic indexes of growing size
  (eval/writes.py, issue 17);
- news: 1,000 news-shaped articles (2k-60k chars, eval/news.py): articles/s and model tokens/s beside the bare model;
- long: one article of 1,000,000 chars: sentence splitting at 10k/100k/1M chars, and its ingest beside the
  bare model encoding the same text (work must grow linearly with an article, issue 13).

Timings are noisy on a shared machine: every report carries the load average and core count.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from eval.synthetic import noisy

SQUAD = "../shared/eval/squad-v1.1-dev"
NEWS_SOURCES = ("../shared/eval/squad-v1.1-dev", "../shared/eval/squad-v1.1-train-sample")
PREBUILT = ".cache/prebuilt"
# `newsrag eval ../shared/eval/squad-v1.1-dev --format squad --build-only` builds it (and prints its name)
SYNTHETIC_BASE = ".cache/eval/squad-v1.1-dev-74bad2284ff9"


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from /proc (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for process {pid}")


def machine() -> dict:
    """What the figures ran on: cores and the load average at the time."""
    return {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"n": len(ms), "p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "mean": round(float(a.mean()), 3)}


def _time(call: Callable[[], object]) -> float:
    """Milliseconds one call takes."""
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1e3


def timed_calls(call: Callable[[str], object], items: list[str], clients: int) -> dict:
    """Latency percentiles of `call` over `items` from `clients` threads at once, with throughput."""
    one = lambda item: _time(lambda: call(item))
    started = time.perf_counter()
    if clients == 1:
        ms = [one(i) for i in items]
    else:
        with ThreadPoolExecutor(clients) as pool:
            ms = list(pool.map(one, items))
    wall = time.perf_counter() - started
    return {**percentiles(ms), "clients": clients, "queries_per_s": round(len(items) / wall, 2)}


# --- ingest ----------------------------------------------------------------------------------------
def bench_ingest(dataset: str, limit: int | None, work: Path, keep: bool, rounds: int = 1) -> dict:
    """Ingest `limit` SQuAD paragraphs into a fresh index, then encode the same texts with the bare model;
    `rounds` > 1 alternates the two that many times and keeps the medians (the load of a shared machine
    drifts). `keep` leaves the index (`bench-ingest` in `work`) for `bench query`."""
    from eval.datasets import load_squad
    from rag.archive import Archive
    from rag.chunking import split_sentences
    from rag.ingest import embed_input

    articles = load_squad(dataset).articles[:limit]
    times: dict[str, list[float]] = {"ingest": [], "chunks": [], "sentences": [], "one_pass": []}

    def clock(name: str, call: Callable[[], object]) -> object:
        t = time.perf_counter()
        result = call()
        times[name].append(time.perf_counter() - t)
        return result

    for _ in range(rounds):
        shutil.rmtree(work / "bench-ingest", ignore_errors=True)
        archive = Archive.open("bench-ingest", work, create=True)
        embedder = archive.embedder
        embedder.encode(["warm up the model before any clock starts"])
        report = clock("ingest", lambda: archive.ingest(articles))
        by_id = {a.id: a for a in articles}
        rows = archive.store.chunk_spans()
        chunk_texts = list(dict.fromkeys(embed_input(by_id[a].title, by_id[a].text[s:e]) for a, s, e in rows))
        sentence_texts = list(dict.fromkeys(a.text[s:e] for a in articles for s, e in split_sentences(a.text)))
        clock("chunks", lambda: embedder.encode(chunk_texts))
        clock("sentences", lambda: embedder.encode(sentence_texts))
        clock("one_pass", lambda: embedder.encode(list(dict.fromkeys(chunk_texts + sentence_texts))))
    ingest_s, chunks_s, sentences_s, one_pass_s = (float(np.median(times[k])) for k in times)
    chunk_tokens = sum(embedder.count_model_tokens(x) for x in chunk_texts)
    sentence_tokens = sum(embedder.count_model_tokens(x) for x in sentence_texts)
    if not keep:
        shutil.rmtree(work / "bench-ingest", ignore_errors=True)
    return {
        "machine": machine(), "dataset": dataset, "articles": len(articles), "chunks": report.chunks, "rounds": rounds,
        "seconds_per_round": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "chunk_texts": len(chunk_texts), "sentence_texts": len(sentence_texts),
        "chunk_tokens": chunk_tokens, "sentence_tokens": sentence_tokens,
        "pipeline": {"seconds": round(ingest_s, 2), "articles_per_s": round(len(articles) / ingest_s, 2),
                     "chunks_per_s": round(report.chunks / ingest_s, 2),
                     "chunk_tokens_per_s": round(chunk_tokens / ingest_s, 1)},
        "bare_model": {"chunks_seconds": round(chunks_s, 2), "sentences_seconds": round(sentences_s, 2),
                       "chunks_per_s": round(len(chunk_texts) / chunks_s, 2),
                       "chunk_tokens_per_s": round(chunk_tokens / chunks_s, 1),
                       "all_tokens_per_s": round((chunk_tokens + sentence_tokens) / (chunks_s + sentences_s), 1),
                       "all_one_pass_seconds": round(one_pass_s, 2)},
        "ratio_vs_chunks_only": round(chunks_s / ingest_s, 3),
        "ratio_vs_all_embedded_texts": round((chunks_s + sentences_s) / ingest_s, 3),
        "ratio_vs_all_embedded_one_pass": round(one_pass_s / ingest_s, 3),
        "sentence_embedding_share_of_ingest": round(sentences_s / ingest_s, 3),
    }


# --- one long article -----------------------------------------------------------------------------
def long_prose(dataset: str, chars: int) -> str:
    """`chars` of real, never repeated prose: SQuAD paragraphs one after another (repeats would hit the
    vector cache and flatter the ingest)."""
    from eval.datasets import load_squad

    text = ""
    for article in load_squad(dataset).articles:
        text += article.text + "\n\n"
        if len(text) >= chars:
            return text[:chars]
    raise ValueError(f"{dataset} holds under {chars} characters of prose")


def bench_long_article(dataset: str, chars: int, work: Path) -> dict:
    """`split_sentences` on growing prefixes, then one `chars`-long article ingested into a fresh index
    beside the bare model encoding the same text: once as the chunks the index stored, once as every
    input ingest embeds (chunks and sentences, in one length-sorted pass). One run of each."""
    from rag.archive import Archive
    from rag.articles import make_article
    from rag.ingest import embed_input
    from rag.chunking import split_sentences

    text = long_prose(dataset, chars)
    split_s = {}
    for size in (10_000, 100_000, 1_000_000):
        if size <= chars:
            started = time.perf_counter()
            split_sentences(text[:size])
            split_s[size] = round(time.perf_counter() - started, 4)
    shutil.rmtree(work / "bench-long", ignore_errors=True)
    archive = Archive.open("bench-long", work, create=True)
    archive.ingest([make_article({"text": "A short article. It loads every model before a clock starts."}, "warm")])
    article = make_article({"id": "long", "title": "One long article", "text": text}, "long")
    started = time.perf_counter()
    report = archive.ingest([article])
    ingest_s = time.perf_counter() - started
    chunk_texts = [embed_input(article.title, text[s:e]) for _, s, e in archive.store.chunk_spans()]
    sentence_texts = [text[s:e] for s, e in split_sentences(text)]
    started = time.perf_counter()
    archive.embedder.encode(chunk_texts)
    chunks_s = time.perf_counter() - started
    started = time.perf_counter()
    archive.embedder.encode(list(dict.fromkeys(chunk_texts + sentence_texts)))
    all_s = time.perf_counter() - started
    shutil.rmtree(work / "bench-long", ignore_errors=True)
    return {"machine": machine(), "dataset": dataset, "chars": len(text), "split_sentences_seconds": split_s,
            "chunks": report.chunks, "sentences": len(sentence_texts), "ingest_seconds": round(ingest_s, 2),
            "bare_model_chunks_seconds": round(chunks_s, 2), "bare_model_all_inputs_seconds": round(all_s, 2),
            "ingest_over_bare_chunks": round(ingest_s / chunks_s, 2),
            "ingest_over_bare_all_inputs": round(ingest_s / all_s, 2)}


# --- query -----------------------------------------------------------------------------------------
def bench_query(index: str, index_dir: str, questions: list[str], clients: int) -> dict:
    """In-process and HTTP latency of /answer and /search, one client and `clients` at once, with the
    server's start-up time to its first answer and its resident memory."""
    import httpx

    from eval.load import served
    from rag.archive import Archive
    from rag.query import Query

    rss0, t = rss_bytes(), time.perf_counter()
    archive = Archive.open(index, index_dir)
    archive.answer(Query("warm up"))
    chunks = len(archive.derived().vectors)
    out: dict = {"machine": machine(), "index": index, "chunks": chunks, "index_type": archive.derived().vectors.kind,
                 "questions": len(questions), "in_process_open_to_first_answer_s": round(time.perf_counter() - t, 2),
                 "in_process_rss_growth_bytes": rss_bytes() - rss0, "in_process": {}, "http": {}}
    vectors = archive.derived().vectors
    bare = lambda q: vectors.search(archive.embedder.encode_query(q), 5)  # the floor: encode + exact FAISS
    out["bare_work"] = timed_calls(bare, questions, 1)
    for name, call in (("answer", lambda q: archive.answer(Query(q))), ("search", lambda q: archive.search(Query(q)))):
        out["in_process"][name] = {"1": timed_calls(call, questions, 1),
                                   str(clients): timed_calls(call, questions, clients)}
    started = time.perf_counter()
    with served(index, index_dir, timeout_s=1800) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        http.post("/answer", json={"question": questions[0]}).raise_for_status()
        out["server_start_to_first_answer_s"] = round(time.perf_counter() - started, 2)
        local = threading.local()  # one kept-alive connection per client thread, as a real client holds
        opened: list[httpx.Client] = []

        def client() -> httpx.Client:
            if not hasattr(local, "http"):
                local.http = httpx.Client(base_url=server.url, timeout=60)
                opened.append(local.http)
            return local.http

        for name in ("answer", "search"):
            call = lambda q, name=name: client().post(f"/{name}", json={"question": q}).raise_for_status()
            single = lambda q, name=name: http.post(f"/{name}", json={"question": q}).raise_for_status()
            out["http"][name] = {"1": timed_calls(single, questions, 1),
                                 str(clients): timed_calls(call, questions, clients)}
        for c in opened:
            c.close()
        out["http_answer_p50_over_bare_work_p50"] = round(out["http"]["answer"]["1"]["p50"] / out["bare_work"]["p50"], 2)
        out["server_rss_bytes"] = rss_bytes(server.process.pid)
        out["server_rss_bytes_per_chunk"] = round(out["server_rss_bytes"] / chunks, 1)
    return out


# --- vectors and BM25 at synthetic sizes -------------------------------------------------------------
def real_vectors(index: str, index_dir: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Chunk vectors (the base of the synthetic data), sentence vectors (the queries) and chunk texts,
    read from the index's SQLite file opened read-only (any format version, never written)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{Path(index_dir) / index / 'meta.sqlite'}?mode=ro", uri=True)
    vectors = lambda sql: np.vstack([np.frombuffer(r[0], dtype=np.float32) for r in conn.execute(sql)])
    base = vectors("SELECT vector FROM chunks ORDER BY id")
    queries = vectors("SELECT vector FROM sentences ORDER BY id")
    texts = [r[0] for r in conn.execute('SELECT substr(a.text, c.start + 1, c."end" - c.start) FROM chunks c '
                                        "JOIN articles a ON a.id = c.article_id ORDER BY c.id")]
    conn.close()
    return base, queries, texts


def synthetic(base: np.ndarray, start: int, stop: int, noise: float) -> np.ndarray:
    """Rows start..stop: real vector `i % len(base)` plus Gaussian noise of norm ~`noise`, re-normalised.

    Seeded by the row range, so the same rows come out on every call (built twice without storing them)."""
    return noisy(base[np.arange(start, stop) % len(base)], np.random.default_rng(start), noise)


def _build(kind: str, base: np.ndarray, size: int, noise: float, nprobe: int | None):
    from rag.vectors import VectorIndex, sample_size

    rss0, t = rss_bytes(), time.perf_counter()
    if kind == "flat-ip":
        index = VectorIndex.empty(base.shape[1])
    else:
        step = max(size // sample_size(size), 1)
        sample = np.vstack([synthetic(base, i, min(i + 100_000, size), noise)[::step] for i in range(0, size, 100_000)])
        index = VectorIndex.approximate(base.shape[1], sample, size, nprobe)
        del sample
    for i in range(0, size, 100_000):
        index.add(np.arange(i, min(i + 100_000, size)), synthetic(base, i, min(i + 100_000, size), noise))
    return index, time.perf_counter() - t, rss_bytes() - rss0


def bench_vectors(index: str, index_dir: str, sizes: list[int], noise: float, n_queries: int,
                  nprobes: list[int], bm25_size: int) -> dict:
    """Both index kinds at each size: build seconds, resident bytes per chunk, latency, recall@10."""
    import faiss

    base, queries, texts = real_vectors(index, index_dir)
    queries = queries[np.random.default_rng(7).choice(len(queries), n_queries, replace=False)]
    out: dict = {"machine": machine(), "faiss_threads": faiss.omp_get_max_threads(), "base_index": index,
                 "base_vectors": len(base), "noise_norm": noise, "queries": n_queries,
                 "queries_from": "stored sentence vectors of the base index", "sizes": []}
    for size in sizes:
        row: dict = {"chunks": size}
        exact, build_s, rss = _build("flat-ip", base, size, noise, None)
        truth = [[i for i, _ in exact.search(q, 10)] for q in queries]
        row["flat-ip"] = {"build_s": round(build_s, 2), "rss_bytes_per_chunk": round(rss / size, 1),
                          "search_ms": percentiles([_time(lambda q=q: exact.search(q, 10)) for q in queries])}
        allowed = np.arange(0, size, 97)  # a filter keeping ~1% of chunks
        row["flat-ip"]["filtered_1pct_ms"] = percentiles([_time(lambda q=q: exact.search(q, 10, allowed)) for q in queries])
        del exact
        approx, build_s, rss = _build("ivf-fp16", base, size, noise, None)
        row["ivf-fp16"] = {"build_s": round(build_s, 2), "rss_bytes_per_chunk": round(rss / size, 1),
                          "params": approx.params, "by_nprobe": {}}
        for nprobe in sorted(set(nprobes + [approx.params["nprobe"]])):
            approx.index.nprobe = min(nprobe, approx.index.nlist)
            found = [[i for i, _ in approx.search(q, 10)] for q in queries]
            recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
            row["ivf-fp16"]["by_nprobe"][str(nprobe)] = {
                "recall@10": round(recall, 4),
                "search_ms": percentiles([_time(lambda q=q: approx.search(q, 10)) for q in queries])}
        approx.index.nprobe = row["ivf-fp16"]["params"]["nprobe"]
        row["ivf-fp16"]["filtered_1pct_ms"] = percentiles([_time(lambda q=q: approx.search(q, 10, allowed)) for q in queries])
        del approx
        out["sizes"].append(row)
        print(f"newsrag bench: vectors at {size} chunks done", file=sys.stderr)
    out["bm25"] = bench_bm25(texts, bm25_size, n_queries)
    return out


def bench_bm25(texts: list[str], size: int, n_queries: int) -> dict:
    """BM25 over `size` chunk texts: the real ones repeated, each copy with a distinct marker word and
    its sentences rotated, so no two documents are identical."""
    from rag.lexical import LexicalIndex
    from rag.settings import BM25Settings

    docs = []
    for i in range(size):
        parts = texts[i % len(texts)].split(". ")
        turn = (i // len(texts)) % max(len(parts), 1)
        docs.append(". ".join(parts[turn:] + parts[:turn]) + f" copy{i // len(texts)}")
    rss0, t = rss_bytes(), time.perf_counter()
    bm25 = BM25Settings()
    lexical = LexicalIndex.build(list(range(size)), docs, bm25.k1, bm25.b)
    build_s = time.perf_counter() - t
    rss = rss_bytes() - rss0
    questions = [" ".join(texts[j].split()[:8]) + "?" for j in np.random.default_rng(3).choice(len(texts), n_queries)]
    return {"chunks": size, "build_s": round(build_s, 2), "rss_bytes_per_chunk": round(rss / size, 1),
            "search_ms": percentiles([_time(lambda q=q: lexical.search(q, 100)) for q in questions]),
            "query_from": "the first 8 words of a real chunk, with '?'"}


# --- output ------------------------------------------------------------------------------------------
def markdown(kind: str, result: dict) -> str:
    """A short table of the headline figures; the JSON holds everything."""
    m = result["machine"]
    head = f"{m['cores']} cores, load average {m['load_average']}, {m['time']}\n\n"
    if kind == "ingest":
        p, b = result["pipeline"], result["bare_model"]
        return head + "\n".join([
            "| measure | value |", "|---|---|",
            f"| articles / chunks / sentences | {result['articles']} / {result['chunks']} / {result['sentence_texts']} |",
            f"| pipeline: articles/s, chunks/s, chunk tokens/s | {p['articles_per_s']}, {p['chunks_per_s']}, {p['chunk_tokens_per_s']} |",
            f"| bare model: chunks/s, chunk tokens/s | {b['chunks_per_s']}, {b['chunk_tokens_per_s']} |",
            f"| ratio vs chunks only | {result['ratio_vs_chunks_only']} |",
            f"| ratio vs all embedded texts (chunks + sentences) | {result['ratio_vs_all_embedded_texts']} |",
            f"| ratio vs all embedded texts in one length-sorted pass | {result['ratio_vs_all_embedded_one_pass']} |",
            f"| sentence embedding share of ingest time | {result['sentence_embedding_share_of_ingest']} |"]) + "\n"
    if kind == "query":
        lines = ["| where | endpoint | clients | p50 ms | p95 ms | p99 ms | q/s |", "|---|---|---|---|---|---|---|"]
        for where in ("in_process", "http"):
            for name, by in result[where].items():
                for c, r in by.items():
                    lines.append(f"| {where} | /{name} | {c} | {r['p50']} | {r['p95']} | {r['p99']} | {r['queries_per_s']} |")
        lines.append(f"| in_process | bare work (encode the question + exact FAISS top 5) | 1 | {result['bare_work']['p50']} | "
                     f"{result['bare_work']['p95']} | {result['bare_work']['p99']} | {result['bare_work']['queries_per_s']} |")
        lines.append(f"\n/answer over HTTP p50 / bare work p50: **{result['http_answer_p50_over_bare_work_p50']}x**")
        return (head + f"index {result['index']} ({result['chunks']} chunks, {result['index_type']}); start-up to "
                f"first answer {result['server_start_to_first_answer_s']} s; server RSS "
                f"{result['server_rss_bytes'] / 2**20:.0f} MiB ({result['server_rss_bytes_per_chunk']:.0f} B/chunk)\n\n"
                + "\n".join(lines) + "\n")
    if kind == "long":
        split = ", ".join(f"{size:,} chars {sec} s" for size, sec in result["split_sentences_seconds"].items())
        return head + (f"split_sentences: {split}\n\ningest of one {result['chars']:,}-char article "
                       f"({result['chunks']} chunks, {result['sentences']} sentences): {result['ingest_seconds']} s; "
                       f"bare model encoding its chunks {result['bare_model_chunks_seconds']} s (ratio "
                       f"{result['ingest_over_bare_chunks']}), all its chunk and sentence inputs "
                       f"{result['bare_model_all_inputs_seconds']} s (ratio {result['ingest_over_bare_all_inputs']})\n")
    if kind == "stories":
        step, rate = result["story_step"], result["articles_per_s"]
        return head + (f"{result['articles']} articles (our labelled set and the sample corpus), {result['rounds']} "
                       f"alternated ingests of each variant: stories on {rate['stories_on']} articles/s, off "
                       f"{rate['stories_off']} articles/s, throughput ratio on/off **{result['throughput_ratio_on_over_off']}** "
                       f"(by this process's CPU time: **{result['cpu_throughput_ratio_on_over_off']}**) "
                       f"(load average {result['load_average']['before']} -> {result['load_average']['after']}); the story "
                       f"step alone: {step['story_ms_per_article']} ms per article\n")
    if kind == "writes":
        lines = ["| chunks | segments before/after | ingest s (median, max) | its embedding s (median) | ingest reusing "
                 "stored vectors s (median, max) | delete s (median, max) | another open sees it, s | load |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in result["sizes"]:
            reuse = r["ingest_reusing_vectors_s"]
            lines.append(f"| {r['chunks']} | {r['segments_before']}/{r['segments_after']} | {r['ingest_s']['median']}, "
                         f"{r['ingest_s']['max']} | {r['embed_s']['median']} | {reuse['median']}, {reuse['max']} | "
                         f"{r['delete_s']['median']}, {r['delete_s']['max']} | "
                         f"{r['reader_refresh_after_ingest_s']['median']} / {r['reader_refresh_after_delete_s']['median']} | "
                         f"{r['load_average_before'][0]} -> {r['load_average_after'][0]} |")
        for r in result["sizes"]:
            b = r["store"]["bytes_per_chunk"]
            lines.append(f"\n{r['chunks']} chunks on disk: {b['total']} B/chunk ({', '.join(f'{t} {n}' for t, n in b.items() if t != 'total')}); "
                         f"float16 chunk and sentence vectors would make it {r['store']['total_with_float16_vectors_bytes_per_chunk']} "
                         f"B/chunk, with recall@10 {r['store']['float16_chunk_vectors_recall@10']} of exact search over them")
        for r in result["sizes"]:
            if "answer_during_writes" in r:
                a = r["answer_during_writes"]
                q, b = a["answer_ms_quiet"], a["answer_ms_during_writes"]
                lines.append(f"\n{r['chunks']} chunks: one client's /answer p50/p99 {q['p50']}/{q['p99']} ms quiet, "
                             f"{b['p50']}/{b['p99']} ms while a write (ingest or delete of one article) came every "
                             f"{a['write_every_s']} s (write p50 {a['write_ms']['p50']} ms)")
        return head + "\n".join(lines) + "\n"
    if kind == "synthetic":
        return head + (f"index {result['index']} in {result['index_dir']}: {result['articles']} articles, {result['chunks']} "
                       f"chunks, {result['sentences']} sentences ({result['copies']} copies of {result['base']}, noise "
                       f"{result['noise_norm']}); {result['index_type']} {result['index_params']}; written in "
                       f"{result['write_s']} s, FAISS and BM25 derived in {result['derive_s']} s; "
                       f"{result['disk_bytes'] / 2**30:.2f} GiB on disk\n")
    lines = ["| chunks | index | params | build s | RSS B/chunk | recall@10 | p50 ms | p99 ms | 1%-filter p50 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["sizes"]:
        f = row["flat-ip"]
        lines.append(f"| {row['chunks']} | flat-ip | exact | {f['build_s']} | {f['rss_bytes_per_chunk']} | 1.0 | "
                     f"{f['search_ms']['p50']} | {f['search_ms']['p99']} | {f['filtered_1pct_ms']['p50']} |")
        a = row["ivf-fp16"]
        for nprobe, r in a["by_nprobe"].items():
            lines.append(f"| {row['chunks']} | ivf-fp16 | nlist {a['params']['nlist']}, nprobe {nprobe} | {a['build_s']} | "
                         f"{a['rss_bytes_per_chunk']} | {r['recall@10']} | {r['search_ms']['p50']} | {r['search_ms']['p99']} | "
                         f"{a['filtered_1pct_ms']['p50'] if int(nprobe) == a['params']['nprobe'] else ''} |")
    b = result["bm25"]
    lines.append(f"\nBM25 over {b['chunks']} chunks: build {b['build_s']} s, {b['rss_bytes_per_chunk']} B/chunk, "
                 f"search p50 {b['search_ms']['p50']} ms, p99 {b['search_ms']['p99']} ms.")
    return head + "\n".join(lines) + "\n"


def bench_writes_at(size: int, base: Path, index_dir: Path, noise: float, rounds: int, answer_seconds: float,
                    write_every: float, dataset: str) -> dict:
    """`bench writes` at one size: the synthetic index `writes-<size>` (built unless one of that size
    exists), then the timed writes, then (`answer_seconds` > 0) /answer latency during writes."""
    from eval.synthetic import MARKER, build
    from eval.writes import answer_during_writes, bench_writes, store_report
    from rag.archive import Archive

    name, marker = f"writes-{size}", index_dir / f"writes-{size}" / MARKER
    built = json.loads(marker.read_text()) if marker.exists() else None
    if built is None or built.get("requested_chunks") != size:
        built = {**build(base, name, index_dir, size, noise), "requested_chunks": size, "load_average": machine()["load_average"]}
        marker.write_text(json.dumps(built, indent=2))
    out = {"built": built, "load_average_before": machine()["load_average"],
           **bench_writes(name, index_dir, rounds), "load_average_after": machine()["load_average"]}
    out["store"] = store_report(Archive.open(name, index_dir))
    if answer_seconds > 0:
        from eval.datasets import load_squad

        questions = [q.question for q in load_squad(dataset).questions][:100]
        out["answer_during_writes"] = {**answer_during_writes(name, index_dir, questions, answer_seconds, write_every),
                                       "load_average_after": machine()["load_average"]}
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="newsrag bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    i = sub.add_parser("ingest", help="pipeline ingest throughput beside the bare model")
    i.add_argument("--dataset", default=SQUAD, help=f"a SQuAD JSON file or folder (default {SQUAD})")
    i.add_argument("--limit", type=int, default=300, help="paragraphs (articles) to ingest (default 300)")
    i.add_argument("--work-dir", default=".cache/bench", help="where the throw-away index is built")
    i.add_argument("--keep", action="store_true", help="keep the index (bench-ingest) for `bench query`")
    i.add_argument("--rounds", type=int, default=1, help="alternate ingest and bare encoding this often; medians")
    q = sub.add_parser("query", help="/answer and /search latency, in-process and over HTTP")
    q.add_argument("--index", default="bench-ingest", help="default: the index `bench ingest --keep` left")
    q.add_argument("--index-dir", default=".cache/bench")
    q.add_argument("--dataset", default=SQUAD, help="SQuAD file or folder the questions come from")
    q.add_argument("--questions", type=int, default=100)
    q.add_argument("--clients", type=int, default=8)
    v = sub.add_parser("vectors", help="vector search and BM25 at synthetic sizes")
    v.add_argument("--index", default="scifact", help="prebuilt index whose real vectors seed the synthetic ones")
    v.add_argument("--index-dir", default=PREBUILT)
    v.add_argument("--sizes", default="10000,100000,1000000")
    v.add_argument("--noise", type=float, default=0.3, help="norm of the Gaussian noise added to each real vector")
    v.add_argument("--queries", type=int, default=200)
    v.add_argument("--nprobe", default="8,16,32,64", help="nprobe values to measure recall at")
    v.add_argument("--bm25-size", type=int, default=100_000)
    lc = sub.add_parser("langchain", help="ingest and query beside LangChain's FAISS store (needs the bench extra)")
    lc.add_argument("--dataset", default=SQUAD, help=f"a SQuAD JSON file or folder (default {SQUAD})")
    lc.add_argument("--limit", type=int, default=300, help="paragraphs (articles) both sides ingest (default 300)")
    lc.add_argument("--questions", type=int, default=200, help="questions about those paragraphs (default 200)")
    lc.add_argument("-k", type=int, default=5, help="results per query (default 5)")
    lc.add_argument("--rounds", type=int, default=1, help="build both sides this often, in turn; median build times")
    lc.add_argument("--work-dir", default=".cache/bench", help="where the throw-away index is built")
    sy = sub.add_parser("synthetic", help="build a large index from copies of a built one (for `bench query`)")
    sy.add_argument("--chunks", type=int, required=True, help="about how many chunks (whole articles are copied)")
    sy.add_argument("--name", required=True, help="index name, e.g. synthetic-100k")
    sy.add_argument("--index-dir", default=".cache/bench")
    sy.add_argument("--base", default=SYNTHETIC_BASE,
                    help="folder of the built index to copy (default: the harness's SQuAD v1.1 dev index)")
    sy.add_argument("--noise", type=float, default=0.3, help="norm of the Gaussian noise added to copied vectors")
    wr = sub.add_parser("writes", help="one-article ingest and delete to durable and visible, at growing sizes")
    wr.add_argument("--sizes", default="10000,100000", help="chunks of each synthetic index (built if missing)")
    wr.add_argument("--rounds", type=int, default=5, help="ingests and deletes at each size; medians (default 5)")
    wr.add_argument("--index-dir", default=".cache/bench")
    wr.add_argument("--base", default=SYNTHETIC_BASE, help="folder of the built index the synthetic ones copy")
    wr.add_argument("--noise", type=float, default=0.3, help="norm of the Gaussian noise added to copied vectors")
    wr.add_argument("--answer-seconds", type=float, default=0,
                    help="also time one client's /answer for this long quiet, then as long during writes (0: skip)")
    wr.add_argument("--write-every", type=float, default=1.0, help="seconds between writes while /answer is timed")
    wr.add_argument("--dataset", default=SQUAD, help="SQuAD file or folder the /answer questions come from")
    lg = sub.add_parser("long", help="one 1M-char article: sentence splitting and ingest beside the bare model")
    lg.add_argument("--dataset", default=SQUAD, help="SQuAD file or folder whose paragraphs make the prose")
    lg.add_argument("--chars", type=int, default=1_000_000)
    lg.add_argument("--work-dir", default=".cache/bench", help="where the throw-away index is built")
    st = sub.add_parser("stories", help="ingest throughput with stories on and off, and the story step's own cost")
    st.add_argument("--rounds", type=int, default=3, help="ingests of each variant, alternated; medians (default 3)")
    st.add_argument("--work-dir", default=".cache/bench", help="where the throw-away indexes are built")
    nw = sub.add_parser("news", help="news-shaped articles (2k-60k chars): articles/s and model tokens/s beside the bare model")
    nw.add_argument("--sources", default=",".join(NEWS_SOURCES), help="SQuAD files or folders whose paragraphs make the prose")
    nw.add_argument("--articles", type=int, default=1000, help="articles to make and ingest (default 1000)")
    nw.add_argument("--seed", type=int, default=0)
    nw.add_argument("--work-dir", default=".cache/bench", help="where the throw-away index is built")
    for s in (i, q, v, lc, sy, wr, lg, st, nw):
        s.add_argument("--out", required=True, help="folder for <what>.json and <what>.md")
    return p


def main(argv: list[str]) -> int:
    """Entry point from `eval.cli`: argv is what follows `newsrag bench`."""
    args = _parser().parse_args(argv)
    if args.what == "ingest":
        result = bench_ingest(args.dataset, args.limit, Path(args.work_dir), args.keep, args.rounds)
    elif args.what == "query":
        from eval.datasets import load_squad

        questions = [q.question for q in load_squad(args.dataset).questions][: args.questions]
        result = bench_query(args.index, args.index_dir, questions, args.clients)
    elif args.what == "langchain":
        from eval.peer import bench_langchain

        result = bench_langchain(args.dataset, args.limit, args.questions, args.k, Path(args.work_dir), args.rounds)
    elif args.what == "news":
        from eval.news import bench_news

        result = bench_news(args.sources.split(","), args.articles, args.seed, Path(args.work_dir))
    elif args.what == "long":
        result = bench_long_article(args.dataset, args.chars, Path(args.work_dir))
    elif args.what == "stories":
        from eval.stories import bench_ingest as bench_stories

        result = {"machine": machine(), **bench_stories(Path(args.work_dir), args.rounds)}
    elif args.what == "writes":
        result = {"machine": machine(), "sizes": [
            bench_writes_at(size, Path(args.base), Path(args.index_dir), args.noise, args.rounds, args.answer_seconds,
                            args.write_every, args.dataset)
            for size in (int(s) for s in args.sizes.split(","))], "machine_after": machine()}
    elif args.what == "synthetic":
        from eval.synthetic import build

        result = {"machine": machine(), **build(Path(args.base), args.name, Path(args.index_dir), args.chunks, args.noise)}
    else:
        result = bench_vectors(args.index, args.index_dir, [int(s) for s in args.sizes.split(",")], args.noise,
                               args.queries, [int(s) for s in args.nprobe.split(",")], args.bm25_size)
    result["command"] = "newsrag bench " + " ".join(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.what}.json").write_text(json.dumps(result, indent=2))
    if args.what == "langchain":
        from eval.peer import markdown as peer_markdown

        table = peer_markdown(result)
    elif args.what == "news":
        from eval.news import markdown as news_markdown

        table = news_markdown(result)
    else:
        table = markdown(args.what, result)
    (out / f"{args.what}.md").write_text(table)
    print(table)
    return 0

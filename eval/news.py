"""`newsrag bench news`: ingest throughput on news-shaped articles, beside the bare model.

SQuAD paragraphs are short (~700 chars) and one each, where news articles run to thousands of
characters (the news set we keep aside: median 5,900 chars, p99 64k). This benchmark makes articles
of that shape from real prose read by path (nothing is copied into the repository): lengths drawn
log-normally around a 5,900-char median and kept within 2k-60k chars, each a run of consecutive
paragraphs of the SQuAD files given, titled and dated like a news item. Every article gets its own
title, which the model reads with each chunk, so no two articles share an embedding input and the
index's vector cache cannot flatter the figures.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import numpy as np

from eval.bench import machine

MEDIAN_CHARS, MIN_CHARS, MAX_CHARS = 5_900, 2_000, 60_000
SPREAD = 1.0  # sigma of the log-normal: with the 5,900 median it puts p99 near 60k, as in news


def _paragraphs(sources: list[str]) -> list[tuple[str, str]]:
    """(title, paragraph) of every paragraph in the SQuAD files, in file order."""
    from eval.datasets import load_squad

    return [(a.title, a.text) for source in sources for a in load_squad(source).articles]


def news_articles(sources: list[str], n: int, seed: int = 0) -> list:
    """`n` articles of 2k-60k chars, each consecutive paragraphs from a random place in the sources."""
    from rag.articles import make_article

    paragraphs = _paragraphs(sources)
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.exp(rng.normal(np.log(MEDIAN_CHARS), SPREAD, n)), MIN_CHARS, MAX_CHARS).astype(int)
    articles = []
    for i, target in enumerate(lengths):
        at = int(rng.integers(len(paragraphs)))
        title, parts, size = paragraphs[at][0], [], -2  # no separator before the first
        while size < target:
            parts.append(paragraphs[at % len(paragraphs)][1])
            size += len(parts[-1]) + 2
            at += 1
        text = "\n\n".join(parts)
        if len(text) > MAX_CHARS:
            text = text[: text.rfind(". ", 0, MAX_CHARS) + 1]
        date = dt.date(2025, 1, 1) + dt.timedelta(days=i % 365)
        articles.append(make_article({"id": f"news-{i:04d}", "title": f"{title}: report {i}", "date": date.isoformat(),
                                      "source": "bench", "text": text}, f"news {i}"))
    return articles


def bench_news(sources: list[str], n: int, seed: int, work: Path) -> dict:
    """Ingest the articles into a fresh index, then encode its chunk inputs with the bare model, in one
    process; wall and CPU seconds of each, and the rates in articles and model tokens (word pieces)."""
    from rag.archive import Archive
    from rag.ingest import embed_input

    articles = news_articles(sources, n, seed)
    chars = np.array([len(a.text) for a in articles])
    shutil.rmtree(work / "bench-news", ignore_errors=True)
    archive = Archive.open("bench-news", work, create=True)
    embedder = archive.embedder
    embedder.encode(["warm up the model before any clock starts"])
    load_before = machine()["load_average"]
    wall, cpu = time.perf_counter(), time.process_time()
    report = archive.ingest(articles)
    ingest_s, ingest_cpu = time.perf_counter() - wall, time.process_time() - cpu
    by_id = {a.id: a for a in articles}
    inputs = [embed_input(by_id[a].title, by_id[a].text[s:e]) for a, s, e in archive.store.chunk_spans()]
    sentences = archive.store.count("sentences")
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.encode(inputs)
    bare_s, bare_cpu = time.perf_counter() - wall, time.process_time() - cpu
    tokens = sum(min(embedder.count_model_tokens(t), embedder.max_tokens) + 2 for t in inputs)
    shutil.rmtree(work / "bench-news", ignore_errors=True)
    return {
        "machine": machine(), "load_average_before": load_before, "sources": sources, "seed": seed,
        "articles": len(articles), "chunks": report.chunks, "sentences": sentences,
        "chars": {"total": int(chars.sum()), "median": int(np.median(chars)), "p99": int(np.percentile(chars, 99)),
                  "min": int(chars.min()), "max": int(chars.max())},
        "model_tokens": tokens, "model_tokens_means": "word pieces of the chunk inputs, [CLS] and [SEP] included",
        "pipeline": {"seconds": round(ingest_s, 2), "cpu_seconds": round(ingest_cpu, 2),
                     "articles_per_s": round(len(articles) / ingest_s, 2),
                     "model_tokens_per_s": round(tokens / ingest_s, 1)},
        "bare_model": {"seconds": round(bare_s, 2), "cpu_seconds": round(bare_cpu, 2),
                       "articles_per_s": round(len(articles) / bare_s, 2),
                       "model_tokens_per_s": round(tokens / bare_s, 1)},
        "ratio_pipeline_over_bare": round(bare_s / ingest_s, 3),
        "cpu_ratio_pipeline_over_bare": round(bare_cpu / ingest_cpu, 3),
    }


def markdown(result: dict) -> str:
    """The headline figures; the JSON holds everything."""
    m, c, p, b = result["machine"], result["chars"], result["pipeline"], result["bare_model"]
    return "\n".join([
        f"{m['cores']} cores, load average {result['load_average_before']} -> {m['load_average']}, {m['time']}; "
        f"{result['articles']} articles, {c['min']:,}-{c['max']:,} chars (median {c['median']:,}, p99 {c['p99']:,}), "
        f"{result['chunks']} chunks, {result['sentences']} sentences, {result['model_tokens']:,} model tokens", "",
        "| | seconds | CPU seconds | articles/s | model tokens/s |", "|---|---|---|---|---|",
        f"| pipeline (`Archive.ingest`, end to end) | {p['seconds']} | {p['cpu_seconds']} | {p['articles_per_s']} | "
        f"{p['model_tokens_per_s']} |",
        f"| bare model encoding the chunk inputs | {b['seconds']} | {b['cpu_seconds']} | {b['articles_per_s']} | "
        f"{b['model_tokens_per_s']} |", "",
        f"Pipeline / bare model: **{result['ratio_pipeline_over_bare']}** (by CPU time "
        f"{result['cpu_ratio_pipeline_over_bare']})."]) + "\n"

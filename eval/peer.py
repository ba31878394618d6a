"""`newsrag bench langchain`: our ingest and queries beside the same job done the common way, in one run.

The common way: LangChain's `RecursiveCharacterTextSplitter` (chunks of 1000 characters with 200 of
overlap, its tutorials' values), `HuggingFaceEmbeddings` over the very weights we use (the packaged
all-MiniLM-L6-v2 folder) and `FAISS.from_documents`; a query is `similarity_search(question, k)`.
Both sides get the same SQuAD paragraphs and questions, in the same process, after both models are
loaded and warmed, and both encode questions on one torch thread (batches keep torch's default);
the four query kinds are timed question by question in turn, so a change of load touches all alike.
Retrieval quality is recall@1 and recall@5 of each question's gold paragraph among the articles of
the first 1 and 5 results, so a speed-up is not bought with accuracy. Needs the `bench` extra.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from eval.bench import machine, percentiles

CHUNK_CHARS, OVERLAP_CHARS = 1000, 200


def _langchain():
    """LangChain's parts, or a clear message naming the extra that installs them."""
    try:
        with warnings.catch_warnings():  # langchain-community says it is being sunset; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.embeddings import HuggingFaceEmbeddings
            from langchain_community.vectorstores import FAISS
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter
    except ImportError as exc:
        raise SystemExit(f"newsrag bench langchain needs LangChain: pip install 'newsrag[bench]' ({exc})") from exc
    return HuggingFaceEmbeddings, FAISS, Document, RecursiveCharacterTextSplitter


def recall(ranked: list[list[str]], gold: list[str], k: int) -> float:
    """Share of questions whose gold article is among the articles of their first k results."""
    return round(float(np.mean([g in r[:k] for r, g in zip(ranked, gold)])), 4)


def bench_langchain(dataset: str, limit: int, n_questions: int, k: int, work: Path, rounds: int = 1) -> dict:
    """Build both indexes over the first `limit` SQuAD paragraphs and ask both the same questions.

    `rounds` > 1 builds both that many times, in turn, and reports the median build times (the load of
    a shared machine drifts); the last round's indexes answer the questions."""
    import torch

    from eval.datasets import load_squad
    from rag.archive import Archive
    from rag.query import Query
    from rag.embedding import resolve_model_path

    HuggingFaceEmbeddings, FAISS, Document, Splitter = _langchain()
    data = load_squad(dataset)
    articles = data.articles[:limit]
    kept = {a.id for a in articles}
    pool = [q for q in data.questions if set(q.relevant) <= kept]
    picks = np.random.default_rng(0).choice(len(pool), min(n_questions, len(pool)), replace=False)
    questions = [pool[i] for i in sorted(picks)]
    texts, gold = [q.question for q in questions], [next(iter(q.relevant)) for q in questions]

    shutil.rmtree(work / "bench-peer", ignore_errors=True)
    ours = Archive.open("bench-peer", work, create=True)
    ours.embedder.encode(["warm up the model before any clock starts"])
    with warnings.catch_warnings():  # the same class lives on in langchain-huggingface, whose pin of
        warnings.simplefilter("ignore", DeprecationWarning)  # huggingface-hub<2 conflicts with transformers 5
        embeddings = HuggingFaceEmbeddings(model_name=resolve_model_path(ours.embedder.name),
                                           model_kwargs={"device": "cpu"})
    batch_threads = torch.get_num_threads()
    embeddings.embed_documents(["warm up the model before any clock starts"])

    builds: dict[str, list[float]] = {"newsrag": [], "langchain": []}
    for round_ in range(rounds):
        if round_:
            shutil.rmtree(work / "bench-peer", ignore_errors=True)
            ours = Archive.open("bench-peer", work, create=True)
        t = time.perf_counter()
        report = ours.ingest(articles)
        builds["newsrag"].append(time.perf_counter() - t)
        t = time.perf_counter()
        splitter = Splitter(chunk_size=CHUNK_CHARS, chunk_overlap=OVERLAP_CHARS)
        chunks = splitter.split_documents([Document(page_content=a.text, metadata={"article_id": a.id}) for a in articles])
        store = FAISS.from_documents(chunks, embeddings)
        builds["langchain"].append(time.perf_counter() - t)
    ours_build, theirs_build = (float(np.median(builds[side])) for side in ("newsrag", "langchain"))

    article_ids = lambda passages: [p.article.id for p in passages]
    calls = {"search": lambda q: article_ids(ours.search(Query(q, k)).passages),
             "dense": lambda q: article_ids(ours.search(Query(q, k, "dense")).passages),
             "answer": lambda q: [p["article_id"] for p in ours.answer(Query(q, k))["passages"]],
             "langchain": lambda q: [d.metadata["article_id"] for d in store.similarity_search(q, k=k)]}
    ranked: dict[str, list] = {name: [] for name in calls}
    ms: dict[str, list[float]] = {name: [] for name in calls}
    torch.set_num_threads(1)  # questions on one thread, as rag/embedding.py encodes them
    try:
        for call in calls.values():
            call(texts[0])
        for q in texts:  # interleaved, so a change of load during the run touches all four alike
            for name, call in calls.items():
                t = time.perf_counter()
                ranked[name].append(call(q))
                ms[name].append((time.perf_counter() - t) * 1e3)
    finally:
        torch.set_num_threads(batch_threads)
    ours_search, ours_dense, ours_answer, theirs_search = (percentiles(ms[n]) for n in calls)
    ranked_search, ranked_dense, ranked_theirs = ranked["search"], ranked["dense"], ranked["langchain"]
    texts_embedded = ours.count("chunks") + ours.count("sentences")
    shutil.rmtree(work / "bench-peer", ignore_errors=True)

    quality = lambda ranked: {"recall@1": recall(ranked, gold, 1), "recall@5": recall(ranked, gold, 5)}
    return {
        "machine": machine(), "dataset": dataset, "articles": len(articles), "questions": len(texts), "k": k,
        "rounds": rounds, "build_s_per_round": {side: [round(x, 3) for x in v] for side, v in builds.items()},
        "newsrag": {"chunks": report.chunks, "texts_embedded": texts_embedded, "build_s": round(ours_build, 3),
                    "what_build_does": "chunks and sentences embedded, dates, "
                                        "SQLite, FAISS and BM25",
                    "search_ms": ours_search, "search_dense_ms": ours_dense, "answer_ms": ours_answer,
                    "quality_search": quality(ranked_search), "quality_search_dense": quality(ranked_dense)},
        "langchain": {"chunks": len(chunks), "texts_embedded": len(chunks), "build_s": round(theirs_build, 3),
                      "splitter": {"chunk_size": CHUNK_CHARS, "chunk_overlap": OVERLAP_CHARS},
                      "what_build_does": "split, chunks embedded, FAISS (flat L2)",
                      "search_ms": theirs_search, "quality_search": quality(ranked_theirs)},
        "ratios": {
            "build_s_ours_over_theirs": round(ours_build / theirs_build, 2),
            "build_ratio_per_round": [round(a / b, 2) for a, b in zip(builds["newsrag"], builds["langchain"])],
            "search_p50_ours_over_theirs": round(ours_search["p50"] / theirs_search["p50"], 2),
            "search_p95_ours_over_theirs": round(ours_search["p95"] / theirs_search["p95"], 2),
            "dense_search_p50_ours_over_theirs": round(ours_dense["p50"] / theirs_search["p50"], 2),
            "answer_p50_ours_over_theirs_search": round(ours_answer["p50"] / theirs_search["p50"], 2),
            "answer_p95_ours_over_theirs_search": round(ours_answer["p95"] / theirs_search["p95"], 2),
        },
    }


def markdown(result: dict) -> str:
    """The side-by-side table."""
    m, ours, theirs, r = result["machine"], result["newsrag"], result["langchain"], result["ratios"]
    row = lambda name, chunks, build, lat, q: (
        f"| {name} | {chunks} | {build} | {lat['p50']} | {lat['p95']} | {q['recall@1']} | {q['recall@5']} |")
    return "\n".join([
        f"{m['cores']} cores, load average {m['load_average']}, {m['time']}; {result['articles']} SQuAD paragraphs, "
        f"{result['questions']} questions, k={result['k']}", "",
        "| system | chunks | build s | query p50 ms | query p95 ms | R@1 | R@5 |", "|---|---|---|---|---|---|---|",
        row("LangChain FAISS + recursive splitter (search)", theirs["chunks"], theirs["build_s"], theirs["search_ms"],
            theirs["quality_search"]),
        row("newsrag search, dense", ours["chunks"], ours["build_s"], ours["search_dense_ms"], ours["quality_search_dense"]),
        row("newsrag search, hybrid (default)", ours["chunks"], ours["build_s"], ours["search_ms"], ours["quality_search"]),
        row("newsrag answer, hybrid (default)", ours["chunks"], ours["build_s"], ours["answer_ms"], ours["quality_search"]),
        "", f"Texts embedded: newsrag {ours['texts_embedded']} (chunks and sentences), LangChain {theirs['texts_embedded']}. "
            f"Ratios ours / LangChain: build {r['build_s_ours_over_theirs']}, search p50 "
            f"{r['search_p50_ours_over_theirs']} (dense {r['dense_search_p50_ours_over_theirs']}), answer p50 "
            f"{r['answer_p50_ours_over_theirs_search']}, answer p95 {r['answer_p95_ours_over_theirs_search']}."]) + "\n"

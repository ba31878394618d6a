"""Retrieval study: fit and compare retrieval stages on a prebuilt index, with the production code.

`fit` ranks every question with the production pieces (rag.lexical BM25, FAISS-equivalent exact
dense search, rag.retrieval.fuse, rag.rescore.features) over what ingest stored, caches each
question's candidate features, fits the second stage's weights on the tune half (coordinate
ascent on MRR@10) and reports both halves. `bm25` compares BM25 analyses. `check` measures the
real query path (`Archive.search`). Question vectors are encoded once and cached.

    python -m research.retrieval_study fit --set squad-v1.1:../shared/eval/squad-v1.1-dev:squad \
        --set scifact:../shared/eval/scifact:beir
    python -m research.retrieval_study check squad-v1.1 ../shared/eval/squad-v1.1-dev squad --split test
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from eval.datasets import Dataset, load_dataset, squad_split
from rag.embedding import shared_embedder
from rag.lexical import LexicalIndex
from rag.rescore import FEATURES, ChunkContext, RescoreWeights, features
from rag.retrieval import fuse
from rag.settings import BM25Settings, FusionSettings
from rag import terms as terms_module
from rag.terms import question_terms, stems

BM25 = BM25Settings()
CACHE = Path(".cache/retrieval_study")


@dataclass
class Corpus:
    """An index's chunks as arrays plus each chunk's second-stage context; `chunk_article[i]`
    indexes `article_ids`."""

    article_ids: list[str]
    titles: list[str]
    chunk_ids: np.ndarray
    chunk_article: np.ndarray
    chunk_texts: list[str]
    chunk_vectors: np.ndarray
    contexts: list[ChunkContext]


def load_corpus(index: Path) -> Corpus:
    """Everything the study needs from `meta.sqlite`, read-only."""
    conn = sqlite3.connect(f"file:{index / 'meta.sqlite'}?mode=ro", uri=True)
    articles = conn.execute("SELECT id, title, text FROM articles ORDER BY id").fetchall()
    position = {a[0]: i for i, a in enumerate(articles)}
    texts = {a[0]: a[2] for a in articles}
    titles = {a[0]: a[1] for a in articles}
    chunks = conn.execute('SELECT id, article_id, start, "end", vector FROM chunks ORDER BY id').fetchall()
    by_article: dict[str, list] = {}
    for s in conn.execute('SELECT article_id, start, "end", vector FROM sentences ORDER BY article_id, start'):
        by_article.setdefault(s[0], []).append(s)
    contexts = []
    for _, article_id, start, end, _ in chunks:
        inside = [s for s in by_article.get(article_id, []) if s[1] >= start and s[2] <= end]
        text = texts[article_id]
        vectors = np.vstack([np.frombuffer(s[3], dtype=np.float32) for s in inside]) if inside else np.zeros((0, 384), np.float32)
        contexts.append(ChunkContext(titles[article_id], text[start:end], [text[s[1]:s[2]] for s in inside], vectors))
    return Corpus(
        article_ids=[a[0] for a in articles], titles=[a[1] for a in articles],
        chunk_ids=np.array([c[0] for c in chunks], dtype=np.int64),
        chunk_article=np.array([position[c[1]] for c in chunks]),
        chunk_texts=[texts[c[1]][c[2]:c[3]] for c in chunks],
        chunk_vectors=np.vstack([np.frombuffer(c[4], dtype=np.float32) for c in chunks]),
        contexts=contexts,
    )


def query_vectors(name: str, questions: list[str]) -> np.ndarray:
    """Question vectors, encoded once and cached by the questions' hash."""
    digest = hashlib.sha1("\n".join(questions).encode()).hexdigest()[:12]
    path = CACHE / f"{name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    vectors = shared_embedder().encode(questions, batch_size=64)
    np.save(path, vectors)
    return vectors


def halves(dataset: Dataset) -> tuple[list[int], list[int]]:
    """Tune/test question rows: SQuAD's title split, else a seeded half of the questions."""
    if dataset.format == "squad":
        tune_ids = {q.id for q in squad_split(dataset, "tune").questions}
        tune = [i for i, q in enumerate(dataset.questions) if q.id in tune_ids]
    else:
        rng = np.random.default_rng(13)
        tune = sorted(rng.choice(len(dataset.questions), len(dataset.questions) // 2, replace=False).tolist())
    test = sorted(set(range(len(dataset.questions))) - set(tune))
    return tune, test


@dataclass
class Candidates:
    """Per question: the fused top chunks (corpus row numbers, fused order) and their FEATURES."""

    rows: list[np.ndarray]
    table: list[np.ndarray]
    bm25: list[list[tuple[int, float]]]  # BM25's own top (chunk row, score), for baselines
    dense: list[list[tuple[int, float]]]
    cosine: list[dict[int, float]]  # the cosine of every chunk in either list


def gather(corpus: Corpus, lexical: LexicalIndex, qv: np.ndarray, questions: list[str],
           settings: FusionSettings) -> Candidates:
    """Each question's production first stage (depth each, RRF) and second-stage features of the top `rerank`."""
    row_of = {int(c): i for i, c in enumerate(corpus.chunk_ids)}
    weights = lexical.term_weights()
    out = Candidates([], [], [], [], [])
    for i, question in enumerate(questions):
        cos = corpus.chunk_vectors @ qv[i]
        top = np.argsort(-cos, kind="stable")[: settings.depth]
        dense = [(int(corpus.chunk_ids[j]), float(cos[j])) for j in top]
        bm25 = lexical.search(question, settings.depth)
        fused = fuse(dense, bm25, settings)[: settings.rerank]
        terms = question_terms(question, stems)
        idf = {t: weights.idf(t) for t in terms if t in weights.vocabulary}
        rows = np.array([row_of[h.chunk_id] for h in fused], dtype=np.int64)
        table = np.vstack([features(terms, idf, qv[i], float(cos[r]), corpus.contexts[r]) for r in rows]) \
            if len(rows) else np.zeros((0, len(FEATURES)))
        out.rows.append(rows)
        out.table.append(table)
        out.bm25.append([(row_of[c], v) for c, v in bm25])
        out.dense.append([(row_of[c], v) for c, v in dense])
        out.cosine.append({r: float(cos[r]) for r, _ in out.bm25[-1] + out.dense[-1]})
    return out


def article_ranking(corpus: Corpus, rows) -> list[str]:
    """Article ids in the order their first chunk appears."""
    return list(dict.fromkeys(corpus.article_ids[corpus.chunk_article[r]] for r in rows))


def measures(rankings: list[list[str]], relevant: list[dict[str, int]]) -> dict[str, float]:
    """nDCG@10, MRR@10, recall@1/5/10 (graded gains 2^g - 1, as ir_measures' nDCG)."""
    out = dict.fromkeys(("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10"), 0.0)
    for ranked, rel in zip(rankings, relevant):
        gains = [rel.get(a, 0) for a in ranked[:10]]
        ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:10]
        idcg = sum((2 ** g - 1) / np.log2(r + 2) for r, g in enumerate(ideal))
        out["ndcg@10"] += sum((2 ** g - 1) / np.log2(r + 2) for r, g in enumerate(gains)) / idcg
        first = next((r for r, g in enumerate(gains) if g > 0), None)
        out["mrr@10"] += 0.0 if first is None else 1 / (first + 1)
        n_rel = sum(1 for g in rel.values() if g > 0)
        for cut in (1, 5, 10):
            out[f"recall@{cut}"] += sum(1 for g in gains[:cut] if g > 0) / n_rel
    return {k: round(v / len(rankings), 4) for k, v in out.items()}


def rescored(corpus: Corpus, cands: Candidates, w: np.ndarray, rows: list[int]) -> list[list[str]]:
    """Article rankings with the head re-scored by weights `w`."""
    out = []
    for i in rows:
        order = np.argsort(-(cands.table[i] @ w), kind="stable")
        out.append(article_ranking(corpus, cands.rows[i][order]))
    return out


@dataclass
class StudySet:
    """One data set prepared for fitting: its corpus, candidates, judgements and tune/test rows."""

    name: str
    corpus: Corpus
    cands: Candidates
    relevant: list[dict[str, int]]
    parts: dict[str, list[int]]

    def judged(self, part: str) -> list[dict[str, int]]:
        return [self.relevant[i] for i in self.parts[part]]


def fit(sets: list[StudySet], active: list[str]) -> np.ndarray:
    """Coordinate ascent over the active features' weights (others stay 0), maximising the mean
    nDCG@10 of the sets' tune halves."""
    w = np.array([1.0 if name in active else 0.0 for name in FEATURES])

    def objective(v):
        return float(np.mean([measures(rescored(s.corpus, s.cands, v, s.parts["tune"]), s.judged("tune"))["ndcg@10"]
                              for s in sets]))

    best = objective(w)
    for _ in range(3):
        improved = False
        for name in active:
            j = FEATURES.index(name)
            for factor in (0.0, 0.25, 0.5, 0.7, 1.4, 2.0, 4.0):
                trial = w.copy()
                trial[j] = w[j] * factor if w[j] else 0.1 * factor
                score = objective(trial)
                if score > best + 1e-5:
                    best, w, improved = score, trial, True
        if not improved:
            break
    return w / max(w.max(), 1e-9) * 2.8  # scale only: the ranking depends on ratios


def _prepare(spec: str, args) -> StudySet:
    """NAME:PATH:FORMAT -> a StudySet, ranked with the production first stage."""
    name, path, fmt = spec.split(":")
    dataset = load_dataset(path, fmt)
    corpus = load_corpus(Path(args.index_dir) / name)
    questions = [q.question for q in dataset.questions]
    lexical = LexicalIndex.build(corpus.chunk_ids.tolist(), _bm25_texts(corpus, not args.no_title), BM25.k1, BM25.b)
    settings = FusionSettings(rrf_k=args.rrf_k, rerank=args.rerank)
    started = time.time()
    cands = gather(corpus, lexical, query_vectors(name, questions), questions, settings)
    print(f"{name}: gathered {len(questions)} questions in {time.time() - started:.0f} s", file=sys.stderr)
    tune, test = halves(dataset)
    return StudySet(name, corpus, cands, [q.relevant for q in dataset.questions], {"tune": tune, "test": test})


def _fit(args) -> int:
    sets = [_prepare(spec, args) for spec in args.set]

    def line(s: StudySet, stage: str, rank, **extra) -> None:
        figures = {part: measures([rank(i) for i in rows], s.judged(part)) for part, rows in s.parts.items()}
        print(json.dumps({"set": s.name, "stage": stage, "bm25_title": not args.no_title, **extra, **figures}), flush=True)

    for s in sets:
        line(s, "bm25", lambda i: article_ranking(s.corpus, [r for r, _ in s.cands.bm25[i]]))
        line(s, "dense", lambda i: article_ranking(s.corpus, [r for r, _ in s.cands.dense[i]]))
        line(s, "rrf", lambda i: article_ranking(s.corpus, s.cands.rows[i]), rrf_k=args.rrf_k)
        for name, rank in (("weighted rrf", _weighted_rrf), ("convex", _convex)):
            share = max(np.linspace(0, 1, 11), key=lambda a: measures(
                [rank(s.corpus, s.cands, i, a) for i in s.parts["tune"]], s.judged("tune"))["ndcg@10"])
            line(s, name, lambda i: rank(s.corpus, s.cands, i, share), bm25_share=round(float(share), 2))
    for active in (args.features or [",".join(FEATURES)]):
        w = fit(sets, active.split(","))
        for s in sets:
            order = lambda i: article_ranking(s.corpus, s.cands.rows[i][np.argsort(-(s.cands.table[i] @ w), kind="stable")])
            line(s, "rrf+rescore", order, fitted_on="tune halves of " + "+".join(x.name for x in sets),
                 weights={n: round(float(v), 2) for n, v in zip(FEATURES, w) if v})
    production = RescoreWeights().vector()
    for s in sets:
        order = lambda i: article_ranking(s.corpus, s.cands.rows[i][np.argsort(-(s.cands.table[i] @ production), kind="stable")])
        line(s, "rrf+rescore (production weights)", order, weights=RescoreWeights().describe())
    return 0


def _weighted_rrf(corpus: Corpus, cands: Candidates, i: int, share: float, k: int = 60) -> list[str]:
    """RRF with weights share (BM25) and 1 - share (dense)."""
    score: dict[int, float] = {}
    for weight, ranked in ((share, cands.bm25[i]), (1 - share, cands.dense[i])):
        for rank, (row, _) in enumerate(ranked, 1):
            score[row] = score.get(row, 0.0) + weight / (k + rank)
    return article_ranking(corpus, sorted(score, key=lambda r: -score[r]))


def _convex(corpus: Corpus, cands: Candidates, i: int, share: float) -> list[str]:
    """share x BM25 / its top score + (1 - share) x cosine, over both retrievers' candidates
    (a candidate missing from BM25's list scores 0 there)."""
    bm25 = dict(cands.bm25[i])
    top = max(bm25.values(), default=1.0) or 1.0
    cosine = cands.cosine[i]
    score = {r: share * bm25.get(r, 0.0) / top + (1 - share) * c for r, c in cosine.items()}
    return article_ranking(corpus, sorted(score, key=lambda r: -score[r]))


def _bm25_texts(corpus: Corpus, title: bool) -> list[str]:
    if not title:
        return corpus.chunk_texts
    return [f"{corpus.titles[a]}\n{t}" for a, t in zip(corpus.chunk_article, corpus.chunk_texts)]


def _bm25(args) -> int:
    """BM25 alone under analysis variants: title in the document, question words, k1."""
    dataset = load_dataset(args.data, args.format)
    corpus = load_corpus(Path(args.index_dir) / args.index)
    tune, test = halves(dataset)
    relevant = [q.relevant for q in dataset.questions]
    for title in (False, True):
        for k1 in (1.5, 0.9):
            for drop_question_words in (False, True):
                lexical = LexicalIndex.build(corpus.chunk_ids.tolist(), _bm25_texts(corpus, title), k1, BM25.b)
                words = terms_module.QUESTION_WORDS  # switched off for the variant without it
                if not drop_question_words:
                    terms_module.QUESTION_WORDS = frozenset()
                row_of = {int(c): i for i, c in enumerate(corpus.chunk_ids)}
                rankings = [article_ranking(corpus, [row_of[c] for c, _ in lexical.search(q.question, 100)])
                            for q in dataset.questions]
                terms_module.QUESTION_WORDS = words
                print(json.dumps({"index": args.index, "stage": "bm25", "title": title, "k1": k1,
                                  "question_words_dropped": drop_question_words,
                                  "tune": measures([rankings[i] for i in tune], [relevant[i] for i in tune]),
                                  "test": measures([rankings[i] for i in test], [relevant[i] for i in test])}),
                      flush=True)
    return 0


def _check(args) -> int:
    """Rank every question of the split under each mode with `Archive.search`; print the metrics."""
    from eval.metrics import ranking_metrics, run_from_ranking
    from rag.archive import Archive
    from rag.query import Query
    from rag.settings import Settings

    dataset = load_dataset(args.data, args.format)
    tune, test = halves(dataset)
    keep = set(range(len(dataset.questions))) if args.split == "all" else set(tune if args.split == "tune" else test)
    questions = [q for i, q in enumerate(dataset.questions) if i in keep]
    if args.limit:
        questions = [questions[i] for i in sorted(np.random.default_rng(0).choice(len(questions), args.limit, replace=False))]
    settings = Settings.from_env()
    if args.rerank is not None:
        settings = replace(settings, fusion=replace(settings.fusion, rerank=args.rerank))
    archive = Archive.open(args.index, args.index_dir, settings=settings)
    # The one model call is batched up front (the same vectors, far faster on a busy machine);
    # everything after it is the production query path.
    texts = [q.question for q in dataset.questions]
    cached = dict(zip(texts, query_vectors(args.index, texts)))
    encode = archive.embedder.encode_query
    archive.embedder.encode_query = lambda text: cached[text] if text in cached else encode(text)
    qrels = {q.id: q.relevant for q in questions}
    for mode in args.modes.split(","):
        ranked, retrieve_ms = {}, []
        for q in questions:
            result = archive.search(Query(q.question, args.k, mode))
            retrieve_ms.append(result.timings["retrieve"])
            ranked[q.id] = list(dict.fromkeys(p.article.id for p in result.passages))
        halves_ids = {"tune": {dataset.questions[i].id for i in tune}, "test": {dataset.questions[i].id for i in test}}
        for part in ([args.split] if args.split != "all" or args.limit else ["all", "tune", "test"]):
            judged = {q: r for q, r in qrels.items() if part == "all" or q in halves_ids[part]}
            figures = {k: round(v, 4) for k, v in ranking_metrics(judged, run_from_ranking(ranked)).items()}
            print(json.dumps({"index": args.index, "split": part, "mode": mode,
                              "rerank": settings.fusion.rerank if mode == "hybrid" else None, "n": len(judged),
                              "k": args.k, "metrics": figures,
                              "retrieve_ms_p50": round(float(np.percentile(retrieve_ms, 50)), 1)}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, handler, text in (("bm25", _bm25, "BM25 analysis variants"),
                                ("check", _check, "figures through the real query path (Archive.search)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("index", help="index name under --index-dir")
        p.add_argument("data", help="data set path")
        p.add_argument("format", choices=["squad", "beir"])
        p.add_argument("--index-dir", default=".cache/prebuilt")
        commands[name] = (p, handler)
    p = sub.add_parser("fit", help="fit the second stage on the tune halves, report every stage on both halves")
    p.add_argument("--set", action="append", required=True, help="NAME:PATH:FORMAT of a prebuilt index (repeatable)")
    p.add_argument("--index-dir", default=".cache/prebuilt")
    p.add_argument("--features", action="append", help="comma-separated FEATURES to fit (repeatable; default all)")
    p.add_argument("--no-title", action="store_true", help="BM25 over chunk text alone (the old analysis)")
    p.add_argument("--rrf-k", type=int, default=60)
    p.add_argument("--rerank", type=int, default=50)
    commands["fit"] = (p, _fit)
    p = commands["check"][0]
    p.add_argument("--split", choices=["all", "tune", "test"], default="all")
    p.add_argument("--modes", default="dense,bm25,hybrid")
    p.add_argument("--rerank", type=int, default=None, help="override FusionSettings.rerank (0: plain RRF)")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--limit", type=int, help="a seeded sample of this many questions")
    args = parser.parse_args(argv)
    return commands[args.command][1](args)


if __name__ == "__main__":
    raise SystemExit(main())

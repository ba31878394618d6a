"""One evaluation run: the data set's index (built once, cached by content), every question asked
under every mode, and the scores.

The harness only talks to `rag.Archive` (in-process) or to the HTTP API (`--url`), so what it
measures is the service itself. An article ranks at its best passage: the article ranking is the
order in which articles first appear in the returned passages.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import fmean

from tqdm import tqdm

from rag.archive import Archive
from rag.chunking import ChunkSettings
from rag.embedding import default_model_name
from rag.generations import READS
from rag.query import check_mode
from rag.store import SCHEMA

from .client import HttpClient, LocalClient
from .datasets import Dataset, Question, load_dataset, sample_questions, squad_split
from .metrics import (abstention_metrics, exact_match, f1, latency_percentiles, ranking_metrics,
                      recall_curve, run_from_ranking, sentence_hit)

CACHE_DIR = ".cache/eval"
CURVE_CUTOFFS = (1, 2, 3, 5, 10, 20, 50, 100)
_CUTOFF = re.compile(r"@(\d+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class RunConfig:
    """Everything that decides a run's figures; recorded in the report."""

    path: str
    format: str
    modes: list[str]
    k: int = 100  # passages retrieved for the ranking metrics (recall@100 needs 100)
    answer_k: int = 5  # passages asked of /answer, the API's default
    limit: int | None = None
    seed: int = 0
    split: str = "all"
    url: str | None = None
    cache_dir: str = CACHE_DIR
    rebuild: bool = False
    oracle: bool = False  # also answer each question from its gold articles alone (a reader's ceiling)
    dedupe: bool = True  # one passage group per story; an article in a passage's also_in ranks with it


@dataclass
class Asked:
    """What one question got under one mode: its article ranking, its answer, its timings."""

    id: str
    ranked: list[str] | None  # article ids, best first; None when the question has no judgements
    answer: dict | None  # the answer block of /answer; None when it abstained or was not asked
    timings_ms: dict[str, float]


@dataclass
class ModeResult:
    """The scores of one mode, and the per-question records they came from."""

    metrics: dict[str, float]
    latency_ms: dict[str, float]
    stage_latency_ms: dict[str, dict[str, float]]
    recall_curve: dict[int, float]
    asked: list[Asked] = field(repr=False)


@dataclass
class Evaluation:
    """A finished run: the configuration, the data set, the questions asked, and one result per mode."""

    config: RunConfig
    dataset: Dataset
    questions: list[Question]
    target: dict
    results: dict[str, ModeResult]
    with_answers: bool
    seconds: float
    oracle: dict[str, float] | None = None


def cache_key(dataset: Dataset) -> str:
    """Hash of every article's content hash, the model, the chunker and the stored layout, so a
    changed corpus, model, chunker or index schema never reuses a stale index."""
    digest = hashlib.sha256()
    for article in sorted(dataset.articles, key=lambda a: a.id):
        digest.update(f"{article.id}\t{article.content_hash}\n".encode("utf-8"))
    # the oldest layout this code opens: a newer one converts older indexes on open (format 2 to 3 builds
    # segments from SQLite), so their embeddings are reused rather than the corpus embedded again
    settings = {"model": default_model_name(), "chunking": asdict(ChunkSettings()),
                "format_version": min(READS), "schema": SCHEMA}
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def index_name(dataset: Dataset) -> str:
    """The cached index's name: the data set's name and the first 12 hex digits of its key."""
    stem = _UNSAFE.sub("-", dataset.name).strip("-._")[:40] or "dataset"
    return f"{stem}-{cache_key(dataset)[:12]}"


def build_index(dataset: Dataset, cache_dir: str, rebuild: bool = False) -> Archive:
    """Open the data set's cached index, ingesting through `Archive.ingest` whatever is missing
    (everything on the first run; nothing, cheaply, on later ones)."""
    name = index_name(dataset)
    if rebuild:
        shutil.rmtree(Path(cache_dir) / name, ignore_errors=True)
    archive = Archive.open(name, cache_dir, create=True)
    with tqdm(total=len(dataset.articles), desc=f"index {name}", unit="article", file=sys.stderr,
              dynamic_ncols=True) as bar:
        report = archive.ingest(dataset.articles, progress=bar.update)
    if report.failed:
        first = report.failed[0]
        raise ValueError(f"{len(report.failed)} article(s) failed to ingest; first: {first.source}: {first.reason}")
    built = len(report.added) + len(report.replaced)
    state = f"ingested {built} articles in {report.seconds:.1f} s" if built else "cached"
    print(f"newsrag eval: index {name!r} in {cache_dir} ({state}); serve it with\n"
          f"  NEWSRAG_MAX_K=100 newsrag serve --index {name} --index-dir {cache_dir}", file=sys.stderr)
    return archive


def _check_served(client: HttpClient, dataset: Dataset) -> dict:
    """The served index as /health describes it; a warning when it is not this data set's index."""
    target = client.describe()
    name = index_name(dataset)
    if target.get("index") != name or target.get("articles") != len(dataset.articles):
        print(f"newsrag eval: warning: {client.url} serves index {target.get('index')!r} with "
              f"{target.get('articles')} articles; this data set's index is {name!r} with "
              f"{len(dataset.articles)} (build it with --build-only, then serve it)", file=sys.stderr)
    return target


def article_ranking(passages: list[dict], grouped: bool = False, relevant=frozenset()) -> list[str]:
    """Article ids in the order they first appear among passages (passages come best first). Grouped
    (one passage group per story), a story is one result: its passage counts as its first relevant copy
    (the passage's article or one its `also_in` names), else as the passage's article."""
    def counted(p: dict) -> str:
        copies = [p["article_id"], *(c["article_id"] for c in p.get("also_in", []))] if grouped else []
        return next((a for a in copies if a in relevant), p["article_id"])

    return list(dict.fromkeys(counted(p) for p in passages))


def ask_all(client, questions: list[Question], mode: str, k: int, answer_k: int, with_answers: bool,
            dedupe: bool = True) -> list[Asked]:
    """Ask every question under one mode: `/search` with k passages for the ranking (when the
    question has judgements), `/answer` with answer_k passages for the answer (when the set has answers)."""
    asked = []
    for q in tqdm(questions, desc=mode, unit="q", file=sys.stderr, dynamic_ncols=True):
        ranked, answer, timings = None, None, {}
        if q.relevant:
            found = client.search(q.question, k, mode, q.filters, dedupe)
            ranked, timings = article_ranking(found["passages"], dedupe, q.relevant), found["timings_ms"]
        if with_answers:
            result = client.answer(q.question, answer_k, mode, q.filters, q.as_of, dedupe)
            answer, timings = result["answer"], result["timings_ms"]
        asked.append(Asked(q.id, ranked, answer, timings))
    return asked


def prediction(answer: dict | None) -> str | None:
    """The answer string scored for EM/F1: the span when there is one, else the sentence; None abstains."""
    if answer is None:
        return None
    span = answer.get("span")
    return span["text"] if span else answer["text"]


def _cutoff(metric: str) -> int:
    match = _CUTOFF.search(metric)
    return int(match.group(1)) if match else 0


def score(questions: list[Question], asked: list[Asked], k: int, with_answers: bool,
          format: str) -> tuple[dict[str, float], dict[int, float]]:
    """The contract's metrics for one mode, and its recall@c curve; a ranking metric whose cut-off
    exceeds the passages retrieved (k) is left out rather than reported low."""
    metrics: dict[str, float] = {}
    curve: dict[int, float] = {}
    judged = {q.id: q.relevant for q in questions if q.relevant}
    if judged:
        ranked = {a.id: a.ranked for a in asked if a.ranked is not None}
        figures = ranking_metrics(judged, run_from_ranking(ranked))
        metrics.update({name: value for name, value in figures.items() if _cutoff(name) <= k})
        curve = recall_curve(judged, ranked, sorted({c for c in CURVE_CUTOFFS if c <= k} | {k}))
    if with_answers:
        metrics.update(answer_metrics(questions, asked, format))
    return metrics, curve


def answer_metrics(questions: list[Question], asked: list[Asked], format: str) -> dict[str, float]:
    """EM, F1 and sentence hit@1 on answerable questions; abstention when some are unanswerable;
    RGB's accuracy and counterfactual rate."""
    answers = {a.id: a.answer for a in asked}
    metrics: dict[str, float] = {}
    answerable = [q for q in questions if q.answers and not q.impossible]
    if answerable:
        metrics["exact_match"] = fmean(exact_match(prediction(answers[q.id]), q.answers) for q in answerable)
        metrics["f1"] = fmean(f1(prediction(answers[q.id]), q.answers) for q in answerable)
        metrics["sentence_hit@1"] = fmean(
            float(answers[q.id] is not None and sentence_hit(answers[q.id]["text"], q.answers)) for q in answerable)
    if any(q.impossible for q in questions):
        golds = {q.id: [] if q.impossible else q.answers for q in questions}
        preds = {q.id: prediction(answers[q.id]) for q in questions}
        decisions = [(preds[q.id] is None, q.impossible) for q in questions]
        metrics.update(abstention_metrics(decisions, [f1(preds[q.id], golds[q.id]) for q in questions]))
        metrics["answer_or_abstain_em"] = fmean(exact_match(preds[q.id], golds[q.id]) for q in questions)
    if format == "rgb":
        metrics["accuracy"] = fmean(float(_rgb_correct(q, answers[q.id])) for q in questions)
        metrics["counterfactual_rate"] = fmean(
            float(answers[q.id] is not None and answers[q.id]["article_id"] in set(q.extra.get("wrong", [])))
            for q in questions)
    return metrics


def _rgb_correct(question: Question, answer: dict | None) -> bool:
    """RGB's rule: every answer group has one of its alternatives in the answer (whole words)."""
    groups = question.extra.get("answer_groups") or [question.answers]
    return answer is not None and all(sentence_hit(answer["text"], group) for group in groups)


def latency(asked: list[Asked]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """p50/p95/p99 of each question's server-side total, and of every stage in `timings_ms`."""
    totals = [total_ms(a.timings_ms) for a in asked if a.timings_ms]
    stages = sorted({s for a in asked for s in a.timings_ms})
    by_stage = {s: latency_percentiles([a.timings_ms[s] for a in asked if s in a.timings_ms]) for s in stages}
    return (latency_percentiles(totals) if totals else {}), by_stage


def total_ms(timings: dict[str, float]) -> float:
    """The server's `total` when it gives one (/answer), else the sum of its stages (/search)."""
    return timings.get("total", sum(v for s, v in timings.items() if s != "wall"))


def parse_modes(spec: str | None) -> list[str]:
    """`m1,m2` as checked mode names, in order, without repeats; none means the default mode."""
    names = [m.strip() for m in (spec or "").split(",") if m.strip()]
    return list(dict.fromkeys(check_mode(m) for m in names)) or [check_mode(None)]


def evaluate(config: RunConfig) -> Evaluation:
    """Load the set, choose the questions, open (or reach) its index, and score every mode."""
    started = time.perf_counter()
    dataset = squad_split(load_dataset(config.path, config.format), config.split)
    questions = sample_questions(dataset.questions, config.limit, config.seed)
    if not questions:
        raise ValueError(f"{config.path}: no questions to ask (split {config.split!r}, limit {config.limit})")
    if config.url:
        client = HttpClient(config.url)
        target = _check_served(client, dataset)
    else:
        client = LocalClient(build_index(dataset, config.cache_dir, config.rebuild))
        target = client.describe()
    with_answers = any(q.answers or q.impossible for q in questions)
    results = {}
    for mode in config.modes:
        asked = ask_all(client, questions, mode, config.k, config.answer_k, with_answers, config.dedupe)
        metrics, curve = score(questions, asked, config.k, with_answers, dataset.format)
        headline, stages = latency(asked)
        results[mode] = ModeResult(metrics, headline, stages, curve, asked)
    oracle = gold_article_answers(client, questions, config, dataset.format) if config.oracle and with_answers else None
    return Evaluation(config, dataset, questions, target, results, with_answers, time.perf_counter() - started,
                      oracle)


def gold_article_answers(client, questions: list[Question], config: RunConfig, format: str) -> dict[str, float]:
    """Answer metrics when retrieval is perfect: each answerable question asked of its gold articles
    only (a filter), so the figure isolates the answer stage from retrieval."""
    judged = [replace(q, filters={**(q.filters or {}), "article_ids": sorted(q.relevant)})
              for q in questions if q.relevant and q.answers and not q.impossible]
    asked = ask_all(client, judged, check_mode(None), config.k, config.answer_k, True, config.dedupe)
    return answer_metrics(judged, asked, format)

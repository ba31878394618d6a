"""Reports of a run: `report.json` (the contract's keys), `report.md`, per-question records, and
PNG plots (recall@k per mode, latency histogram); and the difference table of two reports."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # a bare Figure draws with Agg: files only, no window, no pyplot state

from rag.chunking import ChunkSettings
from rag.embedding import default_model_name
from rag.query import DEFAULT_MODE

from .run import Evaluation, index_name, prediction, total_ms

METRIC_ORDER = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "hit@1", "hit@5",
                "hit@10", "exact_match", "f1", "sentence_hit@1", "abstain_precision", "abstain_recall",
                "answer_or_abstain_f1", "answer_or_abstain_em", "accuracy", "counterfactual_rate")
LATENCY_KEYS = ("p50", "p95", "p99")


def build_report(ev: Evaluation, command: str, git: dict | None) -> dict:
    """The machine-readable report: the contract's top-level keys, one entry per mode; `git` is
    the checkout's state when the run started (the code it imported)."""
    questions = ev.questions
    config = {
        **asdict(ev.config),
        "command": command,
        "target": ev.target,
        "index": index_name(ev.dataset),
        "model": default_model_name(),
        "chunking": asdict(ChunkSettings()),
        "n_articles": len(ev.dataset.articles),
        "n_judged": sum(1 for q in questions if q.relevant),
        "n_answerable": sum(1 for q in questions if q.answers and not q.impossible),
        "n_impossible": sum(1 for q in questions if q.impossible),
        "latency": ("timings_ms.total of /answer" if ev.with_answers else "sum of /search's timings_ms")
                   + " per question; `wall` is what the caller waited",
        "newsrag_version": _package_version(),
        "git": git,
        "python": platform.python_version(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(ev.seconds, 1),
    }
    modes = {
        mode: {
            "metrics": {name: round(value, 6) for name, value in _ordered(result.metrics)},
            "latency_ms": {key: round(value, 3) for key, value in result.latency_ms.items()},
            "stage_latency_ms": {stage: {k: round(v, 3) for k, v in p.items()}
                                 for stage, p in result.stage_latency_ms.items()},
            "recall_curve": {str(c): round(v, 6) for c, v in result.recall_curve.items()},
        }
        for mode, result in ev.results.items()
    }
    return {"dataset": ev.dataset.name, "format": ev.dataset.format, "split": ev.config.split,
            "n_questions": len(questions), "default_mode": DEFAULT_MODE, "modes": modes, "config": config,
            **({"oracle": {"gold_article": {k: round(v, 6) for k, v in _ordered(ev.oracle)}}} if ev.oracle else {})}


def _ordered(metrics: dict[str, float]) -> list[tuple[str, float]]:
    """Metrics in the contract's order, any others after them by name."""
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return sorted(metrics.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def _package_version() -> str | None:
    try:
        return version("newsrag")
    except PackageNotFoundError:
        return None


def git_state() -> dict | None:
    """The checkout's commit and whether it had uncommitted changes, when it is a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def markdown_table(report: dict) -> str:
    """One row per mode: every metric the run produced, then the latency percentiles."""
    names = [name for name, _ in _ordered({n: 0.0 for m in report["modes"].values() for n in m["metrics"]})]
    header = ["mode", *names, *(f"{key} ms" for key in LATENCY_KEYS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for mode, entry in report["modes"].items():
        cells = [mode + (" (default)" if mode == report["default_mode"] else "")]
        cells += [_fmt(entry["metrics"].get(name)) for name in names]
        cells += [_fmt(entry["latency_ms"].get(key), 1) for key in LATENCY_KEYS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_outputs(report: dict, ev: Evaluation, out: Path) -> list[Path]:
    """report.json, report.md, questions.jsonl and the two plots under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md", out / "questions.jsonl", out / "recall.png", out / "latency.png"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths[1].write_text(_markdown_page(report), encoding="utf-8")
    paths[2].write_text(_question_records(ev), encoding="utf-8")
    plot_recall(report, paths[3])
    plot_latency(ev, paths[4])
    return paths


def _markdown_page(report: dict) -> str:
    config = report["config"]
    return (f"# {report['dataset']} ({report['format']}, split {report['split']}, "
            f"{report['n_questions']} questions)\n\n"
            f"`{config['command']}`\n\n{markdown_table(report)}\n\n"
            f"Index `{config['index']}` ({config['n_articles']} articles, model {config['model']}); "
            f"ranking from {config['k']} passages, answers from {config['answer_k']}; "
            f"asked {config['target']['via']}; seed {config['seed']}; {config['seconds']} s.\n"
            f"Latency: {config['latency']}.\n")


def _question_records(ev: Evaluation) -> str:
    """One line per question and mode: top articles, the answer, abstention, timings (for error analysis)."""
    by_id = {q.id: q for q in ev.questions}
    lines = []
    for mode, result in ev.results.items():
        for a in result.asked:
            q = by_id[a.id]
            ranks = [i for i, art in enumerate(a.ranked or [], 1) if art in q.relevant]
            lines.append(json.dumps({
                "mode": mode, "id": a.id, "question": q.question, "gold": q.answers,
                "relevant": sorted(q.relevant), "top_articles": (a.ranked or [])[:10],
                "first_relevant_rank": ranks[0] if ranks else None,
                "prediction": prediction(a.answer), "sentence": a.answer["text"] if a.answer else None,
                "answer_article": a.answer["article_id"] if a.answer else None,
                "timings_ms": a.timings_ms}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def plot_recall(report: dict, path: Path) -> None:
    """Recall@k against k (log scale), one line per mode; an empty frame when nothing was judged."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for mode, entry in report["modes"].items():
        curve = entry["recall_curve"]
        if curve:
            ax.plot([int(c) for c in curve], list(curve.values()), marker="o", label=mode)
    ax.set(xscale="log", xlabel="k (articles)", ylabel="recall@k", ylim=(0, 1.02),
           title=f"{report['dataset']}: recall@k")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_latency(ev: Evaluation, path: Path) -> None:
    """Histogram of per-question total latency, one per mode, overlaid on shared log-spaced bins."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    totals = {mode: [total_ms(a.timings_ms) for a in result.asked if a.timings_ms]
              for mode, result in ev.results.items()}
    every = [max(t, 1e-3) for values in totals.values() for t in values]
    if every:
        bins = np.geomspace(min(every), max(every) * 1.001, 41)
        for mode, values in totals.items():
            ax.hist(np.maximum(values, 1e-3), bins=bins, alpha=0.5, label=mode)
        ax.set_xscale("log")
    ax.set(xlabel="latency per question (ms)", ylabel="questions", title=f"{ev.dataset.name}: latency")
    if ax.patches:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def compare(a: dict, b: dict) -> tuple[str, list[str]]:
    """A table of B − A per mode and metric (latency percentiles included), and warnings when the
    two runs are not on the same questions."""
    warnings = [f"{key} differs: {a.get(key)!r} vs {b.get(key)!r}"
                for key in ("dataset", "format", "split", "n_questions") if a.get(key) != b.get(key)]
    lines = ["| mode | metric | A | B | B − A |", "|---|---|---|---|---|"]
    for mode in list(dict.fromkeys([*a["modes"], *b["modes"]])):
        ma, mb = a["modes"].get(mode), b["modes"].get(mode)
        if ma is None or mb is None:
            warnings.append(f"mode {mode!r} is only in {'B' if ma is None else 'A'}")
            continue
        names = [n for n, _ in _ordered({**ma["metrics"], **mb["metrics"]})]
        rows = [(n, ma["metrics"].get(n), mb["metrics"].get(n), 3) for n in names]
        rows += [(f"latency {k} ms", ma["latency_ms"].get(k), mb["latency_ms"].get(k), 1) for k in LATENCY_KEYS]
        for name, va, vb, digits in rows:
            diff = None if va is None or vb is None else vb - va
            sign = "+" if diff is not None and diff > 0 else ""
            lines.append(f"| {mode} | {name} | {_fmt(va, digits)} | {_fmt(vb, digits)} | "
                         f"{sign}{_fmt(diff, digits)} |")
    return "\n".join(lines), warnings

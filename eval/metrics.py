"""Scores for `newsrag eval`: ranking metrics through ir_measures, answer and abstention metrics.

Answer metrics follow the official SQuAD 2.0 script (normalisation, max over gold answers, an empty
prediction against no gold answers scores 1), so our figures compare with published ones.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import ir_measures
import numpy as np
from ir_measures import RR, R, Success, nDCG

RANKING_MEASURES = {
    "ndcg@10": nDCG @ 10,
    "mrr@10": RR @ 10,
    "recall@1": R @ 1,
    "recall@5": R @ 5,
    "recall@10": R @ 10,
    "recall@100": R @ 100,
    "hit@1": Success @ 1,
    "hit@5": Success @ 5,
    "hit@10": Success @ 10,
}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def ranking_metrics(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    """Contract ranking metrics averaged over every query in `qrels`; a query not ranked scores 0.

    Score ties are broken by document id before scoring: ir_measures hands different measures to
    different providers (RR@10 to the MS MARCO one, since pytrec_eval ignores RR's cut-off), and
    providers break ties differently, so an untied run is the only way they all see one ranking.
    """
    ranked = {q: sorted(run.get(q) or {}, key=lambda d: (-float(run[q][d]), d)) for q in qrels}
    return _mean_measures(qrels, ranked, {m: name for name, m in RANKING_MEASURES.items()})


def recall_curve(
    qrels: Mapping[str, Mapping[str, int]], ranked: Mapping[str, Sequence[str]], cutoffs: Sequence[int]
) -> dict[int, float]:
    """Mean recall@c for each cutoff c (ir_measures' R@c), for plotting recall against depth."""
    return _mean_measures(qrels, ranked, {R @ c: c for c in cutoffs})


def _mean_measures(qrels: Mapping[str, Mapping[str, int]], ranked: Mapping[str, Sequence[str]],
                   names: Mapping) -> dict:
    """Each ir_measures measure in `names`, averaged over every query in `qrels` and keyed by its
    name there; a query not ranked scores 0."""
    if not qrels:
        raise ValueError("no queries to score: qrels is empty")
    qrels = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()}
    run = run_from_ranking({q: list(ranked.get(q) or []) for q in qrels})
    totals = dict.fromkeys(names.values(), 0.0)
    for metric in ir_measures.iter_calc(list(names), qrels, run):
        totals[names[metric.measure]] += metric.value
    return {name: total / len(qrels) for name, total in totals.items()}


def run_from_ranking(ranked: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """A run scored by rank (first = highest), so no tie-breaking can reorder a ranking."""
    return {
        q: {doc: float(len(docs) - i) for i, doc in enumerate(docs)} for q, docs in ranked.items()
    }


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no a/an/the, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def exact_match(pred: str | None, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold; None (abstained) is ''."""
    pred_norm = normalize_answer(pred or "")
    return float(any(pred_norm == normalize_answer(g) for g in (golds or [""])))


def f1(pred: str | None, golds: Sequence[str]) -> float:
    """Best token-overlap F1 over the golds; an empty side scores 1 only against an empty side."""
    pred_tokens = normalize_answer(pred or "").split()
    return max(_token_f1(pred_tokens, normalize_answer(g).split()) for g in (golds or [""]))


def _token_f1(pred: list[str], gold: list[str]) -> float:
    """Token-overlap F1 of two token lists, SQuAD 2.0 style."""
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def sentence_hit(sentence: str, golds: Sequence[str]) -> bool:
    """Whether a normalised gold answer occurs, on word boundaries, in the normalised sentence."""
    padded = f" {normalize_answer(sentence)} "
    return any(gold and f" {gold} " in padded for gold in map(normalize_answer, golds))


def abstention_metrics(
    decisions: Sequence[tuple[bool, bool]], f1_scores: Sequence[float]
) -> dict[str, float]:
    """Abstention precision/recall from (abstained, impossible) pairs, and the mean SQuAD 2.0 F1.

    `f1_scores` are per-question `f1(None if abstained else answer, golds)`, which scores an
    abstention on an impossible question (no golds) 1 and one on an answerable question 0.
    A ratio with nothing to divide by (no abstentions, no impossible questions) is 0.
    """
    if len(decisions) != len(f1_scores):
        raise ValueError(f"{len(decisions)} decisions but {len(f1_scores)} F1 scores")
    both = sum(1 for abstained, impossible in decisions if abstained and impossible)
    abstained = sum(1 for a, _ in decisions if a)
    impossible = sum(1 for _, i in decisions if i)
    return {
        "abstain_precision": both / abstained if abstained else 0.0,
        "abstain_recall": both / impossible if impossible else 0.0,
        "answer_or_abstain_f1": float(np.mean(f1_scores)) if len(f1_scores) else 0.0,
    }


def latency_percentiles(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of per-question latencies in milliseconds (numpy's linear percentiles)."""
    if not len(latencies_ms):
        raise ValueError("no latencies to summarise")
    p50, p95, p99 = np.percentile(np.asarray(latencies_ms, dtype=float), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}

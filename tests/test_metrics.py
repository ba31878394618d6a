"""Evaluation metrics against hand-computed values, so a scoring bug cannot pass as a result."""

from math import log2

import pytest

from eval.metrics import (
    abstention_metrics,
    exact_match,
    f1,
    latency_percentiles,
    normalize_answer,
    ranking_metrics,
    run_from_ranking,
    sentence_hit,
)

# Five queries with relevant documents at known ranks (x* are non-relevant fillers):
# q1: a (grade 2) at rank 2, b (grade 1) at rank 4; q2: c at rank 5; q3: d at rank 6;
# q4: e at rank 11; q5: nothing retrieved.
QRELS = {
    "q1": {"a": 2, "b": 1},
    "q2": {"c": 1},
    "q3": {"d": 1},
    "q4": {"e": 1},
    "q5": {"f": 1},
}
RANKED = {
    "q1": ["x1", "a", "x2", "b"],
    "q2": ["x1", "x2", "x3", "x4", "c"],
    "q3": ["x1", "x2", "x3", "x4", "x5", "d", "x6"],
    "q4": [f"x{i}" for i in range(1, 11)] + ["e"],
    "q5": [],
}


def test_ranking_metrics_match_hand_computation() -> None:
    """Per query by hand (linear gains, log2(rank + 1) discounts), then the mean over all five."""
    ndcg = [
        (2 / log2(3) + 1 / log2(5)) / (2 / log2(2) + 1 / log2(3)),  # 0.6433
        1 / log2(6),  # rank 5
        1 / log2(7),  # rank 6
        0.0,  # rank 11 is past the cut-off
        0.0,
    ]
    expected = {
        "ndcg@10": sum(ndcg) / 5,
        "mrr@10": (1 / 2 + 1 / 5 + 1 / 6 + 0 + 0) / 5,
        "recall@1": 0.0,
        "recall@5": (1 + 1 + 0 + 0 + 0) / 5,  # q2 at rank exactly 5 counts, q3 at 6 does not
        "recall@10": (1 + 1 + 1 + 0 + 0) / 5,  # q4 at rank 11 does not
        "recall@100": (1 + 1 + 1 + 1 + 0) / 5,
        "hit@1": 0.0,
        "hit@5": 2 / 5,
        "hit@10": 3 / 5,
    }
    got = ranking_metrics(QRELS, run_from_ranking(RANKED))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert got["ndcg@10"] == pytest.approx(0.27728, abs=1e-5)


def test_recall_is_a_fraction_of_the_relevant_documents() -> None:
    """One of two relevant documents in the top 1 gives recall 0.5 but hit 1."""
    got = ranking_metrics({"q": {"a": 1, "b": 1}}, run_from_ranking({"q": ["a", "x", "y", "b"]}))
    assert got["recall@1"] == 0.5 and got["hit@1"] == 1.0 and got["recall@5"] == 1.0


def test_unranked_queries_count_as_zero_and_extra_run_queries_are_ignored() -> None:
    """A query missing from the run still counts in the mean; a query absent from qrels does not."""
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    got = ranking_metrics(qrels, {"q1": {"a": 1.0}, "other": {"b": 1.0}})
    assert got["mrr@10"] == 0.5 and got["recall@100"] == 0.5


def test_run_from_ranking_keeps_rank_order_over_id_order() -> None:
    """Ranked ids score by position, so a relevant 'a' ranked second stays second."""
    assert run_from_ranking({"q": ["b", "a"]}) == {"q": {"b": 2.0, "a": 1.0}}
    assert ranking_metrics({"q": {"a": 1}}, run_from_ranking({"q": ["b", "a"]}))["mrr@10"] == 0.5


def test_tied_scores_are_broken_by_id_for_every_measure() -> None:
    """Tied documents rank by id ('a' before 'b') in RR and nDCG alike, whatever the provider."""
    got = ranking_metrics({"q": {"b": 1}}, {"q": {"b": 1.0, "a": 1.0}})
    assert got["mrr@10"] == 0.5 and got["ndcg@10"] == pytest.approx(1 / log2(3))
    assert got["hit@1"] == 0.0 and got["recall@1"] == 0.0


def test_ranking_metrics_need_queries() -> None:
    """Averaging over no queries is refused rather than reported as 0."""
    with pytest.raises(ValueError):
        ranking_metrics({}, {})


def test_squad_normalisation() -> None:
    """Case, punctuation, articles and spacing are ignored, as in the official script."""
    assert normalize_answer("  The Denver   Broncos! ") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("$1.65 billion") == "165 billion"


def test_exact_match_takes_any_gold() -> None:
    """EM is 1 when the prediction matches any gold answer after normalisation."""
    golds = ["Denver Broncos", "The Denver Broncos", "Broncos"]
    assert exact_match("the denver broncos.", golds) == 1.0
    assert exact_match("Denver", golds) == 0.0


def test_f1_is_the_best_token_overlap() -> None:
    """F1 by hand: 'the Denver team' vs 'Denver Broncos' shares 1 token: P 1/2, R 1/2, F1 1/2."""
    assert f1("the Denver team", ["Denver Broncos"]) == pytest.approx(0.5)
    assert f1("the Denver team", ["Denver Broncos", "Denver"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1("Carolina Panthers", ["Denver Broncos"]) == 0.0
    assert f1("Denver Broncos", ["Denver Broncos"]) == 1.0


def test_squad2_empty_conventions() -> None:
    """No prediction against no golds scores 1; an answer to an impossible question scores 0."""
    assert exact_match(None, []) == 1.0 and f1(None, []) == 1.0 and f1("", []) == 1.0
    assert exact_match("Denver", []) == 0.0 and f1("Denver", []) == 0.0
    assert exact_match(None, ["Denver"]) == 0.0 and f1(None, ["Denver"]) == 0.0


def test_sentence_hit_matches_whole_words() -> None:
    """A gold answer must appear on word boundaries of the normalised sentence."""
    assert sentence_hit("It began in October 1973.", ["october 1973", "1974"])
    assert sentence_hit("Google paid $1.65 billion.", ["$1.65 Billion"])
    assert not sentence_hit("The 19730s were odd.", ["1973"])
    assert not sentence_hit("Anything at all.", [])


def test_abstention_metrics_by_hand() -> None:
    """4 questions: abstained on 2 (1 impossible), 2 impossible in all: P 1/2, R 1/2."""
    golds = [[], ["Denver"], [], ["Paris"]]
    answers = [None, None, "London", "Paris"]
    decisions = [(a is None, not g) for a, g in zip(answers, golds, strict=True)]
    scores = [f1(a, g) for a, g in zip(answers, golds, strict=True)]
    assert scores == [1.0, 0.0, 0.0, 1.0]
    got = abstention_metrics(decisions, scores)
    assert got == {"abstain_precision": 0.5, "abstain_recall": 0.5, "answer_or_abstain_f1": 0.5}


def test_abstention_metrics_without_abstentions_and_mismatched_lengths() -> None:
    """No abstentions gives precision 0 rather than a division error; lengths must agree."""
    got = abstention_metrics([(False, True), (False, False)], [0.0, 1.0])
    assert got["abstain_precision"] == 0.0 and got["abstain_recall"] == 0.0
    with pytest.raises(ValueError):
        abstention_metrics([(True, True)], [])


def test_latency_percentiles() -> None:
    """numpy's linear interpolation: p50 of 1..100 is 50.5, p95 is 95.05, p99 is 99.01."""
    got = latency_percentiles([float(i) for i in range(1, 101)])
    assert got == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    with pytest.raises(ValueError):
        latency_percentiles([])

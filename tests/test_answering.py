"""Answers over the real sample index: sentence, span, dates on the calendar, abstention, citations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.metrics import normalize_answer
from rag.query import Filters
from rag.terms import content_stems
from rag.query import Query

QUESTIONS = [json.loads(line) for line in
             (Path(__file__).parent / "data" / "sample_questions.jsonl").read_text().splitlines() if line.strip()]
ANSWERABLE = [q for q in QUESTIONS if q["answers"]]
UNANSWERABLE = [q for q in QUESTIONS if not q["answers"]]
USER_ARTICLE = "2025-10-07-india-russia-summit"


def _ask(archive, question: str) -> dict:
    return archive.answer(Query(question, k=5))


def test_putin_visit_span_and_date(archive):
    doc = _ask(archive, "When is Putin's visit to India expected?")
    answer = doc["answer"]
    assert answer is not None, doc["no_answer"]
    assert answer["article_id"] == USER_ARTICLE
    assert "December 5" in answer["span"]["text"]
    assert answer["dates"][0]["resolved"] == "2025-12-05"
    assert answer["dates"][0]["approximate"] is True
    assert doc["no_answer"] is None


@pytest.mark.parametrize("question, day", [
    pytest.param("On what date did Putin call Modi for Modi's birthday?", "2025-09-17",
                 marks=pytest.mark.xfail(strict=True, reason="known miss: the reader picks December 5 in the "
                                         "whole-article passage (eval/RESULTS.md, Reader)")),
    ("When is Putin expected to visit India for the annual summit?", "2025-12-05"),
    ("When did Putin last visit India?", "2021"),
])
def test_dates_in_the_user_article_resolve_to_the_right_day(archive, question, day):
    """Questions about the user's article (filtered to it): the answer's first date is the right day."""
    answer = archive.answer(Query(question, k=5, filters=Filters(article_ids=(USER_ARTICLE,))))["answer"]
    assert answer is not None and answer["article_id"] == USER_ARTICLE
    assert answer["dates"][0]["resolved"] == day
    assert answer["span"] is not None and answer["dates"][0]["start"] < answer["span"]["end"]


# q27 (the 2025 Tour de France) and q28 (the price of gold) meet near-miss articles (a marathon's
# "won the men's race", a central bank's "consumer price growth"); the abstention threshold is
# fitted on SQuAD tune titles (eval/RESULTS.md, Reader), not on these questions.
@pytest.mark.parametrize("q", UNANSWERABLE, ids=lambda q: q["id"])
def test_unanswerable_question_abstains_with_a_reason_and_keeps_passages(archive, q):
    doc = _ask(archive, q["question"])
    assert doc["answer"] is None
    assert isinstance(doc["no_answer"]["reason"], str) and doc["no_answer"]["reason"]
    assert doc["passages"], "the nearest passages are still listed"


def test_offsets_slice_the_article_exactly(archive):
    for q in ANSWERABLE:
        answer = _ask(archive, q["question"])["answer"]
        if answer is None:
            continue
        text = archive.get_article(answer["article_id"]).text
        assert text[answer["start"]:answer["end"]] == answer["text"]
        span = answer["span"]
        if span is not None:
            assert text[span["start"]:span["end"]] == span["text"]
            assert answer["start"] <= span["start"] < span["end"] <= answer["end"]
        for d in answer["dates"]:
            assert text[d["start"]:d["end"]] == d["text"]
            assert answer["start"] <= d["start"] < d["end"] <= answer["end"]


def test_most_sample_questions_are_answered_from_the_right_sentence(archive):
    """A regression floor, not a figure (those are in eval/RESULTS.md): the answer sentence holds a gold
    answer for at least half of the answerable sample questions, and the span for 40%."""
    hits, spans = 0, 0
    for q in ANSWERABLE:
        answer = _ask(archive, q["question"])["answer"]
        if answer is None:
            continue
        golds = [normalize_answer(g) for g in q["answers"]]
        hits += any(g in normalize_answer(answer["text"]) for g in golds)
        spans += bool(answer["span"]) and any(g in normalize_answer(answer["span"]["text"]) for g in golds)
    assert hits >= 0.5 * len(ANSWERABLE)
    assert spans >= 0.4 * len(ANSWERABLE)


def test_passages_have_distinct_texts_and_one_citation_per_article(archive):
    for q in QUESTIONS:
        passages = _ask(archive, q["question"])["passages"]
        texts = [p["text"] for p in passages]
        assert len(texts) == len(set(texts))
        by_article: dict[str, set[int]] = {}
        for p in passages:
            by_article.setdefault(p["article_id"], set()).add(p["citation"])
            assert archive.get_article(p["article_id"]).text[p["start"]:p["end"]] == p["text"]
        assert all(len(c) == 1 for c in by_article.values())
        numbers = sorted({c for cs in by_article.values() for c in cs})
        assert numbers == list(range(1, len(numbers) + 1))
        spans = sorted((p["article_id"], p["start"], p["end"]) for p in passages)
        for (a1, _, e1), (a2, s2, _) in zip(spans, spans[1:]):
            assert a1 != a2 or e1 < s2, "passages of one article never overlap"


def test_term_weights_favour_rare_stems(archive):
    weights = archive.derived().lexical.term_weights()
    rare, common = content_stems("Lavrov said")
    assert weights.idf(rare) > weights.idf(common) > 0


@pytest.mark.parametrize("question, resolved", [
    ("When is Putin's visit to India expected?", "2025-12-05"),
    ("When is Putin expected to visit India?", "2025-12-05"),
    pytest.param("When did Putin last visit India?", "2021",
                 marks=pytest.mark.xfail(strict=True, reason="known miss on the bundled sample article")),
])
def test_tense_of_a_when_question_picks_a_future_or_past_date(archive, question, resolved):
    """Over the bundled sample article alone (what `make run` serves), tense decides between the
    expected visit and the last one."""
    from rag.query import Filters

    result = archive.answer(Query(question, filters=Filters(article_ids=("india-russia-summit-2025",))))
    assert result["answer"]["dates"][0]["resolved"] == resolved

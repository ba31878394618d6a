"""Retrieval over a real index: modes, fusion, exact filters, recency, and time named in a question."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from rag.archive import Archive
from rag.articles import make_article
from rag.errors import InvalidInput
from rag.rescore import ChunkContext, features
from rag.query import Filters
from rag.retrieval import Hit, fuse, prefer_recent
from rag.settings import FusionSettings
from rag.timeframe import find_timeframe, parse_as_of
from rag.query import Query

AS_OF = "2025-12-03"  # a Wednesday

ARTICLES = [
    ("bridge-2024", "2024-01-10", "Harbour Times", "The Kestrel Bridge over the Avon estuary reopened on Wednesday after "
     "eighteen months of repairs costing 40 million pounds, the county council said."),
    ("library-budget", "2025-02-14", "Daily Ledger", "The county council approved a new budget for public libraries, "
     "adding weekend opening hours in three towns."),
    ("bus-fares", "2025-04-02", "Harbour Times", "The county council froze bus fares for another year after a vote "
     "on Tuesday evening."),
    ("school-meals", "2025-06-20", "Daily Ledger", "Free school meals will be extended to all primary pupils, the "
     "county council announced."),
    ("park-trees", "2025-07-08", "Harbour Times", "Volunteers planted two hundred oak trees in Riverside Park with "
     "support from the county council."),
    ("flood-plan", "2025-08-30", "Daily Ledger", "The county council published a flood defence plan for the low-lying "
     "villages along the coast."),
    ("market-hall", "2025-10-11", "Harbour Times", "The old market hall will become a food court, the county council "
     "decided after a public consultation."),
    ("council-week", "2025-11-26", "Daily Ledger", "The county council decided to close the Elm Street car park and "
     "turn it into housing."),
    ("ferry-old", "2025-03-01", "Harbour Times", "The county council changed the harbour ferry timetable to add an "
     "early morning crossing."),
    ("ferry-new", "2025-09-01", "Harbour Times", "The county council changed the harbour ferry timetable to add an "
     "early morning crossing."),
    ("physician", "2025-05-05", "Daily Ledger", "A physician prescribed antibiotics to the boy after his temperature "
     "rose sharply overnight."),
    ("archive-note", None, None, "The county council archive holds the original drawings of the Kestrel Bridge from "
     "the design competition."),
]


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> Archive:
    archive = Archive.open("town", tmp_path_factory.mktemp("retrieval"), create=True)
    records = [{"id": i, "date": d, "source": s, "text": t} for i, d, s, t in ARTICLES]
    report = archive.ingest([make_article(r, r["id"]) for r in records])
    assert not report.failed and len(report.added) == len(ARTICLES)
    return archive


@pytest.fixture(scope="module")
def town_client(town):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app("town", str(town.path.parent))) as c:
        yield c


def ids(passages) -> list[str]:
    return list(dict.fromkeys(p.article.id for p in passages))


DATES = {i: d for i, d, _, _ in ARTICLES}
SOURCES = {i: s for i, _, s, _ in ARTICLES}


# --- fusion and second-stage arithmetic on hand-made cases ------------------------------------

def test_rrf_sums_weighted_reciprocal_ranks():
    dense = [(1, 0.9), (2, 0.8)]
    lexical = [(2, 7.0), (3, 5.0)]
    hits = fuse(dense, lexical, FusionSettings(rrf_k=60))
    assert [h.chunk_id for h in hits] == [2, 1, 3]
    assert hits[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert (hits[0].dense_rank, hits[0].bm25_rank) == (2, 1)
    assert hits[1].score == pytest.approx(1 / 61) and hits[1].bm25_rank is None
    weighted = fuse(dense, lexical, FusionSettings(rrf_k=1, dense_weight=3.0, bm25_weight=0.5))
    assert [h.chunk_id for h in weighted] == [1, 2, 3]
    assert [h.score for h in weighted] == pytest.approx([3 / 2, 3 / 3 + 0.5 / 2, 0.5 / 3])


def test_sentence_features_measure_coverage_and_adjacent_pairs():
    idf = {"kestrel": 2.0, "bridg": 1.0, "reopen": 1.0, "estuari": 3.0}
    terms = ["estuari", "kestrel", "bridg", "reopen"]
    q = np.array([1.0, 0.0])
    context = ChunkContext("Estuary crossings", "Kestrel Bridge closed. The bridge reopened.",
                           ["Kestrel Bridge closed.", "The bridge reopened."],
                           np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32))
    dense, sentence, coverage, bigram, chunk = features(terms, idf, q, 0.5, context)
    assert dense == 0.5 and sentence == pytest.approx(1.0)
    assert coverage == pytest.approx(3 / 7)  # "kestrel bridge": 2 + 1 of 7
    assert bigram == pytest.approx(3 / 10)  # pairs weigh 5, 3, 2; the best sentence holds (kestrel, bridg)
    assert chunk == pytest.approx(1.0)  # the title holds "estuary"


def test_recency_breaks_near_ties_but_never_buries_a_clear_best():
    settings = FusionSettings(recency_weight=0.1, recency_half_life_days=30)
    today = date(2025, 12, 1)
    dates = {1: "2020-01-01", 2: "2025-12-01", 3: "2025-11-30"}
    clear = [Hit(1, 1.0), Hit(2, 0.5), Hit(3, 0.0)]
    assert [h.chunk_id for h in prefer_recent(clear, dates, today, settings)] == [1, 2, 3]
    near = [Hit(1, 1.0), Hit(2, 0.97), Hit(3, 0.0)]
    boosted = prefer_recent(near, dates, today, settings)
    assert [h.chunk_id for h in boosted] == [2, 1, 3]
    assert boosted[0].score == pytest.approx(0.97 + 0.1 * 1.0)  # at most weight x score range
    assert prefer_recent(near, {1: None, 2: None}, today, settings)[0].chunk_id == 1  # undated: no boost


# --- modes --------------------------------------------------------------------------------

def test_modes_rank_differently_where_expected(town):
    question = "What did a doctor give the child with a fever?"  # no word in common with the answer
    bm25 = ids(town.search(Query(question, 5, "bm25", as_of=AS_OF)).passages)
    dense = ids(town.search(Query(question, 5, "dense", as_of=AS_OF)).passages)
    hybrid = ids(town.search(Query(question, 5, "hybrid", as_of=AS_OF)).passages)
    assert "physician" not in bm25
    assert dense[0] == "physician" and hybrid[0] == "physician"
    exact = "Which bridge cost 40 million pounds to repair?"
    assert ids(town.search(Query(exact, 3, "bm25", as_of=AS_OF)).passages)[0] == "bridge-2024"
    assert ids(town.search(Query(exact, 3, "hybrid", as_of=AS_OF)).passages)[0] == "bridge-2024"


def test_retrieval_block_records_mode_and_fusion(town):
    block = town.search(Query("Kestrel Bridge repairs", 3, "hybrid", as_of=AS_OF)).retrieval
    assert block["mode"] == "hybrid"
    fusion = block["fusion"]
    assert fusion["rrf_k"] == 60 and fusion["dense_weight"] == 1.0 and fusion["bm25_weight"] == 1.0
    assert set(fusion["rescore_weights"]) >= {"dense", "sentence", "coverage", "bigram", "chunk_coverage"}
    assert town.search(Query("Kestrel Bridge repairs", 3, "bm25", as_of=AS_OF)).retrieval["mode"] == "bm25"
    with pytest.raises(InvalidInput):
        town.search(Query("Kestrel Bridge repairs", 3, "sparse"))


# --- filters --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_date_filter_excludes_and_includes_the_only_relevant_article(town, mode):
    question = "When did the Kestrel Bridge reopen after repairs?"
    outside = ids(town.search(Query(question, 5, mode, Filters(date_from="2025-01-01"), as_of=AS_OF)).passages)
    assert "bridge-2024" not in outside and "archive-note" not in outside
    assert outside and all(DATES[i] >= "2025-01-01" for i in outside)
    inside = ids(town.search(Query(question, 5, mode, Filters(date_from="2024-01-10", date_to="2024-01-10"), as_of=AS_OF)).passages)
    assert inside == ["bridge-2024"]  # inclusive bounds, compared as dates


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_filtered_query_returns_k_when_k_exist(town, mode):
    question = "What did the county council decide?"  # every dated article but one mentions the council
    in_range = [i for i, d in DATES.items() if d and "2025-02-01" <= d <= "2025-09-30" and i != "physician"]
    assert len(in_range) >= 6
    passages = town.search(Query(question, 6, mode, Filters(date_from="2025-02", date_to="2025-09"), as_of=AS_OF)).passages
    assert len(ids(passages)) == 6
    assert all("2025-02-01" <= DATES[i] <= "2025-09-30" for i in ids(passages))
    narrow = town.search(Query(question, 6, mode, Filters(date_from="2025-10-01", date_to="2025-11-30"), as_of=AS_OF)).passages
    assert sorted(ids(narrow)) == ["council-week", "market-hall"]


def test_source_and_article_id_filters(town):
    question = "What did the county council decide?"
    ledger = ids(town.search(Query(question, 10, "hybrid", Filters(source="Daily Ledger"), as_of=AS_OF)).passages)
    assert ledger and all(SOURCES[i] == "Daily Ledger" for i in ledger)
    assert len(ledger) == sum(1 for s in SOURCES.values() if s == "Daily Ledger")
    chosen = ids(town.search(Query(question, 10, "hybrid", Filters(article_ids=("bus-fares", "flood-plan")), as_of=AS_OF)).passages)
    assert sorted(chosen) == ["bus-fares", "flood-plan"]


def test_undated_articles_need_include_undated_under_a_date_bound(town):
    question = "Who holds the drawings of the Kestrel Bridge design competition?"
    plain = ids(town.search(Query(question, 3, "hybrid", as_of=AS_OF)).passages)
    assert plain[0] == "archive-note"
    bounded = ids(town.search(Query(question, 3, "hybrid", Filters(date_to="2025-12-31"), as_of=AS_OF)).passages)
    assert "archive-note" not in bounded
    kept = ids(town.search(Query(question, 3, "hybrid", Filters(date_to="2025-12-31", include_undated=True), as_of=AS_OF)).passages)
    assert kept[0] == "archive-note"


def test_filter_dates_are_validated():
    with pytest.raises(InvalidInput):
        Filters(date_from="2025-13-01")
    with pytest.raises(InvalidInput):
        Filters(date_from="yesterday")
    with pytest.raises(InvalidInput):
        Filters(date_from="2025-06-01", date_to="2025-05-01")
    assert (Filters(date_from="2025", date_to="2025-02").date_from, Filters(date_to="2024-02").date_to) == \
        ("2025-01-01", "2024-02-29")


# --- recency on the real index --------------------------------------------------------------

def test_prefer_recent_orders_equal_articles_by_date_and_keeps_the_only_relevant_first(town):
    question = "When was the harbour ferry timetable changed?"  # the two ferry articles are copies: one story
    grouped = town.search(Query(question, 2, "hybrid", as_of=AS_OF)).passages
    assert grouped[0].article.id == "ferry-old" and [m.article_id for m in grouped[0].also_in] == ["ferry-new"]
    plain = ids(town.search(Query(question, 2, "hybrid", as_of=AS_OF, dedupe=False)).passages)
    recent = ids(town.search(Query(question, 2, "hybrid", recency="prefer_recent", as_of=AS_OF, dedupe=False)).passages)
    assert set(plain) == set(recent) == {"ferry-old", "ferry-new"}
    assert plain[0] == "ferry-old" and recent[0] == "ferry-new"  # equal text: the tie goes to the newer
    only = "When did the Kestrel Bridge reopen after repairs?"  # the oldest article is the only answer
    for mode in ("dense", "bm25", "hybrid"):
        assert ids(town.search(Query(only, 5, mode, recency="prefer_recent", as_of=AS_OF)).passages)[0] == "bridge-2024"


# --- time named in the question -------------------------------------------------------------

@pytest.mark.parametrize("question, expected", [
    ("What happened in October 2025?", ("October 2025", "2025-10-01", "2025-10-31")),
    ("What did the council decide last week?", ("last week", "2025-11-24", "2025-11-30")),
    ("Who resigned yesterday?", ("yesterday", "2025-12-02", "2025-12-02")),
    ("What changed this year?", ("this year", "2025-01-01", "2025-12-03")),
    ("What happened in October?", ("October", "2025-10-01", "2025-10-31")),
    ("What happened in the past two weeks?", ("the past two weeks", "2025-11-20", "2025-12-03")),
    ("What was agreed on May 4?", ("May 4", "2025-05-04", "2025-05-04")),
    ("What changed since March 2025?", ("since March 2025", "2025-03-01", "2025-12-03")),
    ("Who led the club before 2020?", ("before 2020", None, "2019-12-31")),
    ("What happened between March and May 2025?", ("March and May 2025", "2025-03-01", "2025-05-31")),
])
def test_find_timeframe(question, expected):
    frame = find_timeframe(question, date(2025, 12, 3))
    assert (frame.text, frame.date_from, frame.date_to) == expected


@pytest.mark.parametrize("question", [
    "When will the minister visit in December?",  # the future: articles about it predate it
    "What may the council decide?",  # "may" the verb
    "Which team won Super Bowl 50?",
    "What caused the 1973 oil crisis?",  # a year without a preposition is a name, not a time
])
def test_find_timeframe_ignores(question):
    assert find_timeframe(question, date(2025, 12, 3)) is None


def test_as_of_is_validated():
    assert parse_as_of("2025-01-31") == date(2025, 1, 31)
    with pytest.raises(InvalidInput):
        parse_as_of("31/01/2025")


def test_time_in_question_narrows_dates_and_explicit_filter_wins(town):
    question = "What did the county council decide last week?"
    result = town.search(Query(question, 5, "hybrid", as_of=AS_OF))
    passages, block = result.passages, result.retrieval
    assert block["time_filter"] == {"text": "last week", "date_from": "2025-11-24", "date_to": "2025-11-30",
                                    "include_undated": True, "applied": True}
    assert set(ids(passages)) <= {"council-week", "archive-note"} and ids(passages)[0] == "council-week"
    result = town.search(Query(question, 5, "hybrid", Filters(date_from="2025-01-01"), as_of=AS_OF))
    passages, block = result.passages, result.retrieval
    assert block["time_filter"] is None and len(ids(passages)) == 5
    month = ids(town.search(Query("What did the county council decide in October 2025?", 5, "hybrid", as_of=AS_OF)).passages)
    assert month[0] == "market-hall" and set(month) <= {"market-hall", "archive-note"}


def test_time_outside_the_archive_is_shown_but_not_applied(town):
    result = town.search(Query("What did the county council decide in 1990?", 3, "hybrid", as_of=AS_OF))
    passages, block = result.passages, result.retrieval
    assert block["time_filter"]["applied"] is False and block["time_filter"]["date_from"] == "1990-01-01"
    assert len(ids(passages)) == 3


# --- HTTP -------------------------------------------------------------------------------------

def test_api_filters_recency_and_as_of(town_client):
    body = {"question": "When did the Kestrel Bridge reopen after repairs?", "k": 3,
            "filters": {"date_from": "2025-01-01", "source": "Harbour Times"}, "as_of": AS_OF}
    for route in ("/answer", "/search"):
        r = town_client.post(route, json=body)
        assert r.status_code == 200, r.text
        passages = r.json()["passages"]
        assert passages and all(p["source"] == "Harbour Times" and p["date"] >= "2025-01-01" for p in passages)
        assert r.json()["retrieval"]["filters"]["source"] == "Harbour Times"
    got = town_client.get("/search", params={"q": "county council ferry timetable", "k": 2, "article_ids": ["ferry-old", "ferry-new"],
                                             "recency": "prefer_recent", "as_of": AS_OF, "dedupe": False}).json()
    assert [p["article_id"] for p in got["passages"]] == ["ferry-new", "ferry-old"]
    timed = town_client.post("/search", json={"question": "What did the council decide last week?", "as_of": AS_OF}).json()
    assert timed["retrieval"]["time_filter"]["date_from"] == "2025-11-24"


@pytest.mark.parametrize("body", [
    {"filters": {"date_from": "2025-02-30"}},
    {"filters": {"date_to": "next week"}},
    {"filters": {"date_from": "2025-06-01", "date_to": "2025-01-01"}},
    {"as_of": "03/12/2025"},
    {"recency": "newest"},
    {"mode": "sparse"},
])
def test_api_rejects_bad_retrieval_input(town_client, body):
    for route in ("/answer", "/search"):
        r = town_client.post(route, json={"question": "What did the council decide?", **body})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_input"
    r = town_client.get("/search", params={"q": "council", "date_from": "2025-99-01"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"

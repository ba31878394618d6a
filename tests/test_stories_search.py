"""Stories in search (issue 19): the user's article and four reprints of it from four outlets, with the
sample corpus (which holds a rewrite of it: another story), through the real model, index and API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.archive import Archive
from rag.articles import iter_sources, load_txt, sample_corpus_path
from rag.query import Filters, Query

QUESTION = "When is Putin's visit to India expected?"
USER_ARTICLE = "2025-10-07-india-russia-summit"
REPRINTS_FILE = Path(__file__).parent / "data" / "syndicated" / "india-russia-reprints.jsonl"
REPRINTS = {r["id"]: r["source"] for r in map(json.loads, REPRINTS_FILE.open(encoding="utf-8"))}
COPIES = {USER_ARTICLE, *REPRINTS}
QUESTIONS = [json.loads(line)["question"] for line in (Path(__file__).parent / "data" / "sample_questions.jsonl").open()]


@pytest.fixture(scope="module")
def syndicated(tmp_path_factory, user_corpus) -> Archive:
    archive = Archive.open("syndicated", tmp_path_factory.mktemp("stories"), create=True)
    report = archive.ingest(iter_sources([str(sample_corpus_path()), str(user_corpus), str(REPRINTS_FILE)]))
    assert not report.failed and len(report.added) == 16 + 1 + 4
    return archive


def test_top_five_are_five_stories_and_the_first_names_the_other_outlets(syndicated):
    passages = syndicated.search(Query(QUESTION, k=5)).passages
    assert len(passages) == 5
    stories = syndicated.store.story_ids(p.article.id for p in passages)
    assert len({stories[p.article.id] for p in passages}) == 5
    first = passages[0]
    assert first.article.id in COPIES
    assert {m.article_id for m in first.also_in} == COPIES - {first.article.id}
    outlets = {REPRINTS.get(m.article_id, "user") for m in first.also_in}
    assert len(outlets) == 4
    assert "india-russia-summit-2025" in {p.article.id for p in passages}  # the sample's rewrite: its own story


def test_dedupe_false_shows_every_copy(syndicated):
    passages = syndicated.search(Query(QUESTION, k=5, dedupe=False)).passages
    assert {p.article.id for p in passages} == COPIES
    assert all({m.article_id for m in p.also_in} == COPIES - {p.article.id} for p in passages)


def test_a_source_filter_finds_that_outlets_copy(syndicated):
    for article_id, source in REPRINTS.items():
        passages = syndicated.search(Query(QUESTION, k=5, filters=Filters(source=source))).passages
        assert [p.article.id for p in passages] == [article_id]
        assert {m.article_id for m in passages[0].also_in} == COPIES - {article_id}


def test_nothing_shown_without_grouping_is_lost_with_it(syndicated):
    """Every article the ungrouped top k shows is shown grouped, or named in a shown passage's also_in."""
    for question in QUESTIONS + [QUESTION]:
        every = syndicated.search(Query(question, k=5, dedupe=False)).passages
        grouped = syndicated.search(Query(question, k=5)).passages
        reachable = {p.article.id for p in grouped} | {m.article_id for p in grouped for m in p.also_in}
        assert {p.article.id for p in every} <= reachable, question


def test_stats_and_check_count_and_verify_stories(syndicated):
    assert syndicated.stats()["stories"] == {"stories": 17, "syndicated_stories": 1, "duplicates": 4}
    assert syndicated.check() == []


def test_the_api_and_its_get_form_take_dedupe(syndicated):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(syndicated.name, str(syndicated.path.parent)), base_url="http://127.0.0.1:8000") as c:
        grouped = c.post("/answer", json={"question": QUESTION}).json()
        every = c.post("/search", json={"question": QUESTION, "dedupe": False}).json()
        got = c.get("/search", params={"q": QUESTION, "dedupe": "false"}).json()
        bad = c.post("/search", json={"question": QUESTION, "dedupe": "sometimes"})
    assert len(grouped["passages"][0]["also_in"]) == 4 and grouped["retrieval"]["stories"]["dedupe"] is True
    assert grouped["answer"]["span"]["text"].endswith("December 5")
    assert {p["article_id"] for p in every["passages"]} == COPIES == {p["article_id"] for p in got["passages"]}
    assert set(every["passages"][0]["also_in"][0]) == {"article_id", "source", "date", "url"}
    assert bad.status_code == 422 and "error" in bad.json()


def test_deleting_the_lead_promotes_the_next_member(tmp_path, user_corpus):
    archive = Archive.open("lead", tmp_path, create=True)
    archive.ingest(iter_sources([str(user_corpus), str(REPRINTS_FILE)]))
    story = archive.store.story_ids([USER_ARTICLE])[USER_ARTICLE]
    lead = archive.store.story_members([story])[story][0]
    assert lead.article_id == USER_ARTICLE  # 2025-10-07, and first by id among that day's copies
    archive.delete(USER_ARTICLE)
    members = archive.store.story_members([story])[story]
    assert members[0].article_id == "deccan-ledger-modi-putin-birthday-call"
    assert {m.article_id for m in members} == set(REPRINTS)
    first = archive.search(Query(QUESTION, k=5)).passages[0]
    assert {m.article_id for m in first.also_in} == set(REPRINTS) - {first.article.id}
    assert archive.check() == []


def test_the_harness_scores_with_and_without_grouping(tmp_path, user_corpus):
    """The sample's rewrite of the story is the judged article: five copies of one story push it out of
    the ungrouped top five; grouped, the story is one result and the rewrite ranks second."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from newsrag import cli

    folder = tmp_path / "qa"
    folder.mkdir()
    user = load_txt(user_corpus / f"{USER_ARTICLE}.txt")
    rows = [json.loads(line) for line in (sample_corpus_path() / "articles.jsonl").open()]
    rows += [{"id": user.id, "date": user.date, "text": user.text}, *map(json.loads, REPRINTS_FILE.open())]
    (folder / "articles.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    question = {"id": "q", "question": QUESTION, "answers": ["around December 5"],
                "relevant_article_ids": ["india-russia-summit-2025"]}
    (folder / "questions.jsonl").write_text(json.dumps(question) + "\n")
    reports = {}
    for flag in ([], ["--no-dedupe"]):
        out = tmp_path / f"out{len(flag)}"
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            assert cli.main(["eval", str(folder), "--format", "qa", "--cache-dir", str(tmp_path / "cache"),
                             "--out", str(out), *flag]) == 0
        reports[bool(flag)] = json.loads((out / "report.json").read_text())
    grouped, every = reports[False], reports[True]
    assert grouped["config"]["dedupe"] is True and every["config"]["dedupe"] is False
    assert grouped["modes"]["hybrid"]["metrics"]["recall@5"] == 1.0
    assert every["modes"]["hybrid"]["metrics"]["recall@5"] == 0.0


def test_an_index_made_before_stories_gets_them_when_opened(tmp_path, user_corpus):
    import sqlite3

    archive = Archive.open("old", tmp_path, create=True)
    archive.ingest(iter_sources([str(user_corpus), str(REPRINTS_FILE)]))
    archive.store.close()
    conn = sqlite3.connect(tmp_path / "old" / "meta.sqlite")  # as an index of the previous format holds
    conn.executescript("DROP TABLE story_bands; DROP TABLE story_signatures; DELETE FROM meta WHERE key LIKE '%stor%';")
    conn.close()
    reopened = Archive.open("old", tmp_path)
    assert reopened.stats()["stories"] == {"stories": 1, "syndicated_stories": 1, "duplicates": 4}
    assert reopened.check() == []
    first = reopened.search(Query(QUESTION, k=5)).passages[0]
    assert len(first.also_in) == 4

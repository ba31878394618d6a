"""The index on disk: round trip and reopen, re-ingest no-op, replace, delete, model checks."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rag.archive import Archive
from rag.articles import Article, clean_id, make_article
from rag.errors import ArticleNotFound, EmptyIndex, IndexMismatch, IndexNotFound, InvalidInput, LoadError
from rag.query import Query

ARTICLES = [
    Article(id="ferry", title="Ferry terminal approved", date="2025-09-12", source="Harbour Post",
            text="The harbour authority approved a new ferry terminal on Friday. Building starts in March. "
                 "The terminal will cost 40 million dollars."),
    Article(id="library", title="Library reopens", date="2025-09-20", source="City Desk",
            text="The central library reopened after a two-year renovation. It now has a rooftop reading room."),
]


@pytest.fixture()
def small(tmp_path):
    archive = Archive.open("small", tmp_path, create=True)
    archive.ingest(ARTICLES)
    return archive


def test_user_question_cites_the_article_and_the_december_5_sentence(archive):
    result = archive.answer(Query("When is Putin's visit to India expected?"))
    answer = result["answer"]
    assert "December 5" in answer["text"]
    article = archive.get_article(answer["article_id"])
    assert article.text[answer["start"]:answer["end"]] == answer["text"]
    cited = [p for p in result["passages"] if p["citation"] == answer["citation"]]
    assert cited and all(p["article_id"] == answer["article_id"] for p in cited)
    assert any(p["date"] == "2025-10-07" for p in cited)


def test_every_passage_slices_its_article_and_citations_are_per_article(archive):
    result = archive.answer(Query("What did the central bank decide about interest rates?", k=8))
    numbers: dict[str, int] = {}
    for p in result["passages"]:
        assert archive.get_article(p["article_id"]).text[p["start"]:p["end"]] == p["text"]
        assert numbers.setdefault(p["article_id"], p["citation"]) == p["citation"]
    assert sorted(set(numbers.values())) == list(range(1, len(numbers) + 1))
    spans = sorted((p["article_id"], p["start"], p["end"]) for p in result["passages"])
    for (a1, _, e1), (a2, s2, _) in zip(spans, spans[1:]):
        assert a1 != a2 or s2 > e1, "passages of one article never overlap"


def test_reopen_gives_the_same_results_and_manifest(small, tmp_path):
    before = small.answer(Query("How much will the ferry terminal cost?"))
    reopened = Archive.open("small", tmp_path)
    after = reopened.answer(Query("How much will the ferry terminal cost?"))
    assert after["passages"] == before["passages"] and after["answer"] == before["answer"]
    assert "40 million" in after["answer"]["text"]
    manifest = json.loads((tmp_path / "small" / "manifest.json").read_text())
    assert manifest["counts"]["articles"] == 2 and manifest["dimension"] == 384
    assert manifest["model_fingerprint"] and manifest["settings"]["chunking"]["target_tokens"] > 0
    assert reopened.check() == []


def test_reingest_unchanged_is_a_noop_and_changed_replaces(small):
    generation = small.store.generation
    report = small.ingest(ARTICLES)
    assert report.unchanged == ["ferry", "library"] and not report.added and not report.replaced
    assert small.store.generation == generation
    changed = Article(id="library", title="Library reopens", date="2025-09-21",
                      text="The central library will stay closed until spring because of a leaking roof.")
    report = small.ingest([changed])
    assert report.replaced == ["library"]
    assert small.get_article("library").text == changed.text
    result = small.answer(Query("Why is the library closed?", k=5))
    assert all("rooftop reading room" not in p["text"] for p in result["passages"])
    assert small.check() == []


def test_two_ids_that_clean_to_one_are_reported_not_merged(small):
    records = [{"id": "ferry timetable", "text": "The ferry timetable adds an early crossing."},
               {"id": "ferry?timetable", "text": "The ferry timetable drops the late crossing."}]
    report = small.ingest([make_article(r, "unused") for r in records])
    assert report.added == ["ferry-timetable"]
    assert [f.source for f in report.failed] == ["ferry?timetable"]
    assert "'ferry timetable' already took" in report.failed[0].reason
    assert small.get_article("ferry-timetable").text == records[0]["text"]
    assert small.get_article("ferry-timetable").extra["given_id"] == "ferry timetable"


def test_delete_removes_from_faiss_bm25_and_sqlite(small, tmp_path):
    chunk_ids = small.store.chunk_ids_for(["ferry"])
    small.delete("ferry")
    with pytest.raises(ArticleNotFound):
        small.get_article("ferry")
    derived = small.derived()
    assert not set(chunk_ids) & set(derived.vectors.ids().tolist())
    assert not set(chunk_ids) & set(derived.lexical.ids.tolist())
    reopened = Archive.open("small", tmp_path)
    passages = reopened.search(Query("ferry terminal cost", k=5, mode="bm25")).passages
    assert all(p.article.id != "ferry" for p in passages)
    assert reopened.check() == []
    with pytest.raises(ArticleNotFound):
        reopened.delete("ferry")


def test_crash_between_commit_and_publish_recovers_on_open(small, tmp_path):
    import shutil

    shutil.rmtree(tmp_path / "small" / "segments")
    (tmp_path / "small" / "segments.json").unlink()
    reopened = Archive.open("small", tmp_path)
    assert reopened.check() == []
    assert reopened.answer(Query("ferry terminal"))["passages"]


def test_opening_with_another_model_or_format_says_what_to_do(small, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSRAG_MODEL", "some/other-model")
    with pytest.raises(IndexMismatch, match="built with model"):
        Archive.open("small", tmp_path)
    monkeypatch.delenv("NEWSRAG_MODEL")
    manifest_path = tmp_path / "small" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model_fingerprint"] = "0" * 16
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="weights"):
        Archive.open("small", tmp_path).verify_model()
    manifest["format_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="format"):
        Archive.open("small", tmp_path)


def test_unknown_empty_and_bad_index_names(tmp_path):
    with pytest.raises(IndexNotFound):
        Archive.open("missing", tmp_path)
    with pytest.raises(InvalidInput):
        Archive.open("../escape", tmp_path, create=True)
    empty = Archive.open("empty", tmp_path, create=True)
    with pytest.raises(EmptyIndex):
        empty.answer(Query("anything?"))


def test_chunks_never_truncated_by_the_model(archive):
    limit = archive.embedder.max_tokens
    for article_id in ("india-russia-summit-2025", "2025-10-07-india-russia-summit"):
        article = archive.get_article(article_id)
        rows = archive.store.chunks_by_id(archive.store.chunk_ids_for([article_id]))
        for row in rows.values():
            text = article.text[row.start:row.end]
            assert archive.embedder.count_model_tokens(f"{article.title}\n{text}") <= limit


def test_stored_vectors_are_unit_length(archive):
    ids, vectors = next(archive.store.iter_chunk_vectors())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


GIVEN_IDS = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6),
    st.lists(st.sampled_from(["日本", "中国", "Zürich", "zürich", "ZÜRICH", "ｆｏｏ", "foo", "Foo", " ", "\t", "?", "#",
                              "%", "-", ".", "/", "é", "e\u0301", "हिन्दी", "ﬁ"]), min_size=1, max_size=4).map("".join))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(GIVEN_IDS, min_size=1, max_size=6), second=st.lists(GIVEN_IDS, min_size=1, max_size=6))
def test_distinct_given_ids_are_never_stored_under_one_id(first, second):
    """Issue 13 D5/D9: '日本' and '中国' were both stored as 'article', the second over the first. Whatever the
    ids (any script, punctuation, case, spacing), one stored id holds one given id, in one ingest or across
    two; a refused article is named by file and line and overwrites nothing."""
    with tempfile.TemporaryDirectory() as folder:
        archive = Archive.open("ids", folder, create=True)
        holder: dict[str, str] = {}  # stored id -> the given id it belongs to
        expected: dict[str, str] = {}  # stored id -> the text it must hold
        for round_, given in enumerate((first, second)):
            items = []
            for n, given_id in enumerate(given):
                try:
                    items.append(make_article({"id": given_id, "text": f"Note {round_}-{n} about the tram."}, "x",
                                              f"round{round_}.jsonl:{n + 1}"))
                except LoadError:
                    assert clean_id(given_id) in (".", "..")
            report = archive.ingest(items)
            refused = {f.source: f.reason for f in report.failed}
            last = {item.given_id: item.origin for item in items}  # within one ingest the later of one id wins
            for item in items:
                owner = holder.setdefault(item.id, item.given_id)
                if item.given_id == owner:
                    expected[item.id] = item.text
                    assert item.origin not in refused
                else:
                    assert "distinct id" in refused[last[item.given_id]]
            for stored_id, owner in holder.items():
                article = archive.get_article(stored_id)
                assert article.given_id == owner and article.text == expected[stored_id]
        assert archive.store.count("articles") == len(holder)
        archive.wait_for_merges()  # a tiered merge may still be writing segments/ when the folder goes


def test_settings_live_in_the_manifest_and_a_different_one_is_named(tmp_path, monkeypatch):
    """The manifest records the settings; a reopen takes the index-shaping ones from it, names a
    query-time difference in stats, and refuses an index-shaping difference, naming it."""
    monkeypatch.setenv("NEWSRAG_CHUNK_TOKENS", "120")
    monkeypatch.setenv("NEWSRAG_RERANK", "20")
    Archive.open("tuned", tmp_path, create=True).ingest(ARTICLES)
    recorded = json.loads((tmp_path / "tuned" / "manifest.json").read_text())["settings"]
    assert recorded["chunking"]["target_tokens"] == 120 and recorded["fusion"]["rerank"] == 20
    monkeypatch.delenv("NEWSRAG_CHUNK_TOKENS")
    monkeypatch.delenv("NEWSRAG_RERANK")
    reopened = Archive.open("tuned", tmp_path)
    assert reopened.settings.chunking.target_tokens == 120 and reopened.settings.fusion.rerank == 50
    assert reopened.stats()["settings_differ_from_manifest"] == ["fusion.rerank: 20 -> 50"]
    monkeypatch.setenv("NEWSRAG_CHUNK_TOKENS", "200")
    with pytest.raises(IndexMismatch, match=r"chunking\.target_tokens: 120 -> 200"):
        Archive.open("tuned", tmp_path)
    monkeypatch.setenv("NEWSRAG_CHUNK_TOKENS", "many")
    with pytest.raises(InvalidInput, match="NEWSRAG_CHUNK_TOKENS"):
        Archive.open("tuned", tmp_path)

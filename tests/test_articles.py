"""Loaders: txt with a date header, jsonl, html, folders with bad files, stable ids."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rag.archive import Archive
from rag.articles import Article, LoadFailure, clean_id, iter_sources, make_article
from rag.errors import LoadError
from rag.validation import MAX_TITLE_CHARS


def _load(*paths):
    items = list(iter_sources([str(p) for p in paths]))
    return [i for i in items if isinstance(i, Article)], [i for i in items if isinstance(i, LoadFailure)]


def test_txt_date_header_after_whitespace_and_first_sentence_title(tmp_path):
    (tmp_path / "a.txt").write_text("  \n date 2025-10-07 The council met on Monday. It voted 5-2.\n")
    [article], failures = _load(tmp_path / "a.txt")
    assert not failures
    assert article.date == "2025-10-07"
    assert article.text == "The council met on Monday. It voted 5-2."
    assert article.title == "The council met on Monday."
    assert article.id == "a"


def test_user_article_loads_with_its_date(user_corpus):
    [article], failures = _load(user_corpus)
    assert not failures and article.date == "2025-10-07"
    assert "around December 5" in article.text
    assert not article.text.startswith("date")


def test_jsonl_only_text_required_and_broken_lines_reported(tmp_path):
    lines = [json.dumps({"id": "x1", "title": "T", "date": "2025-01-02", "url": "http://e/x", "source": "S",
                         "text": "Body one."}),
             "{not json",
             json.dumps({"text": "Only text here. Second sentence."}),
             json.dumps({"id": "x3", "text": "   "})]
    (tmp_path / "feed.jsonl").write_text("\n".join(lines) + "\n")
    articles, failures = _load(tmp_path / "feed.jsonl")
    assert [a.id for a in articles] == ["x1", "feed-3"]
    assert articles[0].source == "S" and articles[0].url == "http://e/x"
    assert articles[1].title == "Only text here."
    assert sorted(f.source for f in failures) == [f"{tmp_path / 'feed.jsonl'}:2", f"{tmp_path / 'feed.jsonl'}:4"]


@pytest.mark.parametrize("given, stored", [
    ("2025-10-07", "2025-10-07"),
    ("2025-10-07T23:30:00-05:00", "2025-10-07"),
    ("Tue, 07 Oct 2025 23:30:00 -0500", "2025-10-07"),  # a feed's RFC 2822 date, kept in its own zone
    ("7 October 2025", "2025-10-07"),
    ("October 7th, 2025", "2025-10-07"),
])
def test_dates_iso_or_written_in_full(given, stored):
    assert make_article({"text": "Body.", "date": given}, "d").date == stored


@pytest.mark.parametrize("given", ["next week", "yesterday", "03/04/2025", "October 2025", "soon-ish 99"])
def test_relative_ambiguous_or_partial_dates_are_refused(given):
    with pytest.raises(LoadError, match="not a date"):
        make_article({"text": "Body.", "date": given}, "d")


def test_folder_recursive_with_bad_files_reported_by_name(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.txt").write_text("A good article. With two sentences.")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait.".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "notes.md").write_text("ignored: not an article format")
    articles, failures = _load(tmp_path)
    assert [a.id for a in articles] == ["sub/good"]
    reasons = {f.source.rsplit("/", 1)[-1]: f.reason for f in failures}
    assert set(reasons) == {"latin1.txt", "binary.txt", "empty.txt"}
    assert "UTF-8" in reasons["latin1.txt"]


def test_content_hash_changes_with_text_only():
    a = Article(id="a", text="One.", title="T")
    assert a.content_hash == Article(id="a", text="One.", title="T").content_hash
    assert a.content_hash != Article(id="a", text="Two.", title="T").content_hash


def test_html_main_text_title_and_date(tmp_path):
    body = " ".join(["The harbour authority approved a new ferry terminal on Friday."] * 3)
    html = (f"<html><head><title>Ferry terminal approved</title>"
            f'<meta name="date" content="2025-09-12"></head><body><nav>Menu</nav>'
            f"<article><h1>Ferry terminal approved</h1><p>{body}</p><p>{body}</p></article></body></html>")
    (tmp_path / "page.html").write_text(html)
    [article], failures = _load(tmp_path / "page.html")
    assert not failures
    assert article.title == "Ferry terminal approved"
    assert article.date == "2025-09-12"
    assert "ferry terminal" in article.text and "Menu" not in article.text


def test_missing_path_is_a_failure_not_a_crash(tmp_path):
    articles, failures = _load(tmp_path / "nope.txt")
    assert not articles and failures[0].reason == "no such file or folder"


def test_a_title_over_the_limit_fails_naming_file_and_line(tmp_path):
    """Issue 13 D2: a 500 KB title was accepted and crowded every chunk's text out of its vector."""
    (tmp_path / "feed.jsonl").write_text(json.dumps({"id": "ok", "title": "t" * MAX_TITLE_CHARS, "text": "Fine."}) + "\n"
                                         + json.dumps({"id": "big", "title": "t" * 500_000, "text": "Body."}) + "\n")
    (tmp_path / "page.html").write_text(f"<html><head><title>{'t' * (MAX_TITLE_CHARS + 1)}</title></head><body>"
                                        f"<article><p>{'The ferry terminal was approved on Friday. ' * 5}</p></article>"
                                        f"</body></html>")
    articles, failures = _load(tmp_path / "feed.jsonl", tmp_path / "page.html")
    assert [a.id for a in articles] == ["ok"]
    assert {f.source: f.reason for f in failures}.keys() == {f"{tmp_path / 'feed.jsonl'}:2", str(tmp_path / "page.html")}
    assert all("NEWSRAG_MAX_TITLE_CHARS" in f.reason for f in failures)


def test_non_latin_ids_are_kept_normalised_not_erased():
    """Issue 13 D5: '日本' and '中国' were both stored as 'article'; 'Zürich-日本' as 'Z-rich'."""
    assert [clean_id(i) for i in ["日本", "中国", "Zürich-日本", "ｆｏｏ", "Cafe\u0301", "हिन्दी समाचार", "a?b#c"]] == \
        ["日本", "中国", "Zürich-日本", "foo", "Café", "हिन्दी-समाचार", "a-b-c"]


@pytest.mark.parametrize("given", [".", "..", "．．", " .. ", "‥"])
def test_ids_that_are_path_steps_are_refused(given):
    """Issue 13 D7: a link to '..' opened '/', to '.' a 404, even percent-encoded (browsers resolve both)."""
    with pytest.raises(LoadError, match="path step"):
        make_article({"id": given, "text": "Body."}, "d")


def test_two_jsonl_ids_that_clean_to_one_are_named_by_file_and_line(tmp_path, index_dir):
    """Issue 13 D9: the second was reported as 'j dup: ...', not by its file and line."""
    feed = tmp_path / "j.jsonl"
    feed.write_text(json.dumps({"id": "j dup", "text": "First body."}) + "\n"
                    + json.dumps({"id": "j?dup", "text": "Second body."}) + "\n")
    report = Archive.open("jsonl-dups", index_dir, create=True).ingest(iter_sources([str(feed)]))
    assert report.added == ["j-dup"]
    assert [f.source for f in report.failed] == [f"{feed}:2"]


def test_a_file_that_breaks_a_parser_is_reported_and_the_rest_ingested(tmp_path):
    """Issue 13 D4: without lxml_html_clean (undeclared), HTML parsing raised ImportError and the whole
    run aborted, the JSONL's articles with it. Here the module is made unimportable in a real CLI run."""
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "a1", "text": "The ferry sails at noon."}) + "\n")
    (tmp_path / "page.html").write_text("<html><body><article><p>" + "The bridge reopened on Monday. " * 5
                                        + "</p></article></body></html>")
    blocked = ("import sys; sys.modules['lxml_html_clean'] = None; from newsrag.cli import main; "
               "sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", blocked, "ingest", str(tmp_path / "a.jsonl"), str(tmp_path / "page.html"),
                          "--index-dir", str(tmp_path / "idx"), "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["added"] == 1
    assert [f["source"] for f in report["failed"]] == [str(tmp_path / "page.html")]
    assert "ImportError" in report["failed"][0]["reason"] and "Traceback" not in run.stderr


def test_every_import_the_loaders_need_is_a_declared_dependency():
    """Issue 13 D4: HTML ingest needs lxml_html_clean (trafilatura -> jusText -> lxml.html.clean), which only
    the distributed extra happened to pull in; the base dependencies must name it."""
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[ ;]", d, 1)[0].lower().replace("_", "-") for d in project["dependencies"]}
    assert {"trafilatura", "lxml-html-clean"} <= names

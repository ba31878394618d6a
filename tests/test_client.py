"""`newsrag.client` against a real `newsrag serve` (its own process, the session's index, both keys set):
typed replies equal to the server's JSON, every refusal raised as the library's exception."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from eval.load import free_port
from newsrag.client import (AnswerResult, Client, Forbidden, NotFound, RequestRefused, ServerError,
                            Unauthorized)
from rag.errors import ArticleNotFound, InvalidInput

QUESTION = "When is Putin's visit to India expected?"
USER_ARTICLE = "2025-10-07-india-russia-summit"


@pytest.fixture(scope="module")
def reader(keyed_server) -> Client:
    with Client(keyed_server.url, key=keyed_server.read_key) as client:
        yield client


def test_importing_the_client_loads_no_model_index_or_torch() -> None:
    heavy = ["torch", "faiss", "numpy", "transformers", "sentence_transformers", "rag.archive", "api"]
    code = f"import json, sys, newsrag.client; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_answer_is_typed_and_its_json_is_the_servers(reader) -> None:
    result = reader.answer(QUESTION, k=5)
    assert isinstance(result, AnswerResult) and result.no_answer is None
    answer = result.answer
    assert answer.article_id == USER_ARTICLE and "December 5" in answer.span.text
    assert answer.dates[0].resolved == "2025-12-05" and answer.dates[0].approximate
    article = reader.article(answer.article_id)
    assert article.text[answer.start:answer.end] == answer.text
    assert article.text[answer.span.start:answer.span.end] == answer.span.text
    assert all(reader.article(p.article_id).text[p.start:p.end] == p.text for p in result.passages)
    assert answer.citation in {p.citation for p in result.passages}
    raw = result.to_json()
    assert raw["answer"]["span"]["text"] == answer.span.text and len(raw["passages"]) == len(result.passages)
    assert all(p.to_json().items() <= doc.items() for p, doc in zip(result.passages, raw["passages"]))


def test_search_options_reach_the_server(reader) -> None:
    found = reader.search(QUESTION, k=3, mode="bm25", filters={"article_ids": [USER_ARTICLE]}, recency="prefer_recent",
                          as_of="2025-10-08")
    assert found.retrieval["mode"] == "bm25" and found.passages
    assert {p.article_id for p in found.passages} == {USER_ARTICLE} and len(found.passages) <= 3
    assert found.to_json()["question"] == QUESTION and "answer" not in found.to_json()


def test_listing_sources_and_health(reader) -> None:
    page = reader.articles(limit=3)
    assert page.total >= 17 and len(page.articles) == 3 and all(a.chars > 0 for a in page.articles)
    sources = reader.sources()
    assert sources.date_from <= "2025-10-07" <= sources.date_to and all(s.articles > 0 for s in sources.sources)
    health = reader.health()
    assert health.index_loaded and health.index == "default" and health.articles == page.total
    assert "newsrag_http_requests_total" in reader.metrics()


def test_the_error_envelope_becomes_the_librarys_exceptions(keyed_server, reader) -> None:
    with Client(keyed_server.url) as nobody:
        assert nobody.health().status == "ok"  # open without a key
        with pytest.raises(Unauthorized) as refused:
            nobody.answer(QUESTION)
    assert refused.value.status == 401 and refused.value.code == "unauthorized"
    with Client(keyed_server.url, key="wrong") as wrong, pytest.raises(Forbidden):
        wrong.search(QUESTION)
    with pytest.raises(InvalidInput) as invalid:
        reader.answer("   ")
    assert invalid.value.status == 422 and invalid.value.code == "invalid_input"
    with pytest.raises(InvalidInput, match="k"):
        reader.search(QUESTION, k=0)
    with pytest.raises(ArticleNotFound) as missing:
        reader.article("no-such-article")
    assert missing.value.status == 404
    with pytest.raises(NotFound):
        reader._json("GET", "/no-such-route")
    with pytest.raises(RequestRefused) as not_allowed:
        reader._json("PUT", "/answer")
    assert not_allowed.value.code == "method_not_allowed" and not_allowed.value.status == 405
    with Client(f"http://127.0.0.1:{free_port()}") as gone, pytest.raises(ServerError) as unreachable:
        gone.health()
    assert unreachable.value.status is None and unreachable.value.code == "server_error"


def test_writes_need_the_write_key(keyed_server) -> None:
    article = {"id": "client test/1", "title": "Ferry returns", "date": "2025-11-02", "source": "Client test",
               "text": "The island ferry returned to service on Sunday after a month of repairs to its engines."}
    with pytest.raises(Forbidden):
        Client(keyed_server.url, key=keyed_server.read_key, index="client-scratch").ingest([article])
    with Client(keyed_server.url, key=keyed_server.write_key, index="client-scratch") as writer:
        report = writer.ingest([article])
        assert len(report.added) == 1 and not report.failed and report.chunks >= 1
        stored = report.added[0]  # a slash is kept: the client quotes it in the path
        assert "/" in stored and writer.article(stored).title == "Ferry returns"
        assert writer.search("When did the island ferry return?", k=1).passages[0].article_id == stored
        writer.delete(stored)
        with pytest.raises(ArticleNotFound):
            writer.delete(stored)

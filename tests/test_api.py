"""The HTTP contract over the real app, and every bad input answered with a 4xx JSON error."""

from __future__ import annotations

import pytest

from rag.articles import make_article

QUESTION = "When is Putin's visit to India expected?"


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


def test_answer_contract_and_spans_check_out(client):
    r = client.post("/answer", json={"question": QUESTION, "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert {"question", "answer", "no_answer", "passages", "retrieval", "timings_ms"} <= set(body)
    answer = body["answer"]
    assert {"text", "article_id", "start", "end", "citation", "span", "dates"} <= set(answer)
    assert "December 5" in answer["text"]
    assert 1 <= len(body["passages"]) <= 5
    for p in body["passages"]:
        assert {"citation", "article_id", "title", "date", "url", "source", "start", "end", "text", "score"} <= set(p)
        article = client.get(f"/articles/{p['article_id']}").json()
        assert article["text"][p["start"]:p["end"]] == p["text"]
    source = client.get(f"/articles/{answer['article_id']}").json()
    assert source["text"][answer["start"]:answer["end"]] == answer["text"]
    assert source["date"] == "2025-10-07"
    assert body["retrieval"]["mode"]


def test_search_get_and_post_return_passages_only(client):
    got = client.get("/search", params={"q": QUESTION, "k": 3}).json()
    posted = client.post("/search", json={"question": QUESTION, "k": 3}).json()
    assert "answer" not in got and got["passages"] == posted["passages"]
    assert len(got["passages"]) <= 3


def test_articles_list_health_and_docs(client):
    listing = client.get("/articles", params={"limit": 5}).json()
    assert listing["total"] >= 17 and len(listing["articles"]) == 5
    assert client.get("/health").json() == {**client.get("/health").json(), "status": "ok", "index_loaded": True}
    assert client.get("/openapi.json").json()["paths"]["/answer"]
    assert client.get("/docs").status_code == 200


def test_post_and_delete_an_article(client):
    article = {"id": "api-test/odd id?", "title": "Tram line opens", "date": "2025-11-01", "source": "Test",
               "text": "The new tram line to the airport opened on Saturday with free rides all weekend."}
    r = client.post("/articles", json={"articles": [article]})
    assert r.status_code == 200 and r.json()["added"] == 1
    new_id = r.json()["ids"]["added"][0]
    assert client.get(f"/articles/{new_id}").json()["title"] == "Tram line opens"
    found = client.post("/answer", json={"question": "When did the airport tram line open?"}).json()
    assert found["passages"][0]["article_id"] == new_id
    assert client.post("/articles", json={"articles": [article]}).json()["unchanged"] == 1
    assert client.delete(f"/articles/{new_id}").status_code == 200
    _error(client.get(f"/articles/{new_id}"), 404)
    _error(client.delete(f"/articles/{new_id}"), 404)


@pytest.mark.parametrize("body", [
    {"question": ""}, {"question": "   \n"}, {"question": "x" * 1001}, {"question": "ok?", "k": 0},
    {"question": "ok?", "k": 51}, {"question": "ok?", "k": "five"}, {}, {"question": 12},
    {"question": "ok?", "mode": "psychic"}, {"question": "ok?", "unknown": 1},
])
def test_bad_answer_requests_are_4xx_json(client, body):
    error = _error(client.post("/answer", json=body), 422)
    assert error["code"] == "invalid_input"


def test_unknown_index_empty_index_and_http_errors(client):
    assert _error(client.post("/answer", json={"question": "ok?", "index": "nope"}), 404)["code"] == "index_not_found"
    assert _error(client.post("/answer", json={"question": "ok?", "index": "../x"}), 422)
    _error(client.get("/no-such-route"), 404)
    _error(client.put("/answer", json={}), 405)
    _error(client.post("/answer", content=b"{broken", headers={"content-type": "application/json"}), 422)
    _error(client.post("/articles", json={"articles": []}), 422)
    _error(client.post("/articles", json={"articles": [{"text": ""}]}), 422)
    r = client.post("/articles", json={"articles": [{"text": "Placeholder article text."}], "index": "emptyish"})
    assert r.status_code == 200
    client.delete(f"/articles/{r.json()['ids']['added'][0]}", params={"index": "emptyish"})
    assert _error(client.post("/answer", json={"question": "ok?", "index": "emptyish"}), 409)["code"] == "empty_index"


@pytest.mark.parametrize("question,as_of", [("putin yesterday", "0001-01-01"), ("what happened after today", "9999-12-31"),
                                            ("news from the past 999 years", "0999-12-31")])
def test_as_of_out_of_range_is_a_4xx_json_error(client, question, as_of):
    """Issue 13 D3: these overflowed the calendar: a 500 with a text/plain body."""
    error = _error(client.post("/answer", json={"question": question, "as_of": as_of}), 422)
    assert error["code"] == "invalid_input" and "as_of" in error["message"]
    assert _error(client.get("/search", params={"q": question, "as_of": as_of}), 422)["code"] == "invalid_input"
    ok = client.post("/answer", json={"question": "news from the past 999 years", "as_of": "1000-01-01"})
    assert ok.status_code == 200, ok.text


def test_a_server_bug_is_a_500_json_envelope_never_text(tmp_path):
    """Issue 13 D3: the catch-all. A damaged index (a table gone under a running server) is a real bug."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from rag.archive import Archive

    archive = Archive.open("damaged", tmp_path, create=True)
    archive.ingest([make_article({"id": "d1", "text": "The ferry sails at noon on Mondays."}, "d1")])
    with TestClient(create_app("damaged", str(tmp_path)), raise_server_exceptions=False) as c:
        assert c.post("/answer", json={"question": "When does the ferry sail?"}).status_code == 200
        archive.store.connect().execute("DROP TABLE sentences")
        broken = c.post("/answer", json={"question": "When does the ferry sail?"})
        assert broken.headers["content-type"] == "application/json"
        assert _error(broken, 500)["code"] == "internal_error"

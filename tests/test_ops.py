"""Operations over the real app: /metrics, JSON request logs with ids, timings, /health, the page's routes."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app

QUESTION = "When is Putin's visit to India expected?"
USER_ARTICLE = "2025-10-07-india-russia-summit"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def samples(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics keyed by (name, sorted labels)."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def requests_total(found: dict, method: str, route: str, status: str) -> float:
    return found.get(("newsrag_http_requests_total",
                      (("method", method), ("route", route), ("status", status))), 0.0)


def test_metrics_count_requests_per_route_and_report_the_index(client):
    before = samples(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert client.post("/answer", json={"question": QUESTION}).status_code == 200
    assert client.get("/articles/no-such-article").status_code == 404
    assert client.get("/no/such/route").status_code == 404
    after = samples(client)
    assert requests_total(after, "GET", "/health", "200") == requests_total(before, "GET", "/health", "200") + 3
    assert requests_total(after, "POST", "/answer", "200") == requests_total(before, "POST", "/answer", "200") + 1
    article_404 = ("GET", "/articles/{article_id:path}", "404")
    assert requests_total(after, *article_404) == requests_total(before, *article_404) + 1
    assert requests_total(after, "GET", "unmatched", "404") == requests_total(before, "GET", "unmatched", "404") + 1
    assert client.get("/static/app.js").status_code == 200
    assert requests_total(samples(client), "GET", "/static/{path}", "200") >= 1
    latency = ("newsrag_http_request_duration_seconds_count", (("method", "POST"), ("route", "/answer")))
    assert after[latency] == before.get(latency, 0.0) + 1
    assert after[("newsrag_http_request_duration_seconds_sum", latency[1])] > 0
    health = client.get("/health").json()
    index = (("index", "default"),)
    assert after[("newsrag_index_loaded", index)] == 1
    assert after[("newsrag_index_articles", index)] == health["articles"]
    assert after[("newsrag_index_chunks", index)] == health["chunks"]
    assert after[("newsrag_index_size_bytes", index)] > 100_000


def test_request_id_is_echoed_or_made_and_logged_as_one_json_line(client, capsys):
    capsys.readouterr()
    given = client.post("/answer", json={"question": QUESTION}, headers={"X-Request-ID": "ops-test.1"})
    made = client.get("/health")
    hostile = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces" + "x" * 200})
    assert given.headers["x-request-id"] == "ops-test.1"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    by_id = {line["request_id"]: line for line in lines}
    assert len(lines) == 3 and set(by_id) == {"ops-test.1", made.headers["x-request-id"], hostile.headers["x-request-id"]}
    line = by_id["ops-test.1"]
    assert line["method"] == "POST" and line["path"] == "/answer" and line["route"] == "/answer"
    assert line["status"] == 200 and line["ms"] > 0 and line["level"] == "info" and line["ts"]


def test_answers_carry_timings_per_stage(client):
    timings = client.post("/answer", json={"question": QUESTION}).json()["timings_ms"]
    assert {"embed", "retrieve", "answer", "total"} <= set(timings)
    assert all(v >= 0 for v in timings.values())
    assert timings["total"] >= timings["embed"]


def test_health_and_metrics_say_when_no_index_is_loaded(tmp_path):
    with TestClient(create_app("absent", str(tmp_path))) as bare:
        assert bare.get("/health").json()["index_loaded"] is False
        assert samples(bare)[("newsrag_index_loaded", (("index", "absent"),))] == 0


def test_article_json_by_default_html_view_for_browsers(client):
    stored = client.get(f"/articles/{USER_ARTICLE}").json()
    for accept in ("*/*", "application/json", "application/json, text/html;q=0.9", "text/html;q=0.5, */*"):
        r = client.get(f"/articles/{USER_ARTICLE}", headers={"Accept": accept})
        assert r.headers["content-type"] == "application/json" and r.json() == stored, accept
    start = stored["text"].index("December 5")
    page = client.get(f"/articles/{USER_ARTICLE}", params={"start": start, "end": start + 10},
                      headers={"Accept": BROWSER_ACCEPT})
    assert page.headers["content-type"].startswith("text/html")
    assert '<mark id="hl">December 5</mark>' in page.text
    assert "<title>" in page.text and "2025-10-07" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    outside = client.get(f"/articles/{USER_ARTICLE}", params={"start": 5, "end": 10**6}, headers={"Accept": "text/html"})
    assert outside.status_code == 200 and "<mark" not in outside.text and "outside this article" in outside.text


def test_article_view_escapes_stored_text(client):
    article = {"id": "ops-escape", "title": "<script>alert(1)</script> Ferry", "date": "2025-11-02",
               "url": "javascript:alert(2)", "text": "The ferry <b>resumed</b> service & fares rose."}
    assert client.post("/articles", json={"articles": [article]}).status_code == 200
    try:
        page = client.get("/articles/ops-escape", params={"start": 10, "end": 17}, headers={"Accept": "text/html"}).text
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; Ferry" in page
        assert 'The ferry <mark id="hl">&lt;b&gt;resu</mark>med&lt;/b&gt; service &amp; fares rose.' in page
        assert "javascript:" not in page
    finally:
        client.delete("/articles/ops-escape")


def test_page_static_files_and_filter_choices(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert re.search(r'<input type="search"[^>]*name="q"', page.text)
    assert "/static/app.js" in page.text and not re.search(r'(src|href)="(https?:)?//', page.text)  # no CDN
    assert client.get("/static/app.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/missing.js").json()["error"]["code"] == "not_found"
    choices = client.get("/filters").json()
    health = client.get("/health").json()
    assert any(s["name"] == "Sample Wire" and s["articles"] >= 1 for s in choices["sources"])
    assert sum(s["articles"] for s in choices["sources"]) <= health["articles"]
    assert choices["date_range"]["from"] <= "2025-10-07" <= choices["date_range"]["to"]

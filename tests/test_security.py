"""Write and read keys (401 vs 403), loopback-only writes without a key, size limits (413/422),
index names, odd article ids over HTTP, and hostile files reported by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import is_loopback
from api.front import create_front
from rag.archive import Archive
from rag.validation import (MAX_ARTICLE_CHARS, MAX_ARTICLES_PER_REQUEST, MAX_BODY_BYTES, MAX_QUESTION_CHARS,
                            MAX_TITLE_CHARS)

LOCAL = "127.0.0.1:8000"  # the Host a client on this machine sends (writes without a key need a loopback one)
ARTICLE = {"id": "sec-1", "title": "Harbour wall repaired", "date": "2025-03-02", "source": "Test",
           "text": "The harbour wall was repaired in March after the winter storms damaged it."}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"} and body["error"]["message"]
    return body["error"]


@pytest.fixture(scope="module")
def sec_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sec")
    Archive.open("sec", folder, create=True).ingest([])
    return folder


def client_for(folder: Path, host: str = "127.0.0.1") -> TestClient:
    return TestClient(create_app("sec", str(folder), host=host), base_url=f"http://{LOCAL}")


@pytest.fixture(scope="module")
def loopback(sec_dir):
    with client_for(sec_dir) as c:
        assert c.post("/articles", json={"articles": [ARTICLE]}).status_code == 200
        yield c


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("", False), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False),
])
def test_loopback_means_loopback_only(host, expected):
    assert is_loopback(host) is expected


def test_without_a_key_writes_only_on_loopback(sec_dir, loopback, monkeypatch):
    monkeypatch.delenv("NEWSRAG_API_KEY", raising=False)
    extra = {**ARTICLE, "id": "sec-loop", "text": "A loopback write about the ferry timetable."}
    assert loopback.post("/articles", json={"articles": [extra]}).status_code == 200
    assert loopback.delete("/articles/sec-loop").status_code == 200
    with client_for(sec_dir, host="0.0.0.0") as public:
        assert _error(public.post("/articles", json={"articles": [extra]}), 403)["code"] == "forbidden"
        assert _error(public.delete("/articles/sec-1"), 403)
        assert public.get("/articles/sec-1").status_code == 200  # reads stay open
        assert public.get("/search", params={"q": "harbour wall"}).status_code == 200


def test_with_a_key_401_without_it_403_when_wrong(sec_dir, monkeypatch):
    monkeypatch.setenv("NEWSRAG_API_KEY", "s3cret-key")
    body = {"articles": [{**ARTICLE, "id": "sec-key", "text": "A keyed write about the museum roof."}]}
    with client_for(sec_dir, host="0.0.0.0") as c:
        missing = c.post("/articles", json=body)
        assert _error(missing, 401)["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert _error(c.post("/articles", json=body, headers={"Authorization": "Bearer "}), 401)
        assert _error(c.post("/articles", json=body, headers={"Authorization": "Basic czNjcmV0LWtleQ=="}), 401)
        assert _error(c.post("/articles", json=body, headers={"Authorization": "Bearer s3cret-kez"}), 403)["code"] == "forbidden"
        assert _error(c.post("/articles", json=body, headers={"X-API-Key": "s3cret"}), 403)
        assert _error(c.delete("/articles/sec-1", headers={"X-API-Key": "nope"}), 403)
        assert c.get("/articles/sec-key").status_code == 404  # nothing was written
        assert c.post("/articles", json=body, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert c.delete("/articles/sec-key", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert c.post("/search", json={"question": "harbour wall"}).status_code == 200  # reads open


def test_a_read_key_closes_reads_but_not_health(sec_dir, monkeypatch):
    monkeypatch.setenv("NEWSRAG_READ_KEY", "reader")
    monkeypatch.setenv("NEWSRAG_API_KEY", "writer")
    with client_for(sec_dir) as c:
        assert _error(c.get("/articles"), 401)["code"] == "unauthorized"
        assert _error(c.post("/search", json={"question": "harbour wall"}), 401)
        assert _error(c.get("/articles/sec-1", headers={"X-API-Key": "writer2"}), 403)
        assert c.get("/articles/sec-1", headers={"X-API-Key": "reader"}).json()["id"] == "sec-1"
        assert c.get("/search", params={"q": "harbour"}, headers={"Authorization": "Bearer writer"}).status_code == 200
        assert c.get("/health").json()["status"] == "ok"
        assert c.get("/").status_code == 200  # the page shell: it asks for the key itself
        c.cookies.set("newsrag_read_key", "reader")  # what the page sets once the key is typed
        assert c.get("/articles/sec-1").json()["id"] == "sec-1"
        assert _error(c.delete("/articles/sec-1"), 401)  # the cookie never stands in for the write key
        c.cookies.clear()
        # the read key does not grant writes
        assert _error(c.delete("/articles/sec-1", headers={"X-API-Key": "reader"}), 403)


def test_body_over_the_limit_is_413_declared_or_streamed(loopback):
    big = b'{"articles": [{"text": "' + b"a" * MAX_BODY_BYTES + b'"}]}'
    declared = loopback.post("/articles", content=big, headers={"content-type": "application/json"})
    assert _error(declared, 413)["code"] == "too_large"

    def chunks():
        for i in range(0, len(big), 1 << 20):
            yield big[i: i + (1 << 20)]

    streamed = loopback.post("/articles", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in streamed.request.headers
    assert _error(streamed, 413)["code"] == "too_large"
    assert _error(loopback.post("/search", content=b"x", headers={"content-length": "ten"}), 400)


def test_question_k_articles_and_text_limits_are_422(loopback):
    assert loopback.post("/search", json={"question": "q" * MAX_QUESTION_CHARS}).status_code == 200
    assert "characters" in _error(loopback.post("/search", json={"question": "q" * (MAX_QUESTION_CHARS + 1)}), 422)["message"]
    assert _error(loopback.get("/search", params={"q": "harbour", "k": 51}), 422)
    too_many = {"articles": [{"text": f"Short article number {i}."} for i in range(MAX_ARTICLES_PER_REQUEST + 1)]}
    assert "articles" in _error(loopback.post("/articles", json=too_many), 422)["message"]
    huge = {"articles": [{"id": "sec-huge", "text": "b" * (MAX_ARTICLE_CHARS + 1)}]}
    assert "text" in _error(loopback.post("/articles", json=huge), 422)["message"]
    assert loopback.get("/articles/sec-huge").status_code == 404


@pytest.mark.parametrize("name", ["../x", "..", "a/b", ".hidden", "x" * 65, "a b", "%2e%2e"])
def test_index_names_cannot_leave_the_index_folder(loopback, sec_dir, name):
    assert _error(loopback.post("/articles", json={"articles": [ARTICLE], "index": name}), 422)
    assert _error(loopback.get("/articles", params={"index": name}), 422)
    assert sorted(p.name for p in sec_dir.iterdir()) == ["sec"]


def test_odd_article_ids_round_trip_url_encoded(loopback):
    odd = ["world/europe/2025/03/story.html", "x:y.z_w", "../../etc/passwd", "a b", "q?x=1#frag", "100%",
           "Zürich naïve", "tab\there"]
    body = {"articles": [{"id": raw, "text": f"Article {n} about the tram depot and its {n} new trams."}
                         for n, raw in enumerate(odd)]}
    added = loopback.post("/articles", json=body).json()["ids"]["added"]
    assert len(added) == len(set(added)) == len(odd)
    for raw, stored in zip(odd, added):
        if all(c.isascii() and (c.isalnum() or c in "._:/-") for c in raw):
            assert stored == raw  # ids that are already URL-safe are kept exactly
        got = loopback.get("/articles/" + quote(stored, safe=""))
        assert got.status_code == 200 and got.json()["id"] == stored
        assert loopback.delete("/articles/" + quote(stored, safe="")).status_code == 200
        assert _error(loopback.get("/articles/" + quote(stored, safe="")), 404)["code"] == "article_not_found"
    for raw in ["a%20b", "%00", "%ff%fe", "..%2F..%2Fetc"]:
        assert _error(loopback.get(f"/articles/{raw}"), 404)


def test_hostile_files_are_reported_by_name_and_the_rest_ingested(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.txt").write_text("date 2025-01-02\nThe ferry returned to service on Thursday.")
    (src / "empty.txt").write_text("")
    (src / "binary.txt").write_bytes(b"\x00\x01\x02 binary \xff" * 10)
    (src / "latin1.txt").write_bytes("Caf\xe9 au lait was served.".encode("latin-1"))
    (src / "huge.txt").write_text("Word. " * 400)  # 2,400 bytes: over the file limit set below
    (src / "long.jsonl").write_text(json.dumps({"id": "long", "text": "y" * 1500}) + "\n"
                                    + json.dumps({"id": "fine", "text": "The bridge reopened in May."}) + "\n"
                                    + '{"id": "broken", "text": \n' + "\n")
    env = {**os.environ, "NEWSRAG_MAX_FILE_BYTES": "2000", "NEWSRAG_MAX_ARTICLE_CHARS": "1000"}
    script = Path(sys.executable).with_name("newsrag")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "newsrag.cli"]
    run = subprocess.run(cmd + ["ingest", str(src), "--index-dir", str(tmp_path / "idx"), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    failed = {f["source"].replace(str(src) + "/", ""): f["reason"] for f in report["failed"]}
    assert set(failed) == {"empty.txt", "binary.txt", "latin1.txt", "huge.txt", "long.jsonl:1", "long.jsonl:3"}
    assert "NEWSRAG_MAX_FILE_BYTES" in failed["huge.txt"] and "NEWSRAG_MAX_ARTICLE_CHARS" in failed["long.jsonl:1"]
    assert "UTF-8" in failed["latin1.txt"] and "binary" in failed["binary.txt"]
    assert report["added"] == 2
    for name in failed:
        assert name.split(":")[0] in run.stderr


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_a_read_key_closes_the_api_docs_too(sec_dir, monkeypatch, path):
    """Issue 13 D6: the docs and the schema answered 200 without the read key."""
    monkeypatch.setenv("NEWSRAG_READ_KEY", "reader")
    with client_for(sec_dir) as c, TestClient(create_front(["http://127.0.0.1:9"])) as front:
        for app in (c, front):
            assert _error(app.get(path), 401)["code"] == "unauthorized"
            assert _error(app.get(path, headers={"X-API-Key": "wrong"}), 403)
            assert app.get(path, headers={"X-API-Key": "reader"}).status_code == 200
        assert "/answer" in c.get("/openapi.json", headers={"X-API-Key": "reader"}).json()["paths"]
    monkeypatch.delenv("NEWSRAG_READ_KEY")
    with client_for(sec_dir) as c:
        assert c.get(path).status_code == 200  # open when no read key is set


def browser_path(path: str) -> str:
    """Where a browser goes for `path`: '.' and '..' segments resolved, percent-encoded or not (WHATWG URL)."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if segment.lower() in (".", "%2e"):
            if last:
                out.append("")
        elif segment.lower() in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def test_every_citation_link_opens_its_article(loopback):
    """Issue 13 D7: the page links `/articles/${encodeURIComponent(id)}`; for the id '..' that opened '/', for
    '.' a 404. Ids that no link can reach are refused; every stored one is reached."""
    odd = [".", "..", "．．", "...", "./x", "a/../b", "../..", "%2e%2e", ".%2E", "/lead", "trail/", "a//b", "日本/.."]
    body = {"articles": [{"id": raw, "text": f"Note {n} about the tram depot and its {n} new trams."}
                         for n, raw in enumerate(odd)]}
    report = loopback.post("/articles", json=body).json()
    stored = report["ids"]["added"]
    assert {f["source"] for f in report["failed"]} == {"articles[0]", "articles[1]", "articles[2]"}
    assert len(stored) == len(odd) - 3
    for article_id in stored:
        link = "/articles/" + quote(article_id, safe="-_.!~*'()")  # what encodeURIComponent leaves alone
        got = loopback.get(browser_path(link))
        assert got.status_code == 200 and got.json()["id"] == article_id, (article_id, link)
        assert loopback.delete(browser_path(link)).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Host": "rebind.attacker.example"}, {"Host": "rebind.attacker.example:8000"},
    {"Host": "127.0.0.1.attacker.example"}, {"Host": ""},
    {"Origin": "http://rebind.attacker.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:9999"},
    {"Origin": "file://"}, {"Host": "rebind.attacker.example", "Origin": "http://rebind.attacker.example"},
])
def test_without_a_key_writes_need_a_loopback_host_and_our_own_origin(loopback, monkeypatch, headers):
    """Issue 13 D8: a DNS-rebinding page (its own Host name, its own Origin) could write and delete."""
    monkeypatch.delenv("NEWSRAG_API_KEY", raising=False)
    body = {"articles": [{**ARTICLE, "id": "sec-rebind", "text": "A write that must not land."}]}
    assert _error(loopback.post("/articles", json=body, headers=headers), 403)["code"] == "forbidden"
    assert _error(loopback.delete("/articles/sec-1", headers=headers), 403)
    assert loopback.get("/articles/sec-rebind").status_code == 404 and loopback.get("/articles/sec-1").status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Origin": f"http://{LOCAL}"}, {"Host": "localhost:8000"},
                                     {"Host": "localhost:8000", "Origin": "http://localhost:8000"},
                                     {"Host": "[::1]:8000", "Origin": "http://[::1]:8000"}])
def test_without_a_key_this_machines_own_writes_still_land(loopback, monkeypatch, headers):
    monkeypatch.delenv("NEWSRAG_API_KEY", raising=False)
    body = {"articles": [{**ARTICLE, "id": "sec-own", "text": "A write from this machine's own page."}]}
    assert loopback.post("/articles", json=body, headers=headers).status_code == 200
    assert loopback.delete("/articles/sec-own", headers=headers).status_code == 200


def test_a_title_over_the_limit_is_422(loopback):
    """Issue 13 D2: a 500 KB title made 144 truncated chunks whose vectors encoded only the title."""
    long_title = {"articles": [{**ARTICLE, "id": "sec-title", "title": "t" * (MAX_TITLE_CHARS + 1)}]}
    assert "title" in _error(loopback.post("/articles", json=long_title), 422)["message"]
    assert _error(loopback.get("/articles/sec-title"), 404)
    fits = {"articles": [{**ARTICLE, "id": "sec-title", "title": "t" * MAX_TITLE_CHARS}]}
    assert loopback.post("/articles", json=fits).json()["ids"]["added"] == ["sec-title"]
    assert loopback.delete("/articles/sec-title").status_code == 200

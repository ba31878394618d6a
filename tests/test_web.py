"""The web page in a real headless Chromium over a real `newsrag serve` on 127.0.0.1.

Screenshots go to test-artifacts/. Without /usr/bin/chromium the tests skip on a developer's machine
and fail under CI (`make test` installs it there).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rag.articles import sample_corpus_path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
QUESTION = "When is Putin's visit to India expected?"
USER_ARTICLE = "2025-10-07-india-russia-summit"


def newsrag(*args: str, index_dir: Path, extra_env: dict[str, str] | None = None, **kwargs):
    env = {**os.environ, "NEWSRAG_INDEX_DIR": str(index_dir), **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "newsrag.cli", *args], env=env, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(index_dir: Path, log_path: Path, **env: str):
    """`newsrag serve` on a free loopback port over `index_dir`, with `env` added; yields its URL."""
    port = free_port()
    with log_path.open("w") as log:
        proc = newsrag("serve", "--host", "127.0.0.1", "--port", str(port), index_dir=index_dir,
                       stdout=subprocess.DEVNULL, stderr=log, extra_env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"serve exited: {log_path.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).json().get("index_loaded"):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"serve did not come up: {log_path.read_text()}"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory, user_corpus):
    """`newsrag serve` over a fresh index of the sample corpus plus the user's article; yields its URL."""
    folder = tmp_path_factory.mktemp("web")
    index_dir = folder / "indexes"
    ingest = newsrag("ingest", str(sample_corpus_path()), str(user_corpus), index_dir=index_dir,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err
    log_path = folder / "serve.stderr"
    with serving(index_dir, log_path) as url:
        yield {"url": url, "log": log_path, "index_dir": index_dir}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing; `make test` installs it (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


def shot(page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def ask(page, question: str) -> None:
    page.fill("input[type=search][name=q]", question)
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("#result:not([hidden])")


def test_answer_is_highlighted_cited_and_opens_in_the_article(server, page):
    page.goto(server["url"] + "/")
    ask(page, QUESTION)
    marks = page.locator("#answer mark").all_inner_texts()
    assert any("December 5" in m for m in marks), marks
    assert page.locator("#answer time[datetime='2025-12-05']").count() >= 1  # the resolved date is shown
    card = page.locator("#citations li.card.holds-answer")
    assert card.count() == 1
    assert card.locator(".meta time").inner_text() == "2025-10-07"
    assert card.locator(".num").inner_text().isdigit()
    assert any("December 5" in m for m in card.locator("blockquote mark").all_inner_texts())
    shot(page, "page.png")
    shot(page, "page-full.png", full_page=True)

    card.locator("a.open").first.click()
    page.wait_for_url("**/articles/**")
    highlighted = page.locator("mark#hl").inner_text()
    assert "December 5" in highlighted
    stored = httpx.get(f"{server['url']}/articles/{USER_ARTICLE}").json()  # Accept */* gets the JSON
    assert page.locator(".article-text").inner_text() == stored["text"]
    start = int(page.url.split("start=")[1].split("&")[0])
    assert stored["text"][start:start + len(highlighted)] == highlighted
    assert page.locator("h1").inner_text() == stored["title"]
    shot(page, "article.png")

    page.go_back()
    page.wait_for_selector("#answer mark")
    assert page.input_value("input[name=q]") == QUESTION


def test_with_a_read_key_the_page_asks_for_it_once_and_opens_articles(server, page, tmp_path):
    with serving(server["index_dir"], tmp_path / "keyed.stderr", NEWSRAG_READ_KEY="reader-7",
                 NEWSRAG_API_KEY="writer-9") as url:
        assert httpx.post(f"{url}/answer", json={"question": QUESTION}).status_code == 401
        page.goto(url + "/")  # the page shell holds no articles, so it loads without the key
        page.fill("input[type=search][name=q]", QUESTION)
        page.press("input[name=q]", "Enter")
        page.fill("#read-key", "wrong-key")
        page.press("#read-key", "Enter")
        page.wait_for_selector("#status.error >> text=wrong API key")
        page.fill("#read-key", "reader-7")
        page.press("#read-key", "Enter")
        page.wait_for_selector("#result:not([hidden])")
        assert any("December 5" in m for m in page.locator("#answer mark").all_inner_texts())
        page.locator("#citations li.card.holds-answer a.open").first.click()  # a link: only the cookie goes along
        page.wait_for_url("**/articles/**")
        assert "December 5" in page.locator("mark#hl").inner_text()
        cookie = {"newsrag_read_key": "reader-7"}
        assert httpx.get(f"{url}/articles/{USER_ARTICLE}", cookies=cookie).status_code == 200
        assert httpx.delete(f"{url}/articles/{USER_ARTICLE}", cookies=cookie).status_code == 401  # never for writes


def test_filters_and_the_not_in_the_articles_state(server, page):
    page.goto(server["url"] + "/")
    page.wait_for_selector("#source option[value='Sample Wire']", state="attached")
    page.select_option("#source", "Sample Wire")
    ask(page, QUESTION)
    metas = page.locator("#citations .card .meta").all_inner_texts()
    assert metas and all("Sample Wire" in m for m in metas), metas
    assert "source=Sample+Wire" in page.url  # the question and filters live in the address

    page.select_option("#source", "")
    page.fill("#date_from", "2030-01-01")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("#no-answer")
    assert "Not in the articles" in page.locator("#no-answer").inner_text()
    assert page.locator("#answer mark").count() == 0
    shot(page, "not-in-the-articles.png")

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"


def test_phone_width_has_no_sideways_scroll(server, browser):
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{server['url']}/?q=" + QUESTION.replace(" ", "+").replace("'", "%27"))
    page.wait_for_selector("#answer mark")
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    shot(page, "phone.png")
    page.goto(f"{server['url']}/articles/{USER_ARTICLE}?start=1029&end=1046")
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    context.close()


def test_article_text_is_never_parsed_as_html(server, page):
    hostile = {"id": "web-test-escape", "title": "<img src=x onerror=\"window.pwned=1\"> Crane <b>strike</b>",
               "date": "2025-11-20", "source": "<i>Dock</i> News",
               "text": "Dock workers at Port Ellery began a crane strike on Thursday <script>window.pwned=2</script> "
                       "over night-shift pay, the <b>union</b> said."}
    r = httpx.post(f"{server['url']}/articles", json={"articles": [hostile]}, timeout=60)
    assert r.status_code == 200, r.text
    try:
        page.goto(server["url"] + "/")
        ask(page, "Why did the Port Ellery dock workers start a crane strike?")
        card = page.locator("#citations li.card", has_text="Crane")
        assert card.locator("h4").inner_text() == hostile["title"]
        assert "<script>window.pwned=2</script>" in card.locator("blockquote").inner_text()
        assert page.locator("#citations img, #citations script, #citations b").count() == 0
        card.locator("a.open").first.click()
        page.wait_for_selector(".article-text")
        assert page.locator(".article-text").inner_text() == hostile["text"]
        assert page.locator("main img, main script, main b, main i").count() == 0
        assert page.evaluate("window.pwned") is None
    finally:
        httpx.delete(f"{server['url']}/articles/{hostile['id']}", timeout=60)


def test_served_requests_are_logged_as_json_with_their_request_id(server):
    r = httpx.post(f"{server['url']}/answer", json={"question": QUESTION}, headers={"X-Request-ID": "web-test-42"},
                   timeout=60)
    assert r.status_code == 200 and r.headers["x-request-id"] == "web-test-42"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in server["log"].read_text().splitlines() if line.startswith("{")]
        mine = [x for x in lines if x.get("request_id") == "web-test-42"]
        if mine:
            break
        time.sleep(0.2)
    assert mine and mine[0]["path"] == "/answer" and mine[0]["method"] == "POST" and mine[0]["status"] == 200
    assert mine[0]["ms"] > 0 and mine[0]["level"] == "info"


@pytest.fixture(scope="module")
def syndicated_server(tmp_path_factory, user_corpus):
    """`newsrag serve` over the sample corpus, the user's article and four reprints of it (issue 19)."""
    folder = tmp_path_factory.mktemp("web-stories")
    index_dir = folder / "indexes"
    reprints = Path(__file__).parent / "data" / "syndicated"
    ingest = newsrag("ingest", str(sample_corpus_path()), str(user_corpus), str(reprints), index_dir=index_dir,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err
    with serving(index_dir, folder / "serve.stderr") as url:
        yield url


def test_reprints_show_as_also_reported_by_and_the_toggle_shows_every_copy(syndicated_server, page):
    outlets = ["Deccan Ledger", "Eurasia Wire Review", "Capital Times Online", "Morning Gazette"]
    page.goto(syndicated_server + "/")
    ask(page, QUESTION)
    first = page.locator("#citations li.card").first
    also = first.locator(".also-in")
    assert also.inner_text().startswith("Also reported by ")
    assert also.locator("a").count() == 4
    named = also.inner_text() + first.locator(".meta").inner_text()
    assert all(o in named for o in outlets), named
    assert page.locator("#citations li.card").count() == 5
    assert page.locator("#citations li.card .also-in").count() == 1  # the other four cards are other stories
    shot(page, "stories.png")

    page.uncheck("#dedupe")  # asks again at once
    page.wait_for_url("**dedupe=off**")
    from playwright.sync_api import expect

    expect(page.locator("#citations li.card .also-in")).to_have_count(5)  # every copy its own card
    sources = " ".join(page.locator("#citations li.card .meta").all_inner_texts())
    assert all(o in sources for o in outlets), sources
    page.reload()  # the choice lives in the address
    page.wait_for_selector("#result:not([hidden])")
    assert not page.is_checked("#dedupe")

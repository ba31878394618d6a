"""Queries during an ingest answer from the last complete state; writers are serialised, in one
process (threads) and across processes (two `newsrag ingest` at once)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from rag.archive import Archive
from rag.articles import make_article
from rag.errors import EmptyIndex

from synthetic import articles, write_jsonl
from rag.query import Query


def _items(records: list[dict]):
    return [make_article(r, r["id"]) for r in records]


def _passages(body: dict) -> list[tuple]:
    return [(p["article_id"], p["start"], p["end"], round(p["score"], 5)) for p in body["passages"]]


def test_queries_during_an_http_ingest_see_the_old_state_then_the_new_one(tmp_path):
    Archive.open("live", tmp_path, create=True).ingest(_items(articles(20, seed=1, prefix="old")))
    new = articles(130, seed=2, prefix="new")  # three SQLite batches (64, 64, 2), committed one by one
    question = {"question": f"What did {new[-1]['title']} report?", "k": 5}
    with TestClient(create_app("live", str(tmp_path)), base_url="http://127.0.0.1:8000") as client:
        before = _passages(client.post("/search", json=question).json())
        total_before = client.get("/articles").json()["total"]
        done = threading.Event()
        posted = {}

        def write() -> None:
            posted["response"] = client.post("/articles", json={"articles": new})
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        seen = []  # (articles committed in SQLite, passages answered)
        while not done.is_set():
            search = client.post("/search", json=question)
            listing = client.get("/articles", params={"limit": 1})
            assert search.status_code == 200 and listing.status_code == 200, (search.text, listing.text)
            seen.append((listing.json()["total"], _passages(search.json())))
            time.sleep(0.01)
        writer.join()
        assert posted["response"].status_code == 200 and posted["response"].json()["added"] == 130
        after = _passages(client.post("/search", json=question).json())
    assert after != before and after[0][0] == new[-1]["id"]
    answers = [p for _, p in seen]
    assert all(p in (before, after) for p in answers), "a query saw a state that was neither before nor after"
    first_new = answers.index(after) if after in answers else len(answers)
    assert all(p == after for p in answers[first_new:]), "a query went back to the old state"
    # some queries ran while SQLite held committed batches that readers did not see yet
    assert any(total_before < total < total_before + 130 and p == before for total, p in seen), seen[:5]


def test_two_writer_threads_are_serialised(tmp_path):
    archive = Archive.open("threads", tmp_path, create=True)
    batches = [articles(30, seed=3, prefix="t1"), articles(30, seed=4, prefix="t2")]
    reports = [None, None]

    def write(i: int) -> None:
        reports[i] = Archive.open("threads", tmp_path).ingest(_items(batches[i]))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(r.added) for r in reports] == [30, 30]
    assert archive.check() == [] and archive.store.count("articles") == 60


def test_two_ingest_processes_create_one_index_serialised_while_a_reader_answers(tmp_path):
    corpora = [write_jsonl(tmp_path / f"c{i}.jsonl", articles(40, seed=10 + i, prefix=f"p{i}")) for i in range(2)]
    script = Path(sys.executable).with_name("newsrag")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "newsrag.cli"]
    procs = [subprocess.Popen(cmd + ["ingest", str(c), "--index", "procs", "--index-dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in corpora]
    reader, answered, generations = None, 0, []
    while any(p.poll() is None for p in procs):
        if reader is None and (tmp_path / "procs" / "manifest.json").exists():
            reader = Archive.open("procs", tmp_path)
        if reader is not None:
            try:
                passages = reader.search(Query("What did the council approve?", k=3)).passages
                answered += bool(passages)
            except EmptyIndex:
                assert answered == 0  # nothing published yet; once something was, it never goes away
            generations.append(reader.derived().generation)
        time.sleep(0.2)
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    assert generations == sorted(generations)  # the reader only ever moves forward
    reader = reader or Archive.open("procs", tmp_path)
    assert reader.check() == [] and reader.store.count("articles") == 80
    ids = {r[0] for r in reader.store.connect().execute("SELECT id FROM articles")}
    assert ids == {f"p{i}-{n:04d}" for i in range(2) for n in range(40)}

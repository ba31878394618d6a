"""Sharded search: routing by article-id hash, and a merge that gives one big index's top-k."""

from __future__ import annotations

import pytest

from rag.archive import Archive
from rag.articles import iter_sources
from rag.cli import main, sample_corpus_path
from rag.errors import InvalidInput
from rag.shards import ShardedArchive, ingest_sharded, shard_names, shard_of

SHARDS = 3
QUESTIONS = ["Who was elected mayor of Rivertown?", "What did the central bank decide about rates?",
             "Which company opened a chip plant?", "How many new species did the expedition find?",
             "bridge repairs closure"]


def _key(passages) -> list[tuple]:
    return [(p.citation, p.article.id, p.start, p.end, round(p.score, 5)) for p in passages]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """The sample corpus as one index and as three hash shards."""
    root = tmp_path_factory.mktemp("shards")
    whole = Archive.open("whole", root, create=True)
    whole.ingest(iter_sources([str(sample_corpus_path())]))
    report = ingest_sharded(iter_sources([str(sample_corpus_path())]), "split", SHARDS, str(root))
    return root, whole, ShardedArchive.open("split", SHARDS, str(root)), report


def test_articles_are_routed_by_id_hash_and_each_shard_is_a_sound_index(indexes):
    root, whole, sharded, report = indexes
    assert len(report.added) == whole.store.count("articles") and not report.failed
    sizes = []
    for i, shard in enumerate(sharded.shards):
        ids = [r[0] for r in shard.store.connect().execute("SELECT id FROM articles")]
        assert all(shard_of(a, SHARDS) == i for a in ids)
        assert shard.check() == []
        sizes.append(len(ids))
    assert sum(sizes) == whole.store.count("articles") and min(sizes) > 0
    assert shard_of("any-id", SHARDS) == shard_of("any-id", SHARDS)  # stable within and across runs (sha1)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_dense_merge_is_exact(indexes, k):
    _, whole, sharded, _ = indexes
    for question in QUESTIONS:
        expected, _, _, _ = whole.search(question, k=k, mode="dense")
        assert _key(sharded.search(question, k=k, mode="dense")) == _key(expected)


def test_bm25_merge_finds_the_same_best_passage(indexes):
    """BM25 statistics are per shard, so only an approximation is promised: the same best article."""
    _, whole, sharded, _ = indexes
    for question in QUESTIONS:
        expected, _, _, _ = whole.search(question, k=5, mode="bm25")
        got = sharded.search(question, k=5, mode="bm25")
        assert got[0].article.id == expected[0].article.id


def test_unsupported_mode_and_bad_counts_are_clear_errors(indexes):
    root, _, sharded, _ = indexes
    with pytest.raises(InvalidInput):
        sharded.search("anything", mode="hybrid")
    with pytest.raises(InvalidInput):
        shard_names("x", 0)
    assert main(["ingest", "--sample", "--shards", "0", "--index-dir", str(root)]) == 2
    assert main(["ingest", "--sample", "--shards", "2", "--engine", "ray", "--index-dir", str(root)]) == 2


@pytest.fixture(scope="module")
def shard_urls(indexes):
    """Each shard served by the ordinary app over real HTTP on loopback (uvicorn in a thread)."""
    import socket
    import threading
    import time

    import uvicorn

    from api.app import create_app

    root = indexes[0]
    servers, urls = [], []
    for name in shard_names("split", SHARDS):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(create_app(name, str(root)), log_level="warning"))
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        servers.append(server)
        urls.append(f"http://127.0.0.1:{sock.getsockname()[1]}")
    deadline = time.monotonic() + 30
    while not all(s.started for s in servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield urls
    for server in servers:
        server.should_exit = True


def test_dense_merge_over_http_is_exact(indexes, shard_urls):
    from fastapi.testclient import TestClient

    from api.front import create_front
    from rag.shards import HttpShards

    _, whole, _, _ = indexes
    shards = HttpShards(shard_urls)
    with TestClient(create_front(shard_urls)) as front:
        for question in QUESTIONS:
            for k in (1, 5):
                expected, _, _, _ = whole.search(question, k=k, mode="dense")
                assert _key(shards.search(question, k=k)) == _key(expected)
            body = front.post("/search", json={"question": question, "k": 5}).json()
            assert [(p["article_id"], p["start"], p["end"], p["text"]) for p in body["passages"]] == \
                   [(p.article.id, p.start, p.end, p.text) for p in expected]
    shards.close()


def test_front_errors_are_json(shard_urls):
    from fastapi.testclient import TestClient

    from api.front import create_front

    with TestClient(create_front(shard_urls + ["http://127.0.0.1:9"])) as front:  # port 9: nothing listens
        down = front.post("/search", json={"question": "Who was elected mayor?"})
        assert down.status_code == 502 and down.json()["error"]["code"] == "shard_unavailable"
    with TestClient(create_front(shard_urls)) as front:
        bad = front.post("/search", json={"question": "Who was elected mayor?", "mode": "hybrid"})
        assert 400 <= bad.status_code < 500 and bad.json()["error"]["code"]

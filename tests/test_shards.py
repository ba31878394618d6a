"""Sharded search: routing by article-id hash, and a merge that gives one big index's top-k in every
mode (BM25 under the whole collection's statistics, hybrid's fusion and second stage), with filters,
times named in the question and recency, in one process and over HTTP."""

from __future__ import annotations

import pytest

from newsrag.cli import main
from rag.archive import Archive
from rag.articles import iter_sources, sample_corpus_path
from rag.errors import InvalidInput
from rag.lexical import CorpusStats
from rag.query import Filters, Query
from rag.settings import FusionSettings, Settings
from rag.shards import ShardedArchive, ingest_sharded, shard_names, shard_of
from rag.source import weighed_terms

SHARDS = 3
AS_OF = "2025-11-20"
QUESTIONS = ["Who was elected mayor of Rivertown?", "What did the central bank decide about rates?",
             "Which company opened a chip plant?", "How many new species did the expedition find?",
             "bridge repairs closure", "What happened in Rivertown in August 2025?"]
# the default fusion, and a shallow one whose depth and re-ranked head cut into the sample corpus
FUSIONS = {"default": FusionSettings(), "shallow": FusionSettings(depth=8, rerank=6)}
CASES = [  # (filters, recency): each must rank as one index does
    (None, "none"),
    (Filters(source="Harbour Gazette"), "none"),
    (Filters(date_from="2025-08", date_to="2025-10"), "none"),
    (None, "prefer_recent"),
    (Filters(source="Metro Ledger"), "prefer_recent"),
]


def _key(passages) -> list[tuple]:
    return [(p.citation, p.article.id, p.start, p.end) for p in passages]


def _same(got, expected) -> bool:
    """The same passages in the same order with the same citations, scores within float tolerance
    (each index embedded its chunks in its own batches, which moves vectors by ~1e-7). Passages with
    exactly equal scores may come in another order: one index breaks ties by ingest order, the
    front by shard-local order."""
    if len(got) != len(expected) or any(abs(a.score - b.score) > 1e-5 for a, b in zip(got, expected)):
        return False
    if any(a.score == b.score for a, b in zip(expected, expected[1:])):
        return sorted(k[1:] for k in _key(got)) == sorted(k[1:] for k in _key(expected))
    return _key(got) == _key(expected)


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
    assert len(report.added) == whole.count("articles") and not report.failed
    sizes = []
    for i, name in enumerate(shard_names("split", SHARDS)):
        shard = Archive.open(name, root)
        ids = [a["id"] for a in shard.list_articles(0, 1000)]
        assert all(shard_of(a, SHARDS) == i for a in ids)
        assert shard.check() == []
        sizes.append(len(ids))
    assert sum(sizes) == whole.count("articles") and min(sizes) > 0
    assert shard_of("any-id", SHARDS) == shard_of("any-id", SHARDS)  # stable within and across runs (sha1)


def test_bm25_under_summed_statistics_scores_every_chunk_as_one_index(indexes):
    """Every chunk's score on its shard, with the shards' statistics summed, is its score in one index."""
    _, whole, sharded, _ = indexes
    big = whole.derived().lexical
    rows = whole.store.chunks_by_id(big.ids.tolist())
    for question in QUESTIONS:
        expected = {(rows[c].article_id, rows[c].start): s for c, s in big.search(question, len(big))}
        assert expected
        lexicals = [s.lexical() for s in sharded.pipeline.sources]
        corpus = sum((lx.stats(weighed_terms(lx, question)) for lx in lexicals), CorpusStats())
        got = {}
        for shard, lx in zip(sharded.pipeline.sources, lexicals):
            local = shard.store.chunks_by_id(lx.ids.tolist())
            got.update({(local[c].article_id, local[c].start): s for c, s in lx.search(question, len(lx), None, corpus)})
        assert got == expected, question  # bit for bit: the same float steps as bm25s over one index


def test_summed_statistics_of_one_index_reproduce_its_own_scores(indexes):
    """The tf recovery is exact: one index scored with its own statistics gives bm25s's scores."""
    _, whole, _, _ = indexes
    big = whole.derived().lexical
    for question in QUESTIONS:
        own = big.stats(weighed_terms(big, question))
        assert big.search(question, len(big), None, own) == big.search(question, len(big))


def test_bm25_files_are_mapped_and_format_2_shards_still_merge_exactly(indexes, tmp_path):
    """Shards written in format 2 (one `derived-<generation>` folder, no segments) still open: their
    segments are built from SQLite, memory-mapped, and the merge stays exact."""
    import json
    import shutil

    import numpy as np

    root, whole, _, _ = indexes
    for name in shard_names("split", SHARDS):
        shutil.copytree(root / name, tmp_path / name)
        folder = tmp_path / name
        shutil.rmtree(folder / "segments")
        (folder / "segments.json").unlink()
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / f"derived-{manifest['generation']}").mkdir()
        (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    old = ShardedArchive.open("split", SHARDS, str(tmp_path))
    for shard in old.pipeline.sources:
        (segment,) = shard.derived().segments
        assert isinstance(segment.lexical.retriever.scores["data"], np.memmap)
    for question in QUESTIONS:
        expected = whole.search(Query(question, 5, "bm25", as_of=AS_OF)).passages
        assert _same(old.search(Query(question, 5, "bm25", as_of=AS_OF)).passages, expected), question
    for name in shard_names("split", SHARDS):
        assert not list((tmp_path / name).glob("derived-*"))
        assert json.loads((tmp_path / name / "manifest.json").read_text())["format_version"] == 3


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_merge_is_exact_in_every_mode(indexes, mode, k, fusion):
    root, whole, sharded, _ = indexes
    settings = FUSIONS[fusion]
    one = Archive.open("whole", root, settings=Settings(fusion=settings))
    merged = ShardedArchive(sharded.pipeline.sources, Settings(fusion=settings))
    for question in QUESTIONS:
        expected = one.search(Query(question, k=k, mode=mode, as_of=AS_OF))
        got = merged.search(Query(question, k=k, mode=mode, as_of=AS_OF))
        assert _same(got.passages, expected.passages), (question, mode, k, _key(got.passages), _key(expected.passages))
        assert got.retrieval == expected.retrieval


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_filters_and_recency_merge_exactly(indexes, mode):
    _, whole, sharded, _ = indexes
    for filters, recency in CASES:
        for question in QUESTIONS:
            expected = whole.search(Query(question, 5, mode, filters, recency, AS_OF))
            got = sharded.search(Query(question, 5, mode, filters, recency, AS_OF))
            assert _same(got.passages, expected.passages), (question, mode, filters, recency)
            assert got.retrieval == expected.retrieval


def test_bad_modes_and_counts_are_clear_errors(indexes):
    root, _, sharded, _ = indexes
    with pytest.raises(InvalidInput):
        sharded.search(Query("anything", mode="sparse"))
    with pytest.raises(InvalidInput):
        shard_names("x", 0)
    with pytest.raises(InvalidInput):
        ShardedArchive([], Settings())
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


def test_front_over_http_merges_exactly(indexes, shard_urls):
    from fastapi.testclient import TestClient

    from api.front import create_front

    _, whole, _, _ = indexes
    cases = [(None, "none"), (Filters(source="Harbour Gazette"), "prefer_recent")]
    with TestClient(create_front(shard_urls)) as front:
        for question in QUESTIONS:
            for mode in ("dense", "bm25", "hybrid"):
                for filters, recency in cases:
                    expected = whole.search(Query(question, 5, mode, filters, recency, AS_OF)).passages
                    body = {"question": question, "k": 5, "mode": mode, "recency": recency, "as_of": AS_OF}
                    if filters:
                        body["filters"] = {"source": filters.source}
                    response = front.post("/search", json=body)
                    assert response.status_code == 200, response.text
                    passages = response.json()["passages"]
                    assert [(p["citation"], p["article_id"], p["start"], p["end"], p["text"]) for p in passages] == \
                           [(p.citation, p.article.id, p.start, p.end, p.text) for p in expected], (question, mode)
                    assert all(abs(p["score"] - e.score) <= 1e-5 for p, e in zip(passages, expected))


ANSWER_CASES = [(None, "none", 5), (Filters(source="Harbour Gazette"), "prefer_recent", 3),
                (Filters(date_from="2025-08", date_to="2025-10"), "none", 1)]


def _same_answer(got: dict, expected: dict) -> bool:
    """One index's /answer document: the same passages, answer (span, dates, citation), abstention
    and retrieval block; passage scores within float tolerance (see `_same`)."""
    def passages(doc):
        return [(p["citation"], p["article_id"], p["start"], p["end"], p["text"]) for p in doc["passages"]]

    close = all(abs(p["score"] - e["score"]) <= 1e-5 for p, e in zip(got["passages"], expected["passages"]))
    return close and all(got[key] == expected[key] for key in ("answer", "no_answer", "retrieval", "reader")) \
        and passages(got) == passages(expected)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_front_answers_as_one_index(indexes, shard_urls, mode):
    """`serve --shards` answers POST /answer with one index's passages, answer and retrieval block."""
    from fastapi.testclient import TestClient

    from api.front import create_front

    _, whole, sharded, _ = indexes
    with TestClient(create_front(shard_urls)) as front:
        for question in QUESTIONS[::2] + ["What did the central bank decide in September 2025?"]:
            for filters, recency, k in ANSWER_CASES:
                query = Query(question, k, mode, filters, recency, AS_OF)
                expected = whole.answer(query)
                response = front.post("/answer", json=query.to_json())
                assert response.status_code == 200, response.text
                assert _same_answer(response.json(), expected), (question, mode, filters, recency, k)
                assert _same_answer(sharded.answer(query), expected), (question, mode, filters, recency, k)


def test_shard_endpoints_refuse_inconsistent_statistics(shard_urls):
    import httpx

    bad = {"question": "bridge repairs", "depth": 5, "mode": "bm25",
           "corpus": {"documents": 2, "length": 10, "df": {"bridg": 3}}}
    response = httpx.post(f"{shard_urls[0]}/shard/hits", json=bad)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


def test_front_errors_are_json(shard_urls):
    from fastapi.testclient import TestClient

    from api.front import create_front

    with TestClient(create_front(shard_urls + ["http://127.0.0.1:9"])) as front:  # port 9: nothing listens
        down = front.post("/search", json={"question": "Who was elected mayor?"})
        assert down.status_code == 502 and down.json()["error"]["code"] == "shard_unavailable"
    with TestClient(create_front(shard_urls)) as front:
        bad = front.post("/search", json={"question": "Who was elected mayor?", "mode": "sparse"})
        assert 400 <= bad.status_code < 500 and bad.json()["error"]["code"]


def test_front_guards_reads_and_passes_the_read_key_to_the_shards(shard_urls, monkeypatch):
    from fastapi.testclient import TestClient

    from api.front import create_front

    monkeypatch.setenv("NEWSRAG_READ_KEY", "front-and-shards")  # read per request: the shard servers want it too
    with TestClient(create_front(shard_urls)) as front:
        body = {"question": "Who was elected mayor of Rivertown?", "k": 3}
        assert front.post("/search", json=body).status_code == 401
        allowed = front.post("/search", json=body, headers={"X-API-Key": "front-and-shards"})
        assert allowed.status_code == 200 and allowed.json()["passages"]

"""The Ray ingest writes what a local ingest writes: same chunks, vectors, sentences and search results."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import rag.archive
from rag.archive import Archive
from rag.articles import iter_sources
from rag.articles import sample_corpus_path
from rag.query import Query

RAY_PROGRESS: list[int] = []  # what the Ray ingest told its progress callback, batch by batch
QUESTIONS = ["Who was elected mayor of Rivertown?", "What did the central bank decide about rates?",
             "Which company opened a chip plant?"]


def _rows(archive: Archive, sql: str) -> dict:
    """Rows keyed by their first columns, last column the stored vector."""
    out = {}
    for *key, blob in archive.store.connect().execute(sql):
        out[tuple(key)] = np.frombuffer(blob, dtype=np.float32)
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory, monkeypatch_module):
    """The sample corpus ingested locally and with Ray, in batches of 4 so several actors take part."""
    if importlib.util.find_spec("ray") is None:  # not imported here: the ingest starts Ray on loopback only
        pytest.skip("Ray is not installed: pip install 'newsrag[distributed]'")
    from rag.distributed import ingest_with_ray

    monkeypatch_module.setattr(rag.ingest, "INGEST_BATCH", 4)
    root = tmp_path_factory.mktemp("ray-indexes")
    local = Archive.open("local", root, create=True)
    local_report = local.ingest(iter_sources([str(sample_corpus_path())]))
    ray_report = ingest_with_ray([str(sample_corpus_path())], "viaray", str(root), workers=2,
                                 progress=RAY_PROGRESS.append)
    ray = sys.modules["ray"]
    assert not ray.is_initialized()  # the local instance it started is shut down again
    return local, Archive.open("viaray", root), local_report, ray_report


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_same_report_and_consistent_index(pair):
    local, remote, local_report, ray_report = pair
    assert sorted(ray_report.added) == sorted(local_report.added) and len(local_report.added) > 4
    assert ray_report.chunks == local_report.chunks and not ray_report.failed
    assert remote.check() == []
    assert remote.manifest()["counts"] == local.manifest()["counts"]


def test_progress_counts_every_article_as_its_batch_commits(pair):
    """The Ray ingest reports progress as the local one does (the CLI's bar: rate and count)."""
    _, _, _, ray_report = pair
    assert sum(RAY_PROGRESS) == len(ray_report.added) and len(RAY_PROGRESS) > 1


def test_same_chunks_sentences_and_vectors(pair):
    local, remote, _, _ = pair
    for sql in ('SELECT article_id, ordinal, start, "end", n_tokens, embed_hash, vector FROM chunks',
                'SELECT article_id, start, "end", embed_hash, dates, vector FROM sentences'):
        a, b = _rows(local, sql), _rows(remote, sql)
        assert a.keys() == b.keys() and a
        assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-5


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_same_search_results(pair, mode):
    local, remote, _, _ = pair
    for question in QUESTIONS:
        ours = local.search(Query(question, k=5, mode=mode, as_of="2025-12-31")).passages
        theirs = remote.search(Query(question, k=5, mode=mode, as_of="2025-12-31")).passages
        assert [(p.article.id, p.start, p.end) for p in ours] == [(p.article.id, p.start, p.end) for p in theirs]
        assert np.allclose([p.score for p in ours], [p.score for p in theirs], atol=1e-5)


def test_missing_ray_is_a_clear_error(tmp_path):
    """Without Ray installed the command says which extra to install, with exit 2 and no traceback."""
    code = ("import sys; sys.modules['ray'] = None; from newsrag.cli import main; "
            f"sys.exit(main(['ingest', '--sample', '--engine', 'ray', '--index-dir', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "pip install 'newsrag[distributed]'" in done.stderr and "Traceback" not in done.stderr

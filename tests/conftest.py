"""Shared fixtures: one real index (real model, real FAISS, real SQLite) built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.archive import Archive
from rag.articles import iter_sources
from rag.articles import sample_corpus_path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
USER_CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def user_corpus() -> Path:
    if not USER_CORPUS.exists():
        pytest.skip("../shared/corpus is not beside the checkout")
    return USER_CORPUS


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("indexes")


@pytest.fixture(scope="session")
def archive(index_dir, user_corpus) -> Archive:
    """The sample corpus plus the user's example article, in the index `default`."""
    archive = Archive.open("default", index_dir, create=True)
    report = archive.ingest(iter_sources([str(sample_corpus_path()), str(user_corpus)]))
    assert not report.failed and report.added
    return archive


@pytest.fixture(scope="session")
def client(archive, index_dir):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app("default", str(index_dir)), base_url="http://127.0.0.1:8000") as c:
        yield c

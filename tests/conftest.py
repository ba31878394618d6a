"""Shared fixtures: one real index (real model, real FAISS, real SQLite) built once per session."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class KeyedServer:
    url: str
    read_key: str
    write_key: str


@pytest.fixture(scope="session")
def keyed_server(archive, index_dir, tmp_path_factory) -> KeyedServer:
    """`newsrag serve` on the session's index in its own process, with a read key and a write key set:
    one for the client, retriever and MCP tests."""
    from eval.load import served

    read_key, write_key = "test-read-key", "test-write-key"
    log = tmp_path_factory.mktemp("keyed-serve") / "stderr.log"
    env = {"NEWSRAG_READ_KEY": read_key, "NEWSRAG_API_KEY": write_key}
    with served("default", str(index_dir), env=env, log=log) as running:
        yield KeyedServer(running.url, read_key, write_key)

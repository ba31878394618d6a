"""newsrag: question answering over news articles with checkable citations.

`Archive` is the facade: open an index, ingest articles, search, answer.

The names below load on first use, so `import rag.errors` (all that the HTTP client, `newsrag.client`,
needs) does not pull in torch, FAISS and the model.
"""

from importlib import import_module

_HOMES = {"Archive": "archive", "IngestReport": "ingest", "Article": "articles", "LoadFailure": "articles",
          "Chunk": "chunking", "ChunkSettings": "chunking", "Filters": "query", "Query": "query",
          "SearchResult": "search", "Settings": "settings", "Hit": "retrieval"}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value

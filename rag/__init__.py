"""newsrag: question answering over news articles with checkable citations.

`Archive` is the facade: open an index, ingest articles, search, answer.
"""

from .archive import Archive, IngestReport
from .articles import Article, LoadFailure
from .chunking import Chunk, ChunkSettings
from .retrieval import Filters, Hit

__all__ = ["Archive", "IngestReport", "Article", "LoadFailure", "Chunk", "ChunkSettings", "Filters", "Hit"]

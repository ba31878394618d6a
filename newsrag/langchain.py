"""A LangChain retriever over a running `newsrag serve` (`pip install 'newsrag[langchain]'`).

    from newsrag.client import Client
    from newsrag.langchain import NewsragRetriever

    retriever = NewsragRetriever(client=Client("http://127.0.0.1:8000"), k=5)
    docs = retriever.invoke("When is Putin's visit to India expected?")

Each document is one cited passage: `page_content` is the passage text, and `metadata` holds
`article_id`, `title`, `date`, `url`, `source`, `start`, `end` (`[start, end)` into the stored article),
`citation`, `score` and `also_in` (the story's other outlets), so a chain can quote and link what it used.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from .client import Client, Filters, Passage


def passage_document(passage: Passage) -> Document:
    return Document(page_content=passage.text, metadata=passage.metadata(),
                    id=f"{passage.article_id}:{passage.start}-{passage.end}")


class NewsragRetriever(BaseRetriever):
    """The passages `POST /search` ranks for the query, with the same options as `/answer`."""

    client: Client
    k: int = 5
    mode: str | None = None
    filters: Filters | None = None
    recency: Literal["none", "prefer_recent"] | None = None
    as_of: str | None = None
    dedupe: bool | None = None  # False: every copy of a story, not one passage group per story

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.client.search(query, k=self.k, mode=self.mode, filters=self.filters, recency=self.recency,
                                    as_of=self.as_of, dedupe=self.dedupe)
        return [passage_document(p) for p in result.passages]

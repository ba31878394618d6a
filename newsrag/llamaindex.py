"""A LlamaIndex retriever over a running `newsrag serve` (`pip install 'newsrag[llamaindex]'`).

    from llama_index.core.query_engine import RetrieverQueryEngine
    from newsrag.client import Client
    from newsrag.llamaindex import NewsragRetriever

    retriever = NewsragRetriever(Client("http://127.0.0.1:8000"), k=5)
    nodes = retriever.retrieve("When is Putin's visit to India expected?")

Each node is one cited passage scored as newsrag ranked it: its text, `start_char_idx`/`end_char_idx`
(`[start, end)` into the stored article) and `metadata` with `article_id`, `title`, `date`, `url`,
`source`, `start`, `end`, `citation`, `score` and `also_in` (the story's other outlets).
"""

from __future__ import annotations

from typing import Literal

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from .client import Client, Filters, Passage


def passage_node(passage: Passage) -> NodeWithScore:
    node = TextNode(id_=f"{passage.article_id}:{passage.start}-{passage.end}", text=passage.text,
                    metadata=passage.metadata(), start_char_idx=passage.start, end_char_idx=passage.end)
    return NodeWithScore(node=node, score=passage.score)


class NewsragRetriever(BaseRetriever):
    """The passages `POST /search` ranks for the query, with the same options as `/answer`."""

    def __init__(self, client: Client, k: int = 5, mode: str | None = None, filters: Filters | None = None,
                 recency: Literal["none", "prefer_recent"] | None = None, as_of: str | None = None,
                 dedupe: bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.client = client
        self.options = {"k": k, "mode": mode, "filters": filters, "recency": recency, "as_of": as_of, "dedupe": dedupe}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [passage_node(p) for p in self.client.search(query_bundle.query_str, **self.options).passages]

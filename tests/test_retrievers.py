"""The LangChain and LlamaIndex retrievers in the frameworks' own pipelines, over a real `newsrag serve`:
the right passage comes back with offsets that slice the stored article exactly."""

from __future__ import annotations

import pytest

from newsrag.client import Client

QUESTION = "When is Putin's visit to India expected?"
USER_ARTICLE = "2025-10-07-india-russia-summit"
METADATA = {"article_id", "title", "date", "url", "source", "start", "end", "citation", "score"}

pytest.importorskip("langchain_core", reason="the langchain extra: pip install -e '.[langchain]'")
pytest.importorskip("llama_index.core", reason="the llamaindex extra: pip install -e '.[llamaindex]'")


@pytest.fixture(scope="module")
def client(keyed_server) -> Client:
    with Client(keyed_server.url, key=keyed_server.read_key) as client:
        yield client


def _check_cites_the_visit(client: Client, text: str, metadata: dict) -> None:
    """The passage is the user's article's, holds the answer, and its offsets slice the article to it."""
    assert METADATA <= set(metadata)
    assert metadata["article_id"] == USER_ARTICLE and metadata["date"] == "2025-10-07"
    assert "around December 5" in text
    assert client.article(metadata["article_id"]).text[metadata["start"]:metadata["end"]] == text


def test_a_langchain_chain_cites_the_passage(client) -> None:
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from newsrag.langchain import NewsragRetriever

    retriever = NewsragRetriever(client=client, k=3)
    docs = retriever.invoke(QUESTION)
    assert 1 <= len(docs) <= 3
    _check_cites_the_visit(client, docs[0].page_content, docs[0].metadata)

    def cite(found) -> str:
        return "\n".join(f"[{d.metadata['citation']}] {d.metadata['article_id']} "
                         f"{d.metadata['start']}-{d.metadata['end']}: {d.page_content}" for d in found)

    prompt = ChatPromptTemplate.from_template("Answer from these passages only.\n{context}\n\nQuestion: {question}")
    chain = {"context": retriever | RunnableLambda(cite), "question": RunnablePassthrough()} | prompt
    text = chain.invoke(QUESTION).to_string()
    first = docs[0].metadata
    assert f"[{first['citation']}] {USER_ARTICLE} {first['start']}-{first['end']}: " in text
    assert "around December 5" in text and text.endswith(f"Question: {QUESTION}")


def test_langchain_filters_reach_the_server(client) -> None:
    from newsrag.langchain import NewsragRetriever

    retriever = NewsragRetriever(client=client, k=5, filters={"date_to": "2025-10-01"}, mode="bm25", dedupe=False)
    docs = retriever.invoke(QUESTION)
    assert docs and all(d.metadata["date"] and d.metadata["date"] <= "2025-10-01" for d in docs)


def test_a_llamaindex_query_engine_cites_the_passage(client) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.response_synthesizers.no_text import NoText

    from newsrag.llamaindex import NewsragRetriever

    # No LLM is asked: NoText returns the retrieved nodes as the response's sources.
    engine = RetrieverQueryEngine(retriever=NewsragRetriever(client, k=3), response_synthesizer=NoText(llm=MockLLM()))
    response = engine.query(QUESTION)
    top = response.source_nodes[0]
    _check_cites_the_visit(client, top.node.text, top.node.metadata)
    assert (top.node.start_char_idx, top.node.end_char_idx) == (top.node.metadata["start"], top.node.metadata["end"])
    assert top.score == top.node.metadata["score"] and len(response.source_nodes) <= 3

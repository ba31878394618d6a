"""The MCP tools through the SDK's own client: over stdio (`newsrag mcp` in its own process) and over
streamable HTTP (/mcp on a real `newsrag serve` with a read key and a write key set)."""

from __future__ import annotations

import os
import sys

import anyio
import pytest

from newsrag.client import Client as HttpClient

mcp = pytest.importorskip("mcp", reason="the mcp extra: pip install -e '.[mcp]'")
httpx2 = pytest.importorskip("httpx2")
from mcp.client.stdio import StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

QUESTION = "When is Putin's visit to India expected?"
USER_ARTICLE = "2025-10-07-india-russia-summit"
READS = {"answer", "search", "get_article", "list_sources"}
WRITES = {"add_articles", "delete_article"}


def over_http(url: str, key: str | None):
    """Calls `work(client)` with an SDK client on `url`/mcp, sending `key` as a bearer token."""

    async def run(work):
        headers = {"Authorization": f"Bearer {key}"} if key else None
        async with create_mcp_http_client(headers=headers) as http, \
                mcp.Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            return await work(client)

    return lambda work: anyio.run(run, work)


def over_stdio(index_dir, env: dict[str, str]):
    """Calls `work(client)` with an SDK client on a fresh `newsrag mcp` process."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "newsrag", "mcp", "--index-dir", str(index_dir)],
                                   env=env)

    async def run(work):
        async with mcp.Client(params) as client:
            return await work(client)

    return lambda work: anyio.run(run, work)


async def tool_names(client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def ask_and_check(client) -> dict:
    """One session's calls, checked afterwards: the tools listed, `answer` for the Putin question, the cited
    article whole and around the span, `list_sources`, and three calls that must be refused."""
    result = await client.call_tool("answer", {"question": QUESTION})
    assert not result.is_error, result.content
    answer = result.structured_content["answer"]
    span = answer["span"]
    calls = {"article": {"article_id": answer["article_id"]},
             "around": {"article_id": answer["article_id"], "start": span["start"], "end": span["end"], "context": 40}}
    seen = {"tools": await tool_names(client), "answer": result.structured_content,
            "sources": (await client.call_tool("list_sources", {})).structured_content}
    for name, arguments in calls.items():
        seen[name] = (await client.call_tool("get_article", arguments)).structured_content
    seen["bad"] = [await client.call_tool("search", {"question": QUESTION, "k": 0}),
                   await client.call_tool("get_article", {"article_id": USER_ARTICLE, "start": 5, "end": 10**9}),
                   await client.call_tool("get_article", {"article_id": USER_ARTICLE, "start": 5})]
    return seen


def check_answer(seen: dict) -> None:
    """The span "December 5", the date 2025-12-05, and a citation whose offsets slice the article exactly."""
    doc, article = seen["answer"], seen["article"]
    answer = doc["answer"]
    assert answer["article_id"] == USER_ARTICLE and "December 5" in answer["span"]["text"]
    assert answer["dates"][0]["resolved"] == "2025-12-05"
    text = article["text"]
    assert text[answer["start"]:answer["end"]] == answer["text"]
    assert text[answer["span"]["start"]:answer["span"]["end"]] == answer["span"]["text"]
    cited = [p for p in doc["passages"] if p["citation"] == answer["citation"]]
    assert cited and all(p["article_id"] == USER_ARTICLE and text[p["start"]:p["end"]] == p["text"] for p in cited)
    around = seen["around"]
    assert around["span"]["text"] == answer["span"]["text"] and "text" not in around
    assert text[around["context"]["start"]:around["context"]["end"]] == around["context"]["text"]
    assert (around["context"]["start"], around["context"]["end"]) == (max(0, answer["span"]["start"] - 40),
                                                                       min(len(text), answer["span"]["end"] + 40))
    for refused in seen["bad"]:  # k out of range, a span past the article's end, a start without an end
        assert refused.is_error and refused.structured_content["error"]["code"] == "invalid_input"


def without_timings(doc: dict) -> dict:
    return {key: value for key, value in doc.items() if key != "timings_ms"}


@pytest.fixture(scope="module")
def stdio_run(archive, index_dir) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "NEWSRAG_API_KEY"}
    return over_stdio(index_dir, env)(ask_and_check)


@pytest.fixture(scope="module")
def http_run(keyed_server) -> dict:
    return over_http(keyed_server.url, keyed_server.read_key)(ask_and_check)


def test_stdio_lists_the_read_tools_and_answers(stdio_run) -> None:
    assert stdio_run["tools"] == READS  # no NEWSRAG_API_KEY in the server's environment: no write tools
    check_answer(stdio_run)


def test_http_lists_the_read_tools_and_answers(http_run) -> None:
    assert http_run["tools"] == READS
    check_answer(http_run)


def test_structured_output_is_the_http_json(keyed_server, http_run, stdio_run) -> None:
    with HttpClient(keyed_server.url, key=keyed_server.read_key) as client:
        answer = client.answer(QUESTION).to_json()
        assert without_timings(http_run["answer"]) == without_timings(answer) == without_timings(stdio_run["answer"])
        assert http_run["article"] == client.article(USER_ARTICLE).to_json() == stdio_run["article"]
        assert http_run["sources"] == client.sources().to_json() == stdio_run["sources"]


def test_http_refuses_a_call_without_the_read_key(keyed_server) -> None:
    for key in (None, "wrong"):
        with pytest.raises(ExceptionGroup) as refused:  # the SDK's client fails inside its task group
            over_http(keyed_server.url, key)(tool_names)
        assert refused.group_contains(MCPError)
    ask = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    with httpx2.Client() as http:
        for headers, status, code in (({}, 401, "unauthorized"), ({"X-API-Key": "wrong"}, 403, "forbidden")):
            response = http.post(f"{keyed_server.url}/mcp", json=ask, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_http_writes_only_with_the_write_key(keyed_server) -> None:
    article = {"id": "mcp-test", "title": "Bridge reopens", "date": "2025-11-03", "source": "MCP test",
               "text": "The old river bridge reopened to traffic on Monday after eight months of repairs."}

    async def write(client) -> tuple:
        added = await client.call_tool("add_articles", {"articles": [article]})
        found = await client.call_tool("search", {"question": "When did the old river bridge reopen?", "k": 1,
                                                  "dedupe": False})
        deleted = await client.call_tool("delete_article", {"article_id": "mcp-test"})
        again = await client.call_tool("delete_article", {"article_id": "mcp-test"})
        return await tool_names(client), added, found, deleted, again

    tools, added, found, deleted, again = over_http(keyed_server.url, keyed_server.write_key)(write)
    assert tools == READS | WRITES
    assert added.structured_content["ids"]["added"] == ["mcp-test"]
    assert found.structured_content["passages"][0]["article_id"] == "mcp-test"
    assert found.structured_content["retrieval"]["stories"]["dedupe"] is False
    assert deleted.structured_content == {"deleted": "mcp-test"}
    assert again.is_error and again.structured_content["error"]["code"] == "article_not_found"

    async def try_write(client):
        return await client.call_tool("add_articles", {"articles": [article]})

    refused = over_http(keyed_server.url, keyed_server.read_key)(try_write)
    assert refused.is_error  # the read-only tools have no add_articles

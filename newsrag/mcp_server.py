"""`newsrag mcp`: the archive's MCP tools (api/mcp.py) over stdio, for an agent that starts newsrag
itself (Claude Desktop, an IDE, a script with the SDK's client). stdout carries the protocol alone;
logs go to stderr.

Over stdio the caller is whoever started the process, with that user's own access to the index files,
so no read key is asked; the write tools are there only when NEWSRAG_API_KEY is in the environment
(the client's config holds the key), as over HTTP only its holder sees them.
"""

from __future__ import annotations

import os

from api.mcp import build_server
from api.state import ServerState
from rag.errors import NewsragError
from rag.query import Query


def warm(state: ServerState) -> None:
    """Open the index and load the model and reader now, so the agent's first question is fast."""
    try:
        state.archive().answer(Query("warm up", k=1))
    except NewsragError:
        pass  # no index yet, or an empty one: the tools say so when called


def serve_stdio(index: str, index_dir: str | None) -> None:
    state = ServerState(default=index, index_dir=index_dir, host="stdio")  # `host` only gates keyless HTTP writes
    warm(state)
    build_server(state, writes=bool(os.environ.get("NEWSRAG_API_KEY"))).run("stdio")

"""The `newsrag` command as a user runs it: a real process, a real index folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest


def run(*args, env_dir, stdin=None):
    env = {**os.environ, "NEWSRAG_INDEX_DIR": str(env_dir)}
    return subprocess.run([sys.executable, "-m", "newsrag.cli", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=300)


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory, user_corpus):
    folder = tmp_path_factory.mktemp("cli")
    result = run("ingest", str(user_corpus), env_dir=folder)
    assert result.returncode == 0, result.stderr
    assert "added 1, unchanged 0, replaced 0, failed 0" in result.stderr
    return folder


def test_ask_json_cites_the_user_article(cli_dir):
    result = run("ask", "When is Putin's visit to India expected?", "--json", env_dir=cli_dir)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)  # stdout holds the JSON document alone
    assert "December 5" in body["answer"]["text"]
    cited = [p for p in body["passages"] if p["citation"] == body["answer"]["citation"]]
    assert cited[0]["date"] == "2025-10-07"
    assert cited[0]["article_id"] == "2025-10-07-india-russia-summit"


def test_ask_human_readable_has_numbered_citations(cli_dir):
    result = run("ask", "When is Putin's visit to India expected?", env_dir=cli_dir)
    assert result.returncode == 0
    assert "Answer:" in result.stdout and "[1]" in result.stdout and "2025-10-07" in result.stdout


def test_reingest_is_a_noop_and_stats_check_delete(cli_dir, user_corpus):
    again = run("ingest", str(user_corpus), env_dir=cli_dir)
    assert "added 0, unchanged 1" in again.stderr
    stats = json.loads(run("stats", "--json", env_dir=cli_dir).stdout)
    assert stats["articles"] == 1 and stats["date_range"] == ["2025-10-07", "2025-10-07"]
    assert stats["settings"]["chunking"] == {"target_tokens": 160, "overlap_tokens": 40}
    printed = run("stats", env_dir=cli_dir).stdout
    assert re.search(r"settings chunking +target_tokens=160, overlap_tokens=40", printed) and "settings fusion" in printed
    assert run("check", env_dir=cli_dir).returncode == 0


def test_stdin_jsonl_and_delete(tmp_path):
    line = json.dumps({"id": "s1", "text": "A short note about the ferry. It sails at noon."})
    assert run("ingest", "-", env_dir=tmp_path, stdin=line + "\n{bad\n").returncode == 0
    assert run("delete", "s1", env_dir=tmp_path).returncode == 0
    missing = run("delete", "s1", env_dir=tmp_path)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1 and "no article" in missing.stderr


@pytest.mark.parametrize("args", [["ask", "  "], ["ask", "x" * 1001], ["ask", "ok?", "-k", "0"],
                                  ["ask", "ok?", "--index", "nope"],
                                  ["ask", "putin yesterday", "--as-of", "0001-01-01"]])  # issue 13 D3: was a traceback
def test_bad_input_is_one_line_and_nonzero(cli_dir, args):
    result = run(*args, env_dir=cli_dir)
    assert result.returncode != 0
    assert result.stderr.startswith("newsrag: error:") and result.stderr.count("\n") == 1

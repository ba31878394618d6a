"""Read scaling: separate `newsrag serve` processes (one of them with uvicorn workers) share one index
folder, memory-mapped, answer alike, and pick up an ingest made by a third process without a
restart and without a failed request."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from rag.archive import Archive
from rag.articles import make_article

from synthetic import articles, write_jsonl

NEWSRAG = [sys.executable, "-m", "newsrag.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(folder: Path, port: int, workers: int) -> subprocess.Popen:
    """A server in its own session; its request log goes to a file (a pipe nobody reads would fill and block it)."""
    log = open(folder / f"serve-{port}.log", "w")
    return subprocess.Popen(NEWSRAG + ["serve", "--index", "live", "--index-dir", str(folder), "--port", str(port),
                                       "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url} exited"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not start")


def _passages(response: httpx.Response) -> list[tuple]:
    assert response.status_code == 200, response.text
    return [(p["article_id"], p["start"], p["end"], round(p["score"], 5)) for p in response.json()["passages"]]


def _server_pids(process: subprocess.Popen) -> list[int]:
    """The server process and its uvicorn workers (same session)."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _session(int(p)) == process.pid]


def _session(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def _mapped(pid: int) -> set[str]:
    """Index files this process has memory-mapped."""
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError:
        return set()
    return {line.split(maxsplit=5)[5] for line in lines if "/segments/" in line}


def _rss_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "RssAnon", "RssFile", "RssShmem")):
            name, value = line.split(":")
            fields[name] = int(value.split()[0])
    return fields


def test_servers_share_a_mapped_index_and_pick_up_an_ingest_without_failing(tmp_path):
    Archive.open("live", tmp_path, create=True).ingest([make_article(r, r["id"]) for r in articles(40, seed=3)])
    new = articles(3, seed=4, prefix="late")
    question = {"question": f"What did {new[0]['title']} report?", "k": 5}
    ports = [_free_port(), _free_port()]
    servers = [_serve(tmp_path, ports[0], 1), _serve(tmp_path, ports[1], 2)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, server in zip(urls, servers):
            _wait_ready(url, server)
        with httpx.Client(timeout=60) as client:
            before = [_passages(client.post(f"{u}/search", json=question)) for u in urls for _ in range(3)]
            assert all(b == before[0] for b in before), "two servers (or two workers) answered differently"
            pids = [pid for s in servers for pid in _server_pids(s)]
            mapped = {pid: _mapped(pid) for pid in pids}
            serving = [pid for pid in pids if mapped[pid]]
            assert len(serving) >= 3, mapped  # the plain server and both workers map the index files
            assert all(any(f.endswith("vectors.faiss") for f in mapped[p]) and
                       any("bm25" in f for f in mapped[p]) for p in serving), mapped
            print("\nRSS per serving process (kB):", [_rss_kb(p) for p in serving])

            failures, answers, stop = [], [], threading.Event()

            def hammer(url: str) -> None:
                while not stop.is_set():
                    try:
                        response = client.post(f"{url}/search", json=question)
                        if response.status_code != 200:
                            failures.append(response.text)
                        else:
                            answers.append(_passages(response))
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

            threads = [threading.Thread(target=hammer, args=(u,)) for u in urls]
            for t in threads:
                t.start()
            ingest = subprocess.run(NEWSRAG + ["ingest", str(write_jsonl(tmp_path / "late.jsonl", new)),
                                               "--index", "live", "--index-dir", str(tmp_path)],
                                    capture_output=True, text=True, timeout=300)
            time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join()
            assert ingest.returncode == 0, ingest.stderr
            assert not failures, failures[:3]
            after = [_passages(client.post(f"{u}/search", json=question)) for u in urls for _ in range(3)]
        assert all(a == after[0] for a in after) and after[0][0][0] == new[0]["id"]
        assert all(a in (before[0], after[0]) for a in answers), "a query saw a state that was neither before nor after"
        plain = _server_pids(servers[0])  # every request reached it: it maps the new version, not the old
        for pid in plain:
            fresh = {f for f in _mapped(pid) - mapped[pid] if not f.endswith("(deleted)")}
            assert any(f.endswith("vectors.faiss") for f in fresh), "the new index version is not mapped"
    finally:
        for server in servers:
            os.killpg(server.pid, 15)
        for server in servers:
            server.wait(timeout=60)

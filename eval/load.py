"""A bounded load test of `POST /answer`: N concurrent clients for T seconds against `newsrag serve`.

    python -m eval.load [--clients 16] [--duration 60] [--questions FILE.jsonl]
                        [--index NAME --index-dir DIR | --url http://127.0.0.1:PORT] [--out FILE.json]

Without `--url` it builds the sample index in a temporary folder (unless `--index-dir` names one),
starts `newsrag serve` on 127.0.0.1 on a free port, and stops it afterwards. Only loopback addresses
are driven, and the run is bounded in clients and seconds. Prints one JSON report on stdout:
requests/s, latency percentiles (ms), errors by kind; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import httpx
import numpy as np

from api.auth import is_loopback

REPO = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = REPO / "tests" / "data" / "sample_questions.jsonl"
MAX_CLIENTS = 64
MAX_DURATION_S = 600


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16, help=f"concurrent clients (default 16, at most {MAX_CLIENTS})")
    p.add_argument("--duration", type=float, default=60.0, help=f"seconds of load (default 60, at most {MAX_DURATION_S})")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL with a `question` field per line")
    p.add_argument("--k", type=int, default=5, help="passages per answer (default 5)")
    p.add_argument("--url", help="a running server on a loopback address (default: start one)")
    p.add_argument("--index", default="default", help="index to serve (default: default)")
    p.add_argument("--index-dir", help="folder of indexes (default: build the sample index in a temporary folder)")
    p.add_argument("--out", type=Path, help="also write the report here")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def newsrag(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("newsrag")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "newsrag.cli", *args]


class ServerFailed(RuntimeError):
    """`newsrag serve` exited or did not become ready; the message ends with its stderr when logged."""


@dataclass
class Served:
    """A running `newsrag serve`: its base URL and process (for its pid and resident memory)."""

    url: str
    process: subprocess.Popen


@contextmanager
def served(index: str, index_dir: str, env: dict[str, str] | None = None, log: Path | None = None,
           timeout_s: float = 180) -> Iterator[Served]:
    """`newsrag serve` on 127.0.0.1 on a free port, ready (its /health says the index is loaded),
    stopped on exit. `env` adds environment variables; `log` receives its stderr (else discarded)."""
    port = free_port()
    sink = open(log, "w") if log else subprocess.DEVNULL
    try:
        server = subprocess.Popen(newsrag("serve", "--host", "127.0.0.1", "--port", str(port),
                                          "--index", index, "--index-dir", str(index_dir)),
                                  env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=sink)
    finally:
        if log:
            sink.close()
    url = f"http://127.0.0.1:{port}"

    def failed(why: str) -> ServerFailed:
        return ServerFailed(why + (f": {log.read_text()[-4000:]}" if log else ""))

    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise failed(f"newsrag serve exited with status {server.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=2).json().get("index_loaded"):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise failed(f"newsrag serve did not become ready within {timeout_s:.0f} s")
            time.sleep(0.1)
        yield Served(url, server)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def drive(url: str, questions: list[str], clients: int, duration: float, k: int) -> dict:
    """Each client asks the next question as soon as its last answer arrives, until the time is up."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    turn = 0
    load_before = os.getloadavg()[0]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def one_client() -> None:
            nonlocal turn
            while time.perf_counter() < deadline:
                question = questions[turn % len(questions)]
                turn += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post("/answer", json={"question": question, "k": k})
                    kind = None if response.status_code == 200 else f"http_{response.status_code}"
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                if kind:
                    errors[kind] = errors.get(kind, 0) + 1
                else:
                    latencies.append((time.perf_counter() - t0) * 1e3)

        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return {
        "url": url, "clients": clients, "duration_s": round(elapsed, 1), "k": k,
        "requests": len(latencies) + sum(errors.values()), "ok": len(latencies), "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "latency_ms": {p: round(float(np.percentile(lat, q)), 1)
                       for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "questions": len(questions), "cpus": os.cpu_count(), "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION_S:
        raise SystemExit(f"--clients must be 1-{MAX_CLIENTS} and --duration 0-{MAX_DURATION_S} s")
    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    if args.url:
        if not is_loopback(urlparse(args.url).hostname or ""):
            raise SystemExit("--url must be a loopback address (127.0.0.1, ::1 or localhost)")
        report = asyncio.run(drive(args.url.rstrip("/"), questions, args.clients, args.duration, args.k))
    else:
        with tempfile.TemporaryDirectory(prefix="newsrag-load-") as tmp:
            index_dir = args.index_dir
            if index_dir is None:
                index_dir = tmp
                print("load: building the sample index ...", file=sys.stderr)
                subprocess.run(newsrag("ingest", "--sample", "--index", args.index, "--index-dir", index_dir),
                               check=True, stdout=subprocess.DEVNULL)
            try:
                with served(args.index, index_dir) as server:
                    print(f"load: {args.clients} clients for {args.duration:.0f} s against {server.url} ...",
                          file=sys.stderr)
                    report = asyncio.run(drive(server.url, questions, args.clients, args.duration, args.k))
            except ServerFailed as exc:
                raise SystemExit(str(exc)) from exc
            report["index"] = args.index
    report["command"] = "python -m eval.load " + " ".join(argv if argv is not None else sys.argv[1:])
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())

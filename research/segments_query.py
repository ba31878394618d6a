"""Query time against the number of segments (issue 17): a copy of a built index, searched as it is
(one segment), then after `--extra` one-article writes that each add a segment (copies of stored
articles under new ids, so no model work, and merges held back), the same questions in each mode.

    .venv/bin/python -m research.segments_query --index writes-100000 --index-dir .cache/bench --extra 35
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path

from rag.archive import Archive
from rag.query import Query

QUESTIONS = ["Which company opened a chip plant?", "When did the harbour flood?", "Who won the election?",
             "What did the central bank decide about rates?", "How many people live in the city?",
             "Which team won the cup final?", "What is the capital of the region?", "Who founded the university?"]


def timed(archive: Archive, mode: str, rounds: int) -> float:
    """Median ms of a search over QUESTIONS, `rounds` times each."""
    ms = []
    for _ in range(rounds):
        for q in QUESTIONS:
            started = time.perf_counter()
            archive.search(Query(q, 5, mode))
            ms.append((time.perf_counter() - started) * 1e3)
    return round(statistics.median(ms), 2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--index", required=True)
    p.add_argument("--index-dir", required=True)
    p.add_argument("--extra", type=int, default=35)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    work = Path(args.index_dir) / f"{args.index}.segments-query"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(Path(args.index_dir) / args.index, work / args.index, ignore=shutil.ignore_patterns("*.lock"))
    archive = Archive.open(args.index, work)
    archive.search(Query("warm up"))
    out = {"index": args.index, "chunks": archive.count("chunks"), "load_before": os.getloadavg()[0], "by_segments": {}}
    out["by_segments"][len(archive.derived().segments)] = {m: timed(archive, m, args.rounds) for m in ("bm25", "dense", "hybrid")}
    donors = [archive.get_article(a["id"]) for a in archive.list_articles(0, args.extra)]
    for i, a in enumerate(donors):
        archive.ingest([replace(a, id=f"{a.id}-segment-{i}")], merge=False)
    out["by_segments"][len(archive.derived().segments)] = {m: timed(archive, m, args.rounds) for m in ("bm25", "dense", "hybrid")}
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

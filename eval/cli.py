"""`newsrag eval ...` and `newsrag eval compare A.json B.json`; `newsrag bench ...` is handed to eval/bench.py.

The Markdown table goes to stdout; progress bars, the index in use and the report's location go to
stderr. Errors are one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from rag.errors import NewsragError
from rag.query import DEFAULT_MODE, MODES

from .datasets import LOADERS, SPLITS, load_dataset
from .run import CACHE_DIR, RunConfig, build_index, evaluate, parse_modes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="newsrag eval",
        description="Measure retrieval and answers on a data set, a row per mode. "
                    "`newsrag eval compare A.json B.json` prints the difference of two reports.")
    p.add_argument("path", help="the data set: a SQuAD JSON file, a BEIR folder, an RGB file or folder, a qa folder")
    p.add_argument("--format", required=True, choices=sorted(LOADERS), help="the data set's layout")
    p.add_argument("--mode", help=f"comma-separated modes from {', '.join(MODES)} (default: {DEFAULT_MODE})")
    p.add_argument("--limit", type=int, help="ask a sample of this many questions (the corpus is never sampled)")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit's sample (default 0)")
    p.add_argument("--split", choices=SPLITS, default="all",
                   help="SQuAD only: tune = first half of the titles, test = the rest (default all)")
    p.add_argument("--k", type=int, default=100, help="passages retrieved for the ranking metrics (default 100)")
    p.add_argument("--answer-k", type=int, default=5, help="passages asked of /answer (default 5, the API's)")
    p.add_argument("--out", help="report folder (default eval/out/<dataset>-<timestamp>)")
    p.add_argument("--url", help="drive a running `newsrag serve` at this URL instead of the library")
    p.add_argument("--cache-dir", default=CACHE_DIR, help=f"where data set indexes are cached (default {CACHE_DIR})")
    p.add_argument("--rebuild", action="store_true", help="re-ingest the data set's index from scratch")
    p.add_argument("--no-dedupe", dest="dedupe", action="store_false",
                   help="score every copy of a story as its own result (default: one passage group per story, "
                        "the copies in its also_in ranked with it)")
    p.add_argument("--oracle", action="store_true",
                   help="also answer each answerable question from its gold articles alone (report key oracle)")
    p.add_argument("--build-only", action="store_true",
                   help="build (or find) the data set's index, print its name and exit: then serve it for --url")
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="newsrag eval compare", description="B − A for every mode and metric.")
    p.add_argument("a", type=Path, help="the baseline report.json")
    p.add_argument("b", type=Path, help="the new report.json")
    return p


def main(argv: list[str]) -> int:
    """Entry point from `newsrag.cli`: argv starts with "eval" or "bench"."""
    command, rest = argv[0], argv[1:]
    try:
        if command == "bench":
            from .bench import main as bench_main

            return bench_main(rest)
        if rest[:1] == ["compare"]:
            return _compare(_compare_parser().parse_args(rest[1:]))
        return _eval(_parser().parse_args(rest), ["newsrag", "eval", *rest])
    except (NewsragError, ValueError) as exc:
        print(f"newsrag: error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newsrag: interrupted", file=sys.stderr)
        return 130


def _eval(args: argparse.Namespace, argv: list[str]) -> int:
    from .report import build_report, git_state, markdown_table, write_outputs  # matplotlib only when reporting

    if args.k < 1 or args.answer_k < 1:
        raise ValueError("--k and --answer-k must be at least 1")
    if args.build_only:
        if args.url:
            raise ValueError("--build-only builds a local index; it takes no --url")
        archive = build_index(load_dataset(args.path, args.format), args.cache_dir, args.rebuild)
        print(archive.name)
        return 0
    config = RunConfig(path=args.path, format=args.format, modes=parse_modes(args.mode), k=args.k,
                       answer_k=args.answer_k, limit=args.limit, seed=args.seed, split=args.split, url=args.url,
                       cache_dir=args.cache_dir, rebuild=args.rebuild, oracle=args.oracle, dedupe=args.dedupe)
    git = git_state()
    ev = evaluate(config)
    report = build_report(ev, shlex.join(argv), git)
    out = Path(args.out or f"eval/out/{ev.dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    write_outputs(report, ev, out)
    print(markdown_table(report))
    if "oracle" in report:
        print("gold articles only (oracle): " + ", ".join(f"{k} {v:.3f}" for k, v in report["oracle"]["gold_article"].items()))
    print(f"newsrag eval: {report['n_questions']} questions in {ev.seconds:.0f} s; report in {out}/", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .report import compare

    reports = []
    for path in (args.a, args.b):
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read report {path}: {exc}") from exc
        if not isinstance(reports[-1], dict) or "modes" not in reports[-1]:
            raise ValueError(f"{path} is not a `newsrag eval` report.json")
    table, warnings = compare(*reports)
    for warning in warnings:
        print(f"newsrag eval compare: warning: {warning}", file=sys.stderr)
    print(table)
    return 0

"""The `newsrag` command: ingest, ask, serve, mcp, stats, delete, check, optimize, eval, bench.

Machine-readable output (`--json`) goes to stdout alone; progress and logs go to stderr. Errors are
one line on stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap

from rag.articles import sample_corpus_path
from rag.errors import InvalidInput, NewsragError


def _index_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", default="default", help="index name (default: default)")
    parser.add_argument("--index-dir", default=None, help="folder of indexes (default: $NEWSRAG_INDEX_DIR or ./indexes)")


def _filter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="date_from", help="only articles dated on or after YYYY-MM-DD")
    parser.add_argument("--to", dest="date_to", help="only articles dated on or before YYYY-MM-DD")
    parser.add_argument("--source", help="only articles from this source")
    parser.add_argument("--article", dest="article_ids", action="append", help="only this article (repeatable)")
    parser.add_argument("--include-undated", action="store_true", help="keep undated articles under --from/--to")
    parser.add_argument("--recency", choices=["none", "prefer_recent"], default="none",
                        help="prefer_recent: a bounded boost for newer articles")
    parser.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD: 'today' for times named in the question")
    parser.add_argument("--no-dedupe", dest="dedupe", action="store_false",
                        help="every copy of a story (reprints included), not one passage group per story")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsrag", description="Question answering over news articles, with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add articles (.txt, .jsonl, .html files, folders, globs, or - for JSONL on stdin)")
    p.add_argument("paths", nargs="*", help="files, folders, globs or -")
    p.add_argument("--sample", action="store_true", help="ingest the bundled sample corpus")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="--engine ray: the Ray cluster to join (default: start a local one)")
    p.add_argument("--workers", type=int, default=None, help="--engine ray: preparing actors (default: one per cluster CPU)")
    p.add_argument("--shards", type=int, default=None, help="split by article-id hash into indexes NAME.shard-0..N-1")
    p.add_argument("--chunk-tokens", type=int, default=None,
                   help="chunk size in tokens for a new index (NEWSRAG_CHUNK_TOKENS; default 160)")
    p.add_argument("--chunk-overlap", type=int, default=None,
                   help="overlap between chunks in tokens for a new index (NEWSRAG_CHUNK_OVERLAP; default 40)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _index_args(p)

    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="passages to return (1-50)")
    p.add_argument("--mode", default=None, help="dense, bm25 or hybrid")
    p.add_argument("--json", action="store_true", help="print exactly the /answer JSON")
    _filter_args(p)
    _index_args(p)

    p = sub.add_parser("serve", help="serve the HTTP API and web page")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--shards", default=None, help="URL,URL: serve a front that merges these shard servers' /search")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes on one port, sharing the memory-mapped index (uvicorn workers)")
    _index_args(p)

    p = sub.add_parser("mcp", help="serve the MCP tools over stdio, for agents (needs the mcp extra)")
    _index_args(p)

    p = sub.add_parser("stats", help="what the index holds")
    p.add_argument("--json", action="store_true")
    _index_args(p)

    p = sub.add_parser("delete", help="delete an article and its chunks")
    p.add_argument("id")
    _index_args(p)

    p = sub.add_parser("check", help="exit 0 only when FAISS, BM25 and SQLite agree")
    _index_args(p)

    p = sub.add_parser("optimize", help="merge every segment into one, dropping deleted chunks")
    p.add_argument("--json", action="store_true")
    _index_args(p)

    sub.add_parser("eval", help="evaluate on a dataset (see `newsrag eval --help`)", add_help=False)
    sub.add_parser("bench", help="benchmarks (see `newsrag bench --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("eval", "bench"):  # the harness parses its own flags
        from eval import cli as eval_cli

        return eval_cli.main(argv)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except NewsragError as exc:
        print(f"newsrag: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("newsrag: interrupted", file=sys.stderr)
        return 130


def cmd_ingest(args) -> int:
    from tqdm import tqdm

    from rag.archive import Archive
    from rag.articles import iter_sources

    for flag, variable in ((args.chunk_tokens, "NEWSRAG_CHUNK_TOKENS"), (args.chunk_overlap, "NEWSRAG_CHUNK_OVERLAP")):
        if flag is not None:  # a flag is its environment variable, for this process (and Ray workers)
            os.environ[variable] = str(flag)
    paths = list(args.paths) + ([str(sample_corpus_path())] if args.sample else [])
    if not paths:
        raise InvalidInput("name at least one PATH (file, folder, glob or -), or --sample")
    archive = None
    if args.shards is not None:
        from rag.shards import ingest_sharded

        if args.engine == "ray":
            raise InvalidInput("--shards is not combined with --engine ray yet: use the local engine")
        report = ingest_sharded(iter_sources(paths), args.index, args.shards, args.index_dir)
    elif args.engine == "ray":
        from rag.distributed import ingest_with_ray

        with tqdm(desc="ingest (ray)", unit="article", file=sys.stderr, dynamic_ncols=True) as bar:
            report = ingest_with_ray(paths, args.index, args.index_dir, address=args.address, workers=args.workers,
                                     progress=bar.update)
    else:
        archive = Archive.open(args.index, args.index_dir, create=True)
        with tqdm(desc="ingest", unit="article", file=sys.stderr, dynamic_ncols=True) as bar:
            report = archive.ingest(iter_sources(paths), progress=bar.update)
    summary = report.to_json()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"added {summary['added']}, unchanged {summary['unchanged']}, replaced {summary['replaced']}, "
              f"failed {len(summary['failed'])}; {summary['chunks']} chunks embedded, "
              f"{summary['truncated_chunks']} truncated, {summary['seconds']:.1f} s", file=sys.stderr)
    for failure in report.failed:
        print(f"newsrag: failed: {failure.source}: {failure.reason}", file=sys.stderr)
    if archive is not None:
        archive.wait_for_merges()  # durable and visible already; the merges only tidy the segments
    return 0 if not report.failed or (report.added or report.replaced or report.unchanged) else 1


def cmd_ask(args) -> int:
    from rag.archive import Archive
    from rag.query import Filters, Query
    from rag.validation import validate_question

    validate_question(args.question, args.k)
    filters = Filters(date_from=args.date_from, date_to=args.date_to, source=args.source,
                      article_ids=args.article_ids, include_undated=args.include_undated)
    query = Query(args.question, args.k, args.mode, filters, args.recency, args.as_of, args.dedupe)
    result = Archive.open(args.index, args.index_dir).answer(query)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(format_answer(result))
    return 0


def format_answer(result: dict) -> str:
    """A human-readable answer with numbered citations."""
    lines = []
    answer = result["answer"]
    if answer:
        span = answer.get("span")
        if span:
            lines.append(f"Answer: {span['text']}  [{answer['citation']}]")
            lines.append(f"  in: {answer['text']}")
        else:
            lines.append(f"Answer: {answer['text']}  [{answer['citation']}]")
        for d in answer.get("dates") or []:
            lines.append(f"  date: {d['text']!r} -> {d['resolved']}{' (approximate)' if d['approximate'] else ''}")
    else:
        reason = (result.get("no_answer") or {}).get("reason", "no answer")
        lines.append(f"Not in the articles ({reason}). Nearest passages:")
    lines.append("")
    seen = set()
    for p in result["passages"]:
        head = f"[{p['citation']}] {p['title']} — {p['date'] or 'undated'}{' — ' + p['source'] if p['source'] else ''}"
        if p["citation"] not in seen:
            lines.append(head)
            seen.add(p["citation"])
            if p.get("also_in"):
                lines.append("    also reported by " + ", ".join(
                    f"{o['source'] or o['article_id']} ({o['date'] or 'undated'})" for o in p["also_in"]))
        lines.append(f"    {p['article_id']} chars {p['start']}-{p['end']}:")
        lines.append(textwrap.indent(textwrap.fill(p["text"], 96), "      "))
    return "\n".join(lines)


def cmd_serve(args) -> int:
    import uvicorn

    from api.app import create_app

    if args.workers > 1:
        if args.shards:
            raise InvalidInput("--workers serves an index; run one front over the shard servers instead")
        os.environ.update(NEWSRAG_SERVE_INDEX=args.index, NEWSRAG_SERVE_HOST=args.host)
        if args.index_dir:
            os.environ["NEWSRAG_INDEX_DIR"] = str(args.index_dir)
        print(f"newsrag: serving index {args.index!r} with {args.workers} workers on http://{args.host}:{args.port}/",
              file=sys.stderr)
        uvicorn.run("api.app:create_app_from_env", factory=True, workers=args.workers, host=args.host, port=args.port,
                    log_level="warning")
        return 0
    if args.shards:
        from api.front import create_front

        app = create_front([u for u in args.shards.split(",") if u])
        print(f"newsrag: serving a front over {args.shards} on http://{args.host}:{args.port}/", file=sys.stderr)
    else:
        app = create_app(index=args.index, index_dir=args.index_dir, host=args.host)
        print(f"newsrag: serving index {args.index!r} on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_mcp(args) -> int:
    from importlib.util import find_spec

    if not find_spec("mcp"):
        raise InvalidInput("newsrag mcp needs the mcp extra: pip install 'newsrag[mcp]'")
    from .mcp_server import serve_stdio

    serve_stdio(args.index, args.index_dir)
    return 0


def cmd_stats(args) -> int:
    from rag.archive import Archive

    stats = Archive.open(args.index, args.index_dir).stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    rows = [("index", stats["index"]), ("path", stats["path"]), ("model", stats["model"]),
            ("articles", stats["articles"]), ("chunks", stats["chunks"]), ("sentences", stats["sentences"]),
            ("date range", " .. ".join(d or "?" for d in stats["date_range"])),
            ("sources", ", ".join(f"{s or '(none)'} ({n})" for s, n in stats["sources"].items())),
            ("stories", f"{stats['stories']['stories']} ({stats['stories']['syndicated_stories']} carried by several "
                        f"articles; {stats['stories']['duplicates']} duplicates)"),
            ("index type", stats["index_type"]), ("size on disk", f"{stats['size_bytes'] / 1e6:.1f} MB"),
            ("segments", f"{len(stats['segments'])} ({sum(s['deleted'] for s in stats['segments'])} deleted chunks "
                         f"kept until a merge; `newsrag optimize` merges all)")]
    rows += [(f"settings {section}", ", ".join(f"{k}={v}" for k, v in values.items()))
             for section, values in stats["settings"].items()]
    rows += [("differs from manifest", d) for d in stats["settings_differ_from_manifest"]]
    width = max(len(r[0]) for r in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    return 0


def cmd_delete(args) -> int:
    from rag.archive import Archive

    archive = Archive.open(args.index, args.index_dir)
    archive.delete(args.id)
    print(f"deleted {args.id}", file=sys.stderr)
    archive.wait_for_merges()
    return 0


def cmd_optimize(args) -> int:
    from rag.archive import Archive

    done = Archive.open(args.index, args.index_dir).optimize()
    if args.json:
        print(json.dumps(done))
    else:
        print(f"{done['segments_before']} segments merged into {done['segments']} ({done['chunks']} chunks) "
              f"in {done['seconds']:.1f} s", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    from rag.archive import Archive

    archive = Archive.open(args.index, args.index_dir)
    problems = archive.check()
    for problem in problems:
        print(f"newsrag: check: {problem}", file=sys.stderr)
    if not problems:
        stats = archive.stats()
        print(f"ok: {stats['articles']} articles, {stats['chunks']} chunks; FAISS, BM25 and SQLite agree", file=sys.stderr)
    return 1 if problems else 0


COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "serve": cmd_serve, "mcp": cmd_mcp, "stats": cmd_stats,
            "delete": cmd_delete, "check": cmd_check, "optimize": cmd_optimize}

if __name__ == "__main__":
    sys.exit(main())

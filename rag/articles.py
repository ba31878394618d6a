"""Articles and their loaders: .txt, .jsonl, .html files, folders (recursive), globs and stdin.

Loaders never stop at a bad file: each source yields either an `Article` or a `LoadFailure`
that names the file and says why, so one broken file never costs the rest of a folder.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from datetime import date
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import LoadError
from .validation import check_article_size, check_file_size, check_title

SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".html", ".htm")
_DATE_HEADER = re.compile(r"\A\s*date[ \t]+(\d{4}-\d{2}-\d{2})[ \t]*")
_FIRST_SENTENCE = re.compile(r".+?[.!?](?=\s|$)", re.S)
_YEAR = re.compile(r"\b\d{4}\b")
_NUMERIC_DATE = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$")
_ID_PUNCTUATION = frozenset("._:/-")
DERIVED_TITLE_CHARS = 200  # a title taken from the first sentence is cut here


@dataclass(frozen=True)
class Article:
    """One news article: `text` is what offsets point into; everything else is metadata."""

    id: str
    text: str
    title: str = ""
    date: str | None = None  # ISO YYYY-MM-DD
    url: str | None = None
    source: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    origin: str = field(default="", compare=False)  # where it was read (file, file:line), to name it in failures

    @property
    def where(self) -> str:
        """How a failure names this article: where it was read, else the id its source gave."""
        return self.origin or self.given_id

    @property
    def given_id(self) -> str:
        """The id as the source gave it, before `clean_id` made it safe."""
        return str(self.extra.get("given_id", self.id))

    @property
    def content_hash(self) -> str:
        """Hash of everything stored for the article, so an unchanged re-ingest is a no-op."""
        payload = json.dumps(
            [self.text, self.title, self.date, self.url, self.source], ensure_ascii=False
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoadFailure:
    """A source that could not be turned into an article, and why."""

    source: str
    reason: str


def parse_date(value: object) -> str | None:
    """Normalise a date field to ISO `YYYY-MM-DD`: ISO dates and datetimes, or a full written date
    ("Tue, 07 Oct 2025 10:00:00 GMT", "7 October 2025") read by dateparser, in its own time zone."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        pass
    not_a_date = LoadError(f"date {text!r} is not a date: give YYYY-MM-DD or a full date such as '7 October 2025'")
    if not _YEAR.search(text) or _NUMERIC_DATE.match(text):  # relative, or 03/04/2025: day or month first?
        raise not_a_date
    import dateparser  # only for dates that are not ISO

    parsed = dateparser.parse(text, languages=["en"], settings={
        "STRICT_PARSING": True, "REQUIRE_PARTS": ["day", "month", "year"], "RETURN_AS_TIMEZONE_AWARE": True})
    if parsed is None:
        raise not_a_date
    return parsed.date().isoformat()


def first_sentence(text: str) -> str:
    """The article's first sentence, used as its title when none is given."""
    stripped = text.strip()
    match = _FIRST_SENTENCE.match(stripped)
    title = (match.group(0) if match else stripped.split("\n", 1)[0]).strip()
    return title[:DERIVED_TITLE_CHARS]


def _id_char(c: str) -> bool:
    return c in _ID_PUNCTUATION or unicodedata.category(c)[0] in "LMN"  # letters, marks, digits of any script


def clean_id(raw: str) -> str:
    """An article id safe in URLs and logs: NFKC-normalised (so one id has one spelling), letters, marks
    and digits of any script kept, each run of anything else (spaces, controls, '?', '#', '%') one '-'."""
    text = unicodedata.normalize("NFKC", raw).strip()
    runs = ("".join(run) if ok else "-" for ok, run in itertools.groupby(text, key=_id_char))
    return "".join(runs).strip("-") or "article"


def make_article(record: dict, default_id: str, origin: str = "") -> Article:
    """Build an Article from a JSON-like record; only `text` is required. `origin` names where it was
    read, so a later refusal (a taken id) can name the file and line."""
    if not isinstance(record, dict):
        raise LoadError("each record must be a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoadError("record has no non-empty 'text'")
    check_article_size(text)
    raw_id = record.get("id")
    given_id = str(raw_id) if raw_id not in (None, "") else default_id
    article_id = clean_id(given_id)
    if article_id in (".", ".."):  # even percent-encoded, a browser resolves these path steps away
        raise LoadError(f"id {given_id!r} would be stored as {article_id!r}, a path step that no link can "
                        f"open; give another id")
    title = str(record.get("title") or "").strip()
    check_title(title)
    title = title or first_sentence(text)
    known = {"id", "text", "title", "date", "url", "source"}
    extra = {k: v for k, v in record.items() if k not in known}
    if given_id != article_id:
        extra["given_id"] = given_id  # kept so two ids that clean to one are told apart, across ingests too
    return Article(
        id=article_id,
        text=text,
        title=title,
        date=parse_date(record.get("date")),
        url=(str(record["url"]) if record.get("url") else None),
        source=(str(record["source"]) if record.get("source") else None),
        extra=extra,
        origin=origin,
    )


def _read_text(path: Path) -> str:
    try:
        check_file_size(path.stat().st_size)
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from exc
    if b"\x00" in data[:4096]:
        raise LoadError("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 (byte {exc.start})") from exc


def path_id(path: Path, root: Path | None) -> str:
    """A stable id from the file's path relative to the folder it was found in, sans suffix (cleaned later)."""
    rel = path.relative_to(root) if root else Path(path.name)
    return str(rel.with_suffix(""))


def load_txt(path: Path, root: Path | None = None) -> Article:
    """A plain-text article; an optional leading `date YYYY-MM-DD` header gives its date."""
    raw = _read_text(path)
    record: dict = {"text": raw}
    header = _DATE_HEADER.match(raw)
    if header:
        record = {"text": raw[header.end():], "date": header.group(1)}
    record["text"] = record["text"].strip()
    return make_article(record, path_id(path, root), str(path))


def load_html(path: Path, root: Path | None = None) -> Article:
    """An HTML page: main text, title and date extracted with trafilatura."""
    import trafilatura  # imported here: only HTML ingest pays for it

    raw = _read_text(path)
    doc = trafilatura.bare_extraction(raw, with_metadata=True, include_comments=False)
    if doc is None:
        raise LoadError("no main text found in HTML")
    get = doc.get if isinstance(doc, dict) else (lambda k: getattr(doc, k, None))
    text = get("text") or ""
    record = {
        "text": text.strip(),
        "title": get("title"),
        "date": get("date"),
        "url": get("url"),
        "source": get("sitename") or get("hostname"),
    }
    return make_article(record, path_id(path, root), str(path))


def failure_reason(exc: Exception) -> str:
    """Why a source failed, for its LoadFailure: ours say it plainly; anything else (a bug, or a broken
    third-party parser) is still named, so it costs that source alone."""
    if isinstance(exc, LoadError):
        return exc.message
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg}"
    return f"unexpected {type(exc).__name__}: {exc}"


def iter_jsonl(stream: Iterable[str], name: str, root_id: str) -> Iterator[Article | LoadFailure]:
    """Articles from JSONL lines; a broken line is reported by line number, the rest load."""
    for lineno, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            item: Article | LoadFailure = make_article(json.loads(line), f"{root_id}-{lineno}", f"{name}:{lineno}")
        except Exception as exc:
            item = LoadFailure(f"{name}:{lineno}", failure_reason(exc))
        yield item


def load_jsonl(path: Path, root: Path | None = None) -> Iterator[Article | LoadFailure]:
    """One article per line: `id`, `title`, `date`, `url`, `source`, `text` (only text required)."""
    try:
        text = _read_text(path)
    except LoadError as exc:
        yield LoadFailure(str(path), exc.message)
        return
    yield from iter_jsonl(text.splitlines(), str(path), path_id(path, root))


def load_file(path: Path, root: Path | None = None) -> Iterator[Article | LoadFailure]:
    """Articles from one file, by suffix. Any error, even one no loader foresaw (a broken third-party
    parser), is this file's failure: the other files are still ingested."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from load_jsonl(path, root)
        return
    loader = {".txt": load_txt, ".html": load_html, ".htm": load_html}.get(suffix)
    if loader is None:
        yield LoadFailure(str(path), f"unsupported file type {suffix or '(none)'}")
        return
    try:
        item: Article | LoadFailure = loader(path, root)
    except Exception as exc:
        item = LoadFailure(str(path), failure_reason(exc))
    yield item


def iter_sources(
    paths: Iterable[str], stdin: IO[str] | None = None
) -> Iterator[Article | LoadFailure]:
    """Everything named on a command line: files, folders (recursive), globs, or '-' for stdin."""
    for spec in paths:
        if spec == "-":
            yield from iter_jsonl(stdin or sys.stdin, "<stdin>", "stdin")
            continue
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if file.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield from load_file(file, path)
            continue
        if path.is_file():
            yield from load_file(path, None)
            continue
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            yield LoadFailure(spec, "no such file or folder")
        for match in matches:
            if Path(match).is_file():
                yield from load_file(Path(match), None)


def sample_corpus_path() -> Path:
    """The bundled sample corpus (package data)."""
    return Path(str(resources.files("rag") / "sample_corpus"))

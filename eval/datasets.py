"""Evaluation sets (SQuAD, BEIR, RGB, our QA folders) loaded into one shape: articles and questions.

Every loader takes a path, since the data is third-party and lives outside the repository, and
raises `ValueError` naming the file and the problem when the data is not what it expects.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.articles import Article, LoadFailure, clean_id, load_jsonl, make_article, parse_date
from rag.errors import LoadError

SPLITS = ("all", "tune", "test")
RGB_LABELS = (("positive", "positive"), ("positive_wrong", "wrong"), ("negative", "negative"))


@dataclass(frozen=True)
class Question:
    """One question with its gold answers and graded relevance by article id."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    relevant: dict[str, int] = field(default_factory=dict)
    impossible: bool = False
    as_of: str | None = None
    filters: dict | None = None
    extra: dict = field(default_factory=dict, compare=False)


@dataclass
class Dataset:
    """A corpus and the questions asked of it; checks ids so scoring can trust them."""

    name: str
    format: str
    articles: list[Article]
    questions: list[Question]

    def __post_init__(self) -> None:
        """Reject duplicate ids and relevance judgements that point outside the corpus."""
        article_ids = {a.id for a in self.articles}
        if len(article_ids) != len(self.articles):
            raise ValueError(f"{self.name}: duplicate article ids")
        if len({q.id for q in self.questions}) != len(self.questions):
            raise ValueError(f"{self.name}: duplicate question ids")
        for q in self.questions:
            missing = sorted(set(q.relevant) - article_ids)
            if missing:
                raise ValueError(
                    f"{self.name}: question {q.id} names unknown articles {missing[:3]}"
                )


def _require(path: Path, what: str) -> Path:
    """The path itself, or a ValueError saying which expected file is missing."""
    if not path.is_file():
        raise ValueError(f"{what}: no such file {path}")
    return path


def _one_file(path: Path, pattern: str, what: str) -> Path:
    """`path` when it is a file, else the single file in the folder matching `pattern`."""
    if path.is_file():
        return path
    matches = sorted(path.glob(pattern)) if path.is_dir() else []
    if len(matches) != 1:
        raise ValueError(
            f"{what}: {path} is not a file or a folder with one {pattern} ({len(matches)} found)"
        )
    return matches[0]


def _name(path: Path) -> str:
    """A data set's name: its folder's name, or its file's stem."""
    return path.name if path.is_dir() else path.stem


def _read_text(file: Path) -> str:
    """A file's UTF-8 text, errors reported as ValueError."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {file}: {exc}") from exc


def _read_records(file: Path) -> Iterator[tuple[str, dict]]:
    """(location, object) pairs from a JSON array or a JSONL file, so either layout loads."""
    text = _read_text(file)
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}: invalid JSON: {exc}") from exc
        numbered = [(f"{file}[{i}]", row) for i, row in enumerate(rows)]
    else:
        numbered = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    numbered.append((f"{file}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{file}:{lineno}: invalid JSON: {exc.msg}") from exc
    for where, row in numbered:
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object")
        yield where, row


def _article(record: dict, where: str) -> Article:
    """`make_article`, with its errors as ValueError naming the record."""
    try:
        return make_article(record, str(record.get("id") or where))
    except LoadError as exc:
        raise ValueError(f"{where}: {exc.message}") from exc


def load_squad(path: str | Path) -> Dataset:
    """SQuAD v1.1/v2.0 JSON: each paragraph is an article, each question points at its paragraph."""
    file = _one_file(Path(path), "*.json", "squad")
    try:
        doc = json.loads(_read_text(file))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: invalid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ValueError(f"{file}: not SQuAD JSON (no top-level 'data' list)")
    articles: list[Article] = []
    questions: list[Question] = []
    try:
        for entry in doc["data"]:
            title = str(entry["title"]).replace("_", " ")
            for p_index, paragraph in enumerate(entry["paragraphs"]):
                where = f"{file}: {entry['title']} paragraph {p_index}"
                record = {"id": f"{entry['title']}-{p_index}", "title": title}
                article = _article({**record, "text": paragraph["context"]}, where)
                articles.append(article)
                questions.extend(_squad_question(qa, article.id, title) for qa in paragraph["qas"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{file}: not SQuAD JSON (bad or missing field {exc})") from exc
    return Dataset(_name(Path(path)), "squad", articles, questions)


def _squad_question(qa: dict, article_id: str, title: str) -> Question:
    """One SQuAD question; `extra` keeps the answer offsets, title and v2.0 plausible answers."""
    answers = qa.get("answers") or []
    extra: dict = {"title": title, "answer_start": [a["answer_start"] for a in answers]}
    if "plausible_answers" in qa:
        extra["plausible_answers"] = [a["text"] for a in qa["plausible_answers"]]
    return Question(
        id=str(qa["id"]),
        question=qa["question"],
        answers=[a["text"] for a in answers],
        relevant={article_id: 1},
        impossible=bool(qa.get("is_impossible", False)),
        extra=extra,
    )


def squad_split(dataset: Dataset, split: str) -> Dataset:
    """Questions of the first half of the sorted titles (tune) or the rest (test); corpus whole."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if split == "all":
        return dataset
    if dataset.format != "squad":
        raise ValueError(f"split {split!r} applies to SQuAD only, not {dataset.format}")
    titles = sorted({a.title for a in dataset.articles})
    tune = set(titles[: len(titles) // 2])
    keep = [q for q in dataset.questions if (q.extra["title"] in tune) == (split == "tune")]
    return replace(dataset, questions=keep)


def load_beir(path: str | Path) -> Dataset:
    """BEIR folder: corpus.jsonl, queries.jsonl and qrels/test.tsv; only judged queries are kept."""
    root = Path(path)
    corpus = _require(root / "corpus.jsonl", "beir")
    queries = _require(root / "queries.jsonl", "beir")
    qrels = _read_qrels(_require(root / "qrels" / "test.tsv", "beir"))
    articles = []
    for where, row in _read_records(corpus):
        if "_id" not in row:
            raise ValueError(f"{where}: no '_id'")
        text = row.get("text") or row.get("title")
        articles.append(
            _article({"id": row["_id"], "title": row.get("title"), "text": text}, where)
        )
    questions = []
    for _, row in _read_records(queries):
        qid = str(row.get("_id"))
        if qid in qrels:
            extra = {"metadata": row["metadata"]} if row.get("metadata") else {}
            questions.append(
                Question(qid, str(row.get("text") or ""), relevant=qrels[qid], extra=extra)
            )
    unknown = sorted(set(qrels) - {q.id for q in questions})
    if unknown:
        raise ValueError(f"{root}: qrels name queries missing from queries.jsonl: {unknown[:3]}")
    return Dataset(_name(root), "beir", articles, questions)


def _read_qrels(file: Path) -> dict[str, dict[str, int]]:
    """`query-id corpus-id score` lines (header optional) as {qid: {article id: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(_read_text(file).splitlines(), 1):
        fields = line.split()
        if not fields or (lineno == 1 and fields[0] == "query-id"):
            continue
        if len(fields) != 3 or not fields[2].lstrip("-").isdigit():
            raise ValueError(f"{file}:{lineno}: expected 'query-id corpus-id score'")
        qrels.setdefault(fields[0], {})[clean_id(fields[1])] = int(fields[2])
    return qrels


def load_rgb(path: str | Path) -> Dataset:
    """RGB (en_fact): each distinct passage is an article; labels per question mark wrong ones."""
    file = _one_file(Path(path), "*.json*", "rgb")
    articles: dict[str, Article] = {}
    questions = []
    for where, row in _read_records(file):
        labels: dict[str, str] = {}  # passage id -> label; the first in RGB_LABELS order wins
        for key, label in RGB_LABELS:
            for text in row.get(key) or []:
                pid = "rgb-" + hashlib.sha1(str(text).encode("utf-8")).hexdigest()[:16]
                articles.setdefault(pid, _article({"id": pid, "text": text}, where))
                labels.setdefault(pid, label)
        groups = _answer_groups(row.get("answer"), where)
        by_label = {
            label: [p for p, lab in labels.items() if lab == label] for _, label in RGB_LABELS
        }
        extra = {
            **by_label,
            "answer_groups": groups,
            "fake_answers": _flatten(_answer_groups(row.get("fakeanswer"), where)),
        }
        questions.append(
            Question(
                id=str(row.get("id", where)),
                question=str(row.get("query") or ""),
                answers=_flatten(groups),
                relevant=dict.fromkeys(by_label["positive"], 1),
                extra=extra,
            )
        )
    return Dataset(_name(Path(path)), "rgb", list(articles.values()), questions)


def _answer_groups(value: object, where: str) -> list[list[str]]:
    """RGB answers as groups that must all be present, each met by any of its alternatives."""
    if value is None:
        return []
    if isinstance(value, str):
        return [[value.strip()]]
    if not isinstance(value, list):
        raise ValueError(f"{where}: answer must be a string or a list")
    return [
        [str(alt).strip() for alt in g] if isinstance(g, list) else [str(g).strip()] for g in value
    ]


def _flatten(groups: list[list[str]]) -> list[str]:
    """Every alternative of every group once, in order."""
    return list(dict.fromkeys(alt for group in groups for alt in group if alt))


def load_qa(path: str | Path) -> Dataset:
    """Our QA folder: articles.jsonl (ingest JSONL) and questions.jsonl (relevant_article_ids)."""
    root = Path(path)
    loaded = list(load_jsonl(_require(root / "articles.jsonl", "qa"), root))
    failures = [x for x in loaded if isinstance(x, LoadFailure)]
    if failures:
        first = failures[0]
        raise ValueError(f"{len(failures)} bad article(s); first: {first.source}: {first.reason}")
    records = _read_records(_require(root / "questions.jsonl", "qa"))
    questions = [_qa_question(row, where, n) for n, (where, row) in enumerate(records, 1)]
    articles = [x for x in loaded if isinstance(x, Article)]
    return Dataset(_name(root), "qa", articles, questions)


def _qa_question(row: dict, where: str, n: int) -> Question:
    """One questions.jsonl line; no answers and no relevant articles means unanswerable."""
    text = row.get("question")
    answers = row.get("answers") or []
    ids = row.get("relevant_article_ids") or []
    filters = row.get("filters")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: no 'question'")
    if not isinstance(answers, list) or not isinstance(ids, list):
        raise ValueError(f"{where}: 'answers' and 'relevant_article_ids' must be lists")
    if filters is not None and not isinstance(filters, dict):
        raise ValueError(f"{where}: 'filters' must be an object")
    try:
        as_of = parse_date(row.get("as_of"))
    except LoadError as exc:
        raise ValueError(f"{where}: as_of: {exc.message}") from exc
    known = {"id", "question", "answers", "relevant_article_ids", "as_of", "filters", "impossible"}
    relevant = {clean_id(str(i)): 1 for i in ids}
    return Question(
        id=str(row.get("id") or f"q{n}"),
        question=text,
        answers=[str(a) for a in answers],
        relevant=relevant,
        impossible=bool(row.get("impossible", not answers and not relevant)),
        as_of=as_of,
        filters=filters,
        extra={k: v for k, v in row.items() if k not in known},
    )


LOADERS: dict[str, Callable[[str | Path], Dataset]] = {
    "squad": load_squad,
    "beir": load_beir,
    "rgb": load_rgb,
    "qa": load_qa,
}


def load_dataset(path: str | Path, format: str) -> Dataset:
    """Load `path` with the loader for `format` (squad, beir, rgb or qa)."""
    loader = LOADERS.get(format)
    if loader is None:
        raise ValueError(f"unknown format {format!r}: choose one of {', '.join(LOADERS)}")
    if not Path(path).exists():
        raise ValueError(f"no such file or folder: {path}")
    return loader(path)


def sample_questions(
    questions: Sequence[Question], limit: int | None, seed: int = 0
) -> list[Question]:
    """Up to `limit` questions drawn with `seed`, in original order; the corpus is never sampled."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    if limit is None or limit >= len(questions):
        return list(questions)
    keep = sorted(random.Random(seed).sample(range(len(questions)), limit))
    return [questions[i] for i in keep]

"""Training and calibration examples for the reader, from SQuAD files read by path.

Titles decide everything: the SQuAD v1.1 training sample trains; the `tune` halves of SQuAD v1.1 dev
and 2.0 dev train too, less a seeded set of calibration titles kept aside to fit the no-answer margin
and to pick settings; no title of either dev set's `test` half is ever read here. Windows are the
chunks the index would store for the paragraph (rag.chunking), so the reader trains on what it reads.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from eval.datasets import load_squad, squad_split
from rag.chunking import chunk_text


@dataclass(frozen=True)
class Example:
    """A question paired with one window; `answer` is (start, end) in the window, None when absent."""

    qid: str
    question: str
    window: str
    answer: tuple[int, int] | None
    kind: str  # "answer", "other_chunk", "other_paragraph", "impossible"


@dataclass(frozen=True)
class SquadQuestion:
    qid: str
    title: str
    question: str
    paragraph: str
    answers: list[tuple[int, str]]  # (start, text); empty when unanswerable
    source: str


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_squad(path: Path, source: str) -> dict[str, list[tuple[str, list[SquadQuestion]]]]:
    """title -> [(paragraph, its questions)], titles with spaces as the harness writes them."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, list[tuple[str, list[SquadQuestion]]]] = {}
    for entry in doc["data"]:
        title = str(entry["title"]).replace("_", " ")
        for paragraph in entry["paragraphs"]:
            context = paragraph["context"]
            qs = [SquadQuestion(f"{source}:{qa['id']}", title, qa["question"], context,
                                [(a["answer_start"], a["text"]) for a in qa.get("answers") or []], source)
                  for qa in paragraph["qas"]]
            out.setdefault(title, []).append((context, qs))
    return out


def split_titles(path: Path, split: str) -> set[str]:
    """The titles of a SQuAD dev file's harness split (`tune` or `test`), by the harness's own rule."""
    return {q.extra["title"] for q in squad_split(load_squad(path), split).questions}


@dataclass(frozen=True)
class Plan:
    """Which titles of which file train, calibrate, or are never read."""

    train: dict[str, set[str]]  # source -> titles
    calib: dict[str, set[str]]
    forbidden: set[str]

    def to_json(self) -> dict:
        return {"train": {k: sorted(v) for k, v in self.train.items()},
                "calib": {k: sorted(v) for k, v in self.calib.items()}, "forbidden": sorted(self.forbidden)}


def make_plan(files: dict[str, Path], calib_titles: int, seed: int) -> Plan:
    """Train on the train sample and the dev tune halves, minus calibration titles and any title in a
    test half (two SQuAD 2.0 test titles sit in v1.1's tune half)."""
    forbidden = split_titles(files["v1.1-dev"], "test") | split_titles(files["v2.0-dev"], "test")
    tune = {name: split_titles(files[name], "tune") - forbidden for name in ("v1.1-dev", "v2.0-dev")}
    pool = sorted(tune["v2.0-dev"])  # v2.0 titles carry unanswerable questions to calibrate on
    calib = set(random.Random(seed).sample(pool, calib_titles))
    train_titles = set(read_squad(files["v1.1-train"], "v1.1-train"))
    if train_titles & forbidden:
        raise ValueError(f"train sample shares titles with a test half: {sorted(train_titles & forbidden)}")
    return Plan(train={"v1.1-train": train_titles, "v1.1-dev": tune["v1.1-dev"] - calib,
                       "v2.0-dev": tune["v2.0-dev"] - calib},
                calib={"v1.1-dev": tune["v1.1-dev"] & calib, "v2.0-dev": tune["v2.0-dev"] & calib},
                forbidden=forbidden)


def windows_of(paragraph: str) -> list[tuple[int, int]]:
    """The chunk spans the index would store for this text."""
    return [(c.start, c.end) for c in chunk_text("p", paragraph)]


def questions_for(files: dict[str, Path], titles: dict[str, set[str]]) -> dict[str, list[tuple[str, list[SquadQuestion]]]]:
    """title -> paragraphs with their questions, for the chosen titles of each file."""
    out: dict[str, list] = {}
    for source, keep in titles.items():
        for title, paragraphs in read_squad(files[source], source).items():
            if title in keep:
                out.setdefault(f"{source}/{title}", []).extend(paragraphs)
    return out


def training_examples(articles: dict[str, list], seed: int, p_other_chunk: float,
                      p_other_paragraph: float) -> list[Example]:
    """Per answerable question: the first window holding its answer; with some probability a window
    of the same paragraph without it, and one of another paragraph of the same article (made
    negatives: the reader must learn that news near the topic is not an answer). Per unanswerable
    question: one window of its paragraph."""
    rng = random.Random(seed)
    out: list[Example] = []
    for key in sorted(articles):
        paragraphs = articles[key]
        spans = [windows_of(p) for p, _ in paragraphs]
        for p_index, (paragraph, qs) in enumerate(paragraphs):
            for q in qs:
                if not q.answers:
                    s, e = rng.choice(spans[p_index])
                    out.append(Example(q.qid, q.question, paragraph[s:e], None, "impossible"))
                    continue
                a_start, a_text = q.answers[0]
                a_end = a_start + len(a_text)
                holding = [(s, e) for s, e in spans[p_index] if s <= a_start and a_end <= e]
                if not holding:
                    continue
                s, e = holding[0]
                out.append(Example(q.qid, q.question, paragraph[s:e], (a_start - s, a_end - s), "answer"))
                others = [(s, e) for s, e in spans[p_index] if e <= a_start or s >= a_end]
                if others and rng.random() < p_other_chunk:
                    s, e = rng.choice(others)
                    out.append(Example(q.qid, q.question, paragraph[s:e], None, "other_chunk"))
                if len(paragraphs) > 1 and rng.random() < p_other_paragraph:
                    j = rng.choice([j for j in range(len(paragraphs)) if j != p_index])
                    s, e = rng.choice(spans[j])
                    out.append(Example(q.qid, q.question, paragraphs[j][0][s:e], None, "other_paragraph"))
    return out

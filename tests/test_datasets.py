"""Evaluation loaders on tiny hand-written files, and their counts on the real sets when present."""

import json
from pathlib import Path

import pytest

from eval.datasets import (
    Dataset,
    Question,
    load_beir,
    load_dataset,
    load_qa,
    load_rgb,
    load_squad,
    sample_questions,
    squad_split,
)

SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _squad_doc(v2: bool) -> dict:
    """Two titles, three paragraphs; in v2 one question is unanswerable."""

    def qa(
        qid: str, question: str, answers: list[tuple[str, int]], impossible: bool = False
    ) -> dict:
        row = {
            "id": qid,
            "question": question,
            "answers": [{"text": t, "answer_start": s} for t, s in answers],
        }
        if v2:
            row["is_impossible"] = impossible
            if impossible:
                row["plausible_answers"] = [{"text": "Zed", "answer_start": 0}]
        return row

    return {
        "version": "2.0" if v2 else "1.1",
        "data": [
            {
                "title": "Zebra_crossing",
                "paragraphs": [
                    {
                        "context": "Zebra crossings appeared in 1951.",
                        "qas": [
                            qa(
                                "z1",
                                "When did zebra crossings appear?",
                                [("1951", 28), ("in 1951", 25)],
                            )
                        ],
                    },
                ],
            },
            {
                "title": "Apple_(fruit)",
                "paragraphs": [
                    {
                        "context": "Apples grow on trees.",
                        "qas": [qa("a1", "Where do apples grow?", [("on trees", 12)])],
                    },
                    {
                        "context": "Apples are often red.",
                        "qas": [
                            qa("a2", "What colour are apples?", [("red", 17)]),
                            qa("a3", "Who painted apples?", [], impossible=v2),
                        ],
                    },
                ],
            },
        ],
    }


def test_squad_v11_paragraphs_become_articles(tmp_path: Path) -> None:
    """Every paragraph is an article with a clean id and a spaced title; answers keep all golds."""
    (tmp_path / "dev.json").write_text(json.dumps(_squad_doc(v2=False)), encoding="utf-8")
    ds = load_squad(tmp_path)  # the folder, holding one .json
    assert [a.id for a in ds.articles] == ["Zebra_crossing-0", "Apple_-fruit--0", "Apple_-fruit--1"]
    assert [a.title for a in ds.articles] == ["Zebra crossing", "Apple (fruit)", "Apple (fruit)"]
    assert all(a.date is None for a in ds.articles)
    z1 = ds.questions[0]
    assert z1.answers == ["1951", "in 1951"] and z1.extra["answer_start"] == [28, 25]
    assert z1.relevant == {"Zebra_crossing-0": 1} and not z1.impossible
    assert ds.articles[0].text[28:32] == "1951"
    assert ds.format == "squad" and len(ds.questions) == 4


def test_squad_v2_marks_impossible_questions(tmp_path: Path) -> None:
    """Impossible questions: no answers, plausible ones kept, the paragraph still named."""
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(_squad_doc(v2=True)), encoding="utf-8")
    a3 = {q.id: q for q in load_squad(path).questions}["a3"]
    assert a3.impossible and a3.answers == [] and a3.extra["plausible_answers"] == ["Zed"]
    assert a3.relevant == {"Apple_-fruit--1": 1}


def test_squad_split_halves_titles_in_order(tmp_path: Path) -> None:
    """Tune holds the first half of the sorted titles (Apple), test the rest; corpus whole."""
    (tmp_path / "dev.json").write_text(json.dumps(_squad_doc(v2=False)), encoding="utf-8")
    ds = load_squad(tmp_path)
    tune, test = squad_split(ds, "tune"), squad_split(ds, "test")
    assert [q.id for q in tune.questions] == ["a1", "a2", "a3"]
    assert [q.id for q in test.questions] == ["z1"]
    assert tune.articles == test.articles == ds.articles
    assert squad_split(ds, "all") is ds
    with pytest.raises(ValueError, match="split"):
        squad_split(ds, "train")


def _write_beir(root: Path) -> None:
    _write_jsonl(
        root / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Aspirin and headaches", "text": "Aspirin relieves headaches."},
            {"_id": "d2", "title": "", "text": "Vitamin C does not cure colds. More text."},
            {"_id": "d3", "title": "Unjudged", "text": "Nobody asked about this."},
        ],
    )
    _write_jsonl(
        root / "queries.jsonl",
        [
            {"_id": "1", "text": "Does aspirin help headaches?", "metadata": {}},
            {"_id": "2", "text": "Query without judgements", "metadata": {}},
            {"_id": "3", "text": "Does vitamin C cure colds?", "metadata": {}},
        ],
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t1\n3\td2\t2\n3\td1\t0\n", encoding="utf-8"
    )


def test_beir_keeps_judged_queries_and_titles(tmp_path: Path) -> None:
    """Queries without qrels are dropped; an empty title falls back to the first sentence."""
    _write_beir(tmp_path)
    ds = load_beir(tmp_path)
    assert [a.id for a in ds.articles] == ["d1", "d2", "d3"]
    assert ds.articles[1].title == "Vitamin C does not cure colds."
    assert [q.id for q in ds.questions] == ["1", "3"]
    assert ds.questions[1].relevant == {"d2": 2, "d1": 0}
    assert ds.questions[0].answers == [] and not ds.questions[0].impossible


def test_beir_qrels_must_point_into_the_corpus(tmp_path: Path) -> None:
    """A judgement on a document that is not in the corpus is a data error, not a silent zero."""
    _write_beir(tmp_path)
    with (tmp_path / "qrels" / "test.tsv").open("a", encoding="utf-8") as fh:
        fh.write("1\tmissing-doc\t1\n")
    with pytest.raises(ValueError, match="unknown articles"):
        load_beir(tmp_path)


def test_rgb_passages_are_deduplicated_and_labelled(tmp_path: Path) -> None:
    """Shared passages load once; wrong passages are listed per question; nested answers flatten."""
    shared = "Official site of the Riverton Regatta, held every summer."
    rows = [
        {
            "id": 0,
            "query": "Who won the 2020 Riverton Regatta?",
            "answer": "Team Heron",
            "fakeanswer": "Team Otter",
            "positive": ["Team Heron won the 2020 Riverton Regatta.", "Results: Team Heron first."],
            "positive_wrong": [
                "Team Otter won the 2020 Riverton Regatta.",
                "Results: Team Heron first.",
            ],
            "negative": [shared],
        },
        {
            "id": 1,
            "query": "When did the 2021 Riverton Regatta start?",
            "answer": [["June 5 2021", "Jun 5, 2021"]],
            "fakeanswer": "June 5, 2011",
            "positive": ["The 2021 regatta began on Jun 5, 2021."],
            "positive_wrong": ["The 2021 regatta began on June 5, 2011."],
            "negative": [shared],
        },
    ]
    _write_jsonl(tmp_path / "en_fact.json", rows)  # JSONL despite the suffix, like the real file
    ds = load_rgb(tmp_path)
    by_text = {a.text: a.id for a in ds.articles}
    assert len(ds.articles) == 6  # 8 listed passages, one shared across questions, one repeated
    q0, q1 = ds.questions
    assert q0.answers == ["Team Heron"] and q0.extra["fake_answers"] == ["Team Otter"]
    assert q0.extra["wrong"] == [by_text["Team Otter won the 2020 Riverton Regatta."]]
    # A passage listed as both right and wrong holds the true answer: it counts as positive only.
    assert by_text["Results: Team Heron first."] in q0.extra["positive"]
    assert set(q0.relevant) == set(q0.extra["positive"]) and len(q0.relevant) == 2
    assert q0.extra["negative"] == q1.extra["negative"] == [by_text[shared]]
    assert q1.answers == ["June 5 2021", "Jun 5, 2021"]
    assert q1.extra["answer_groups"] == [["June 5 2021", "Jun 5, 2021"]]
    assert all(a.id.startswith("rgb-") for a in ds.articles)
    assert load_rgb(tmp_path / "en_fact.json").articles == ds.articles  # ids are stable


def test_qa_folder(tmp_path: Path) -> None:
    """Our QA layout: ingest JSONL plus questions; no answers and no articles means impossible."""
    _write_jsonl(
        tmp_path / "articles.jsonl",
        [
            {
                "id": "rates-july",
                "title": "Bank cuts rates",
                "date": "2025-07-03",
                "source": "Wire",
                "text": "The bank cut its rate to 3.75% on Thursday.",
            },
            {"id": "rates-sept", "text": "The bank held its rate in September."},
        ],
    )
    _write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {
                "id": "q1",
                "question": "To what level did the bank cut its rate?",
                "answers": ["3.75%"],
                "relevant_article_ids": ["rates-july"],
                "as_of": "2025-07-10",
                "filters": {"source": "Wire"},
            },
            {
                "id": "q2",
                "question": "Who won the lottery?",
                "answers": [],
                "relevant_article_ids": [],
            },
        ],
    )
    ds = load_dataset(tmp_path, "qa")
    assert ds.format == "qa" and [a.id for a in ds.articles] == ["rates-july", "rates-sept"]
    assert ds.articles[0].date == "2025-07-03"
    q1, q2 = ds.questions
    assert q1.relevant == {"rates-july": 1} and q1.as_of == "2025-07-10"
    assert q1.filters == {"source": "Wire"} and not q1.impossible
    assert q2.impossible and q2.relevant == {}


def test_qa_rejects_bad_articles_and_unknown_relevant_ids(tmp_path: Path) -> None:
    """A broken article line or a relevant id outside the corpus stops the load with a reason."""
    _write_jsonl(tmp_path / "articles.jsonl", [{"id": "a", "text": "Some text."}])
    _write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {"id": "q", "question": "What?", "answers": ["x"], "relevant_article_ids": ["b"]},
        ],
    )
    with pytest.raises(ValueError, match="unknown articles"):
        load_qa(tmp_path)
    (tmp_path / "articles.jsonl").write_text('{"id": "a", "text": ""}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad article"):
        load_qa(tmp_path)


def test_load_dataset_names_the_problem(tmp_path: Path) -> None:
    """Unknown formats, missing paths and missing files each get a clear ValueError."""
    with pytest.raises(ValueError, match="unknown format 'msmarco'"):
        load_dataset(tmp_path, "msmarco")
    with pytest.raises(ValueError, match="no such file or folder"):
        load_dataset(tmp_path / "nope", "squad")
    with pytest.raises(ValueError, match=r"corpus\.jsonl"):
        load_dataset(tmp_path, "beir")
    with pytest.raises(ValueError, match=r"\*\.json"):
        load_dataset(tmp_path, "squad")
    (tmp_path / "x.json").write_text('{"not": "squad"}', encoding="utf-8")
    with pytest.raises(ValueError, match="not SQuAD"):
        load_dataset(tmp_path / "x.json", "squad")


def test_dataset_rejects_duplicate_ids() -> None:
    """Two questions with one id would make qrels ambiguous."""
    with pytest.raises(ValueError, match="duplicate question ids"):
        Dataset("d", "qa", [], [Question("q", "a?"), Question("q", "b?")])


def test_sample_questions_is_deterministic() -> None:
    """Same seed, same sample, in the original order; a limit past the end keeps everything."""
    questions = [Question(f"q{i}", f"question {i}?") for i in range(50)]
    first = sample_questions(questions, 10, seed=7)
    assert first == sample_questions(questions, 10, seed=7)
    assert first != sample_questions(questions, 10, seed=8)
    assert len(first) == 10 and first == sorted(first, key=lambda q: int(q.id[1:]))
    assert sample_questions(questions, None, seed=1) == questions
    assert sample_questions(questions, 500, seed=1) == questions
    with pytest.raises(ValueError):
        sample_questions(questions, -1, seed=1)


needs_shared = pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="shared eval data not present")


@needs_shared
@pytest.mark.parametrize(
    ("folder", "paragraphs", "questions", "impossible"),
    [("squad-v1.1-dev", 2067, 10570, 0), ("squad-v2.0-dev", 1204, 11873, 5945)],
)
def test_real_squad_counts(folder: str, paragraphs: int, questions: int, impossible: int) -> None:
    """The published counts, and tune/test splitting the questions without loss or overlap."""
    ds = load_dataset(SHARED_EVAL / folder, "squad")
    assert len(ds.articles) == paragraphs and len(ds.questions) == questions
    assert sum(q.impossible for q in ds.questions) == impossible
    tune, test = squad_split(ds, "tune"), squad_split(ds, "test")
    assert len(tune.questions) + len(test.questions) == questions
    assert max(q.extra["title"] for q in tune.questions) < min(
        q.extra["title"] for q in test.questions
    )


@needs_shared
def test_real_scifact_counts() -> None:
    """5,183 abstracts, 300 judged queries, 339 judged pairs."""
    ds = load_dataset(SHARED_EVAL / "scifact", "beir")
    assert len(ds.articles) == 5183 and len(ds.questions) == 300
    assert sum(len(q.relevant) for q in ds.questions) == 339


@needs_shared
def test_real_rgb_counts() -> None:
    """100 questions, each with a gold answer, at least one positive and one wrong passage."""
    ds = load_dataset(SHARED_EVAL / "rgb-en-fact", "rgb")
    assert len(ds.questions) == 100
    assert all(q.answers and q.relevant and q.extra["wrong"] for q in ds.questions)
    assert len({a.text for a in ds.articles}) == len(ds.articles)
